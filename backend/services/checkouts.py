"""Booking: price a slot, hold it, and open a Stripe Checkout Session for it."""
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from backend import stripe_gateway
from backend.errors import Conflict, InvalidInput, NotAllowed, NotFound, PaymentProviderError, PaymentProviderUnavailable
from backend.models import Checkout, Mentor, Session, User
from backend.services.installation import idempotency_key, stripe_metadata

logger = logging.getLogger(__name__)

# Stripe refuses expires_at less than 30 minutes after it receives the request; a
# minute of margin covers the network and clock skew.
STRIPE_EXPIRY_MARGIN = timedelta(minutes=1)


def checkout_price(*, hourly_rate: int, duration_minutes: int) -> int:
    """hourly_rate * minutes / 60 in minor units, rounded half up."""
    return (hourly_rate * duration_minutes * 2 + 60) // 120


def _validate_slot(*, scheduled_at: datetime, duration_minutes: int, now: datetime) -> None:
    if scheduled_at.tzinfo is None or scheduled_at.utcoffset() is None:
        raise InvalidInput("scheduled_at must carry a UTC offset, e.g. 2026-12-01T15:00:00Z", field="scheduled_at")
    if scheduled_at <= now:
        raise InvalidInput("scheduled_at must be in the future", field="scheduled_at")
    # Longer than the hold, so a delayed debit has time to clear and a lapsed hold to settle.
    if scheduled_at < now + timedelta(minutes=settings.BOOKING_MIN_LEAD_MINUTES):
        raise InvalidInput(
            f"scheduled_at must be at least {settings.BOOKING_MIN_LEAD_MINUTES} minutes from now", field="scheduled_at"
        )
    if scheduled_at > now + timedelta(days=settings.BOOKING_MAX_DAYS_AHEAD):
        raise InvalidInput(
            f"scheduled_at must be within {settings.BOOKING_MAX_DAYS_AHEAD} days from now", field="scheduled_at"
        )
    if duration_minutes not in settings.BOOKING_ALLOWED_DURATIONS:
        allowed = ", ".join(str(d) for d in settings.BOOKING_ALLOWED_DURATIONS)
        raise InvalidInput(f"duration_minutes must be one of {allowed}", field="duration_minutes")


def overlapping(queryset, *, starts: datetime, ends: datetime):
    """Rows of `queryset` whose [scheduled_at, ends_at) meets [starts, ends)."""
    return queryset.filter(scheduled_at__lt=ends, ends_at__gt=starts)


def slot_conflict(
    *, mentor_id: int, starts: datetime, ends: datetime, mentee_id: int | None = None,
    excluding_checkout_id: int | None = None,
) -> str | None:
    """Why this slot can't be held or booked, or None. Call with the mentor row locked.

    The one overlap check, for booking and for fulfilment (`excluding_checkout_id`: the
    Checkout being fulfilled). What blocks: scheduled sessions, and every hold still
    `open`, even past its expires_at: until Stripe confirms its Checkout expired (the
    expired event, or checkout_holds_expire) it may have been paid with the completion
    still on its way, and a paid slot must never be sold again.
    """
    scheduled = Session.objects.filter(status=Session.Status.SCHEDULED)
    holding = Checkout.objects.filter(status=Checkout.Status.OPEN)
    if excluding_checkout_id is not None:
        holding = holding.exclude(pk=excluding_checkout_id)
    if overlapping(scheduled.filter(mentor_id=mentor_id), starts=starts, ends=ends).exists():
        return "The mentor already has a session at that time"
    if overlapping(holding.filter(mentor_id=mentor_id), starts=starts, ends=ends).exists():
        return "That slot is being booked by someone else; try again in a few minutes or pick another time"
    if mentee_id is None:
        return None
    mine = Q(mentee_id=mentee_id)
    if overlapping(scheduled.filter(mine), starts=starts, ends=ends).exists() or overlapping(
        holding.filter(mine), starts=starts, ends=ends
    ).exists():
        return "You already have a session or a booking in progress at that time"
    return None


def checkout_create(
    *, mentee: User, mentor_id: int, title: str, description: str, scheduled_at: datetime, duration_minutes: int
) -> Checkout:
    """Hold the slot and open a Stripe Checkout Session for it.

    The hold (an open Checkout row) is committed under the mentor's row lock, so two
    concurrent requests for one slot can't both pass the overlap check. Stripe is
    called after the lock is released: a slow Stripe never blocks other bookings of
    the mentor, and if Stripe fails the hold is released at once.
    """
    now = timezone.now()
    title, description = title.strip(), description.strip()
    if not title:
        raise InvalidInput("title must not be blank", field="title")
    _validate_slot(scheduled_at=scheduled_at, duration_minutes=duration_minutes, now=now)
    ends_at = scheduled_at + timedelta(minutes=duration_minutes)

    with transaction.atomic():
        mentor = Mentor.objects.select_for_update().filter(pk=mentor_id, is_active=True).select_related("user").first()
        if mentor is None:
            raise NotFound(f"Mentor {mentor_id} not found", field="mentor_id")
        if mentor.user_id == mentee.pk:
            raise NotAllowed("You can't book a session with yourself", field="mentor_id")
        # The mentee's row too: their own overlapping bookings with other mentors.
        User.objects.select_for_update().filter(pk=mentee.pk).first()
        conflict = slot_conflict(mentor_id=mentor.pk, mentee_id=mentee.pk, starts=scheduled_at, ends=ends_at)
        if conflict:
            raise Conflict(conflict, field="scheduled_at", code="slot_unavailable")
        checkout = Checkout.objects.create(
            mentee=mentee,
            mentor=mentor,
            title=title,
            description=description,
            scheduled_at=scheduled_at,
            duration_minutes=duration_minutes,
            ends_at=ends_at,
            amount=checkout_price(hourly_rate=mentor.hourly_rate, duration_minutes=duration_minutes),
            currency=mentor.currency,
            expires_at=now + timedelta(minutes=settings.CHECKOUT_HOLD_MINUTES) + STRIPE_EXPIRY_MARGIN,
        )

    ids = stripe_metadata(checkout_id=checkout.pk, mentor_id=mentor.pk, mentee_id=mentee.pk)
    try:
        stripe_session = stripe_gateway.checkout_session_create(
            idempotency_key=idempotency_key("checkout", checkout.pk),
            amount=checkout.amount,
            currency=checkout.currency,
            product_name=f"{mentor.name}: {title}"[:250],
            description=f"{duration_minutes} min mentorship session on {scheduled_at:%Y-%m-%d %H:%M %Z}",
            customer_email=mentee.email,
            client_reference_id=str(checkout.pk),
            metadata=ids,
            expires_at=checkout.expires_at,
            success_url=f"{settings.FRONTEND_URL}/sessions?success=true&session_id={{CHECKOUT_SESSION_ID}}",
            cancel_url=f"{settings.FRONTEND_URL}/mentors/{mentor.pk}?canceled=true",
        )
    except (PaymentProviderUnavailable, PaymentProviderError):
        Checkout.objects.filter(pk=checkout.pk).update(status=Checkout.Status.EXPIRED, updated_at=timezone.now())
        logger.warning("checkout %s: Stripe failed, hold released", checkout.pk)
        raise

    checkout.stripe_checkout_session_id = stripe_session["id"]
    checkout.checkout_url = stripe_session.get("url") or ""
    checkout.save(update_fields=["stripe_checkout_session_id", "checkout_url", "updated_at"])
    logger.info("checkout %s: holding %s for mentor %s as %s", checkout.pk, scheduled_at, mentor.pk, stripe_session["id"])
    return checkout
