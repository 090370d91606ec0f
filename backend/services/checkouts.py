"""Booking: price a slot, hold it, and open a Stripe Checkout Session for it."""
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from backend import stripe_gateway
from backend.errors import ApplicationError, Conflict, InvalidInput, NotAllowed, NotFound
from backend.models import Checkout, Mentor, Session, User
from backend.observability import context as log_context
from backend.observability.metrics import CHECKOUT_CREATIONS, counts_outcome
from backend.services.availability import slot_within_schedule
from backend.services.installation import idempotency_key, stripe_metadata
from backend.services.reconciliation import checkout_settle_from_stripe
from backend.services.slots import slot_conflict

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


def _open_hold_of(*, mentee_id: int, mentor_id: int, scheduled_at: datetime, duration_minutes: int,
                  now: datetime) -> Checkout | None:
    """The mentee's own live hold on exactly this slot, if Stripe has its page: pay there again."""
    return Checkout.objects.filter(
        mentee_id=mentee_id, mentor_id=mentor_id, scheduled_at=scheduled_at, duration_minutes=duration_minutes,
        status=Checkout.Status.OPEN, expires_at__gt=now, stripe_checkout_session_id__isnull=False,
    ).exclude(checkout_url="").first()


def _check_hold_allowed(*, mentee_id: int, mentor_id: int, starts: datetime, ends: datetime, now: datetime) -> None:
    """Refuse (409) a slot outside the mentor's schedule, taken, or one hold too many."""
    if not slot_within_schedule(mentor_id=mentor_id, starts=starts, ends=ends):
        raise Conflict("The mentor is not available at that time; pick a time from their availability",
                       field="scheduled_at", code="outside_schedule")
    conflict = slot_conflict(mentor_id=mentor_id, mentee_id=mentee_id, starts=starts, ends=ends)
    if conflict:
        raise Conflict(conflict, field="scheduled_at", code="slot_unavailable")
    holds = Checkout.objects.filter(mentee_id=mentee_id, status=Checkout.Status.OPEN, expires_at__gt=now).count()
    if holds >= settings.MAX_OPEN_HOLDS:
        raise Conflict(f"You already have {holds} bookings waiting for payment; finish or cancel one first",
                       field="mentor_id", code="too_many_open_holds")


@counts_outcome(CHECKOUT_CREATIONS)
def checkout_create(
    *, mentee: User, mentor_id: int, title: str, description: str, scheduled_at: datetime, duration_minutes: int
) -> Checkout:
    """Hold the slot and open a Stripe Checkout Session for it.

    The same mentee submitting the same slot again while their hold is open gets that
    hold back (pay on the same Checkout page) instead of a conflict.

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
        resumed = _open_hold_of(mentee_id=mentee.pk, mentor_id=mentor.pk, scheduled_at=scheduled_at,
                                duration_minutes=duration_minutes, now=now)
        if resumed:
            logger.info("checkout %s: same booking submitted again, resuming its hold", resumed.pk)
            return resumed
        _check_hold_allowed(mentee_id=mentee.pk, mentor_id=mentor.pk, starts=scheduled_at, ends=ends_at, now=now)
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
    log_context.bind(checkout_id=checkout.pk)
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
        checkout.stripe_checkout_session_id = stripe_session["id"]
        log_context.bind(session_id=stripe_session["id"])
        checkout.checkout_url = stripe_session.get("url") or ""
        checkout.save(update_fields=["stripe_checkout_session_id", "checkout_url", "updated_at"])
    except BaseException as exc:
        # Every way out but success frees the slot: Stripe refusing or timing out, the
        # database failing on the save, the worker being stopped (gunicorn's timeout
        # raises SystemExit in the request). The mentee never saw a checkout URL, so a
        # Stripe session that was created anyway can't be paid.
        _checkout_hold_release(checkout_id=checkout.pk, reason=exc)
        raise

    logger.info("checkout %s: holding %s for mentor %s as %s", checkout.pk, scheduled_at, mentor.pk, stripe_session["id"])
    return checkout


def _checkout_hold_release(*, checkout_id: int, reason: BaseException) -> None:
    """Free the slot of a hold whose Stripe session never reached the mentee (best effort:
    with the database itself down the hold ends at its expires_at instead)."""
    try:
        released = Checkout.objects.filter(pk=checkout_id, status=Checkout.Status.OPEN).update(
            status=Checkout.Status.EXPIRED, updated_at=timezone.now())
    except Exception:
        logger.warning("checkout %s: %s; could not release the hold, it lapses at expires_at",
                       checkout_id, reason.__class__.__name__, exc_info=True)
        return
    logger.warning("checkout %s: opening the Stripe session failed (%s); hold %s", checkout_id,
                   reason.__class__.__name__, "released" if released else "already gone")


def checkout_holds_open(*, mentee: User, mentor_id: int) -> list[Checkout]:
    """The mentee's live holds on a mentor's slots, payable on their Checkout page."""
    return list(Checkout.objects.filter(mentee=mentee, mentor_id=mentor_id, status=Checkout.Status.OPEN,
                                        expires_at__gt=timezone.now()).exclude(checkout_url=""))


class CheckoutState:
    """What the mentee's browser shows after Checkout, by Stripe Checkout Session id."""

    OPEN = "open"  # not paid yet (or Stripe does not say yet)
    PROCESSING = "processing"  # paid at Stripe, the booking is being confirmed
    BOOKED = "booked"
    PENDING_PAYMENT = "pending_payment"  # a delayed debit: booked once the bank confirms
    PAYMENT_FAILED = "payment_failed"  # the delayed debit failed; the slot is free again
    EXPIRED = "expired"  # the hold ended unpaid
    REFUNDED = "refunded"  # paid, then refunded (the slot was lost, or cancelled)


def checkout_state_get(*, user: User, stripe_checkout_session_id: str) -> tuple[str, Checkout, Session | None]:
    """The state of one of the caller's bookings by its Checkout Session id.

    While our row is still open, Stripe is asked and a completed session is fulfilled
    through the same service as its webhook (Stripe's advice to fulfil on the success
    page too), so a slow or lost webhook never leaves the mentee waiting.
    """
    checkout = Checkout.objects.filter(stripe_checkout_session_id=stripe_checkout_session_id, mentee=user).first()
    if checkout is None:
        raise NotFound(f"Checkout session {stripe_checkout_session_id} not found", field="session_id")
    unsettled = False
    if checkout.status == Checkout.Status.OPEN:
        try:
            checkout_settle_from_stripe(checkout_id=checkout.pk)
        except ApplicationError as exc:  # Stripe unreachable, or the event path refused it
            logger.warning("checkout %s: could not settle from Stripe: %s", checkout.pk, exc.code)
            unsettled = True
        checkout.refresh_from_db()
    session = Session.objects.select_related("mentor").filter(stripe_checkout_session_id=stripe_checkout_session_id).first()
    if session is None:
        if checkout.status == Checkout.Status.EXPIRED:
            return CheckoutState.EXPIRED, checkout, None
        if checkout.status == Checkout.Status.COMPLETE or unsettled:
            return CheckoutState.PROCESSING, checkout, None
        return CheckoutState.OPEN, checkout, None
    if session.payment_status == Session.PaymentStatus.REFUNDED or session.refunds.exists():
        return CheckoutState.REFUNDED, checkout, session
    if session.payment_status == Session.PaymentStatus.PENDING:
        if session.status == Session.Status.CANCELLED:
            return CheckoutState.PAYMENT_FAILED, checkout, session
        return CheckoutState.PENDING_PAYMENT, checkout, session
    return CheckoutState.BOOKED, checkout, session
