"""Booking: price a slot, hold it, and open a Stripe Checkout Session for it."""
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from backend import stripe_gateway
from backend.errors import ApplicationError, Conflict, InvalidInput, NotAllowed, NotFound, PaymentProviderError
from backend.models import Checkout, Mentor, Session, User
from backend.observability import context as log_context
from backend.observability.metrics import CHECKOUT_CREATIONS, counts_outcome
from backend.services.availability import slot_within_schedule
from backend.services.email_verification import email_verification_check
from backend.services.fulfilment import checkout_expire
from backend.services.installation import idempotency_key, stripe_metadata
from backend.services.local_time import local_time_text, zone_name_valid
from backend.services.rate_limits import client_network
from backend.services.reconciliation import checkout_settle_from_stripe
from backend.services.slots import slot_conflict

logger = logging.getLogger(__name__)

# Stripe refuses expires_at less than 30 minutes after it receives the request; a
# minute of margin covers the network and clock skew.
STRIPE_EXPIRY_MARGIN = timedelta(minutes=1)
# The state poll asks Stripe about one open Checkout at most this often, however many
# clients poll it: Stripe's rate limit is the whole account's, checkout creation included.
STRIPE_STATE_ASK_INTERVAL_SECONDS = 5


def checkout_price(*, hourly_rate: int, duration_minutes: int) -> int:
    """hourly_rate * minutes / 60 in minor units, rounded half up."""
    return (hourly_rate * duration_minutes * 2 + 60) // 120


def minutes_text(minutes: int) -> str:
    """120 -> "2 hours", 90 -> "90 minutes", 60 -> "1 hour": a lead time as people say it."""
    if minutes % 60:
        return f"{minutes} minutes"
    hours = minutes // 60
    return "1 hour" if hours == 1 else f"{hours} hours"


def slot_start_check(*, scheduled_at: datetime, now: datetime) -> None:
    """A start a session may be booked (or moved) to: with an offset, in the booking window."""
    if scheduled_at.tzinfo is None or scheduled_at.utcoffset() is None:
        raise InvalidInput("scheduled_at must carry a UTC offset, e.g. 2026-12-01T15:00:00Z", field="scheduled_at",
                           user_message="Pick a date and time.")
    if scheduled_at <= now:
        raise InvalidInput("scheduled_at must be in the future", field="scheduled_at",
                           user_message="Pick a time in the future.")
    # Longer than the hold, so a delayed debit has time to clear and a lapsed hold to settle.
    if scheduled_at < now + timedelta(minutes=settings.BOOKING_MIN_LEAD_MINUTES):
        raise InvalidInput(
            f"scheduled_at must be at least {settings.BOOKING_MIN_LEAD_MINUTES} minutes from now", field="scheduled_at",
            user_message=f"Pick a time at least {minutes_text(settings.BOOKING_MIN_LEAD_MINUTES)} from now.",
        )
    if scheduled_at > now + timedelta(days=settings.BOOKING_MAX_DAYS_AHEAD):
        raise InvalidInput(
            f"scheduled_at must be within {settings.BOOKING_MAX_DAYS_AHEAD} days from now", field="scheduled_at",
            user_message=f"Pick a time within the next {settings.BOOKING_MAX_DAYS_AHEAD} days.",
        )


def _validate_slot(*, scheduled_at: datetime, duration_minutes: int, now: datetime) -> None:
    slot_start_check(scheduled_at=scheduled_at, now=now)
    if duration_minutes not in settings.BOOKING_ALLOWED_DURATIONS:
        allowed = ", ".join(str(d) for d in settings.BOOKING_ALLOWED_DURATIONS)
        spoken = ", ".join(str(d) for d in settings.BOOKING_ALLOWED_DURATIONS[:-1])
        raise InvalidInput(f"duration_minutes must be one of {allowed}", field="duration_minutes",
                           user_message=f"Pick a duration of {spoken + ' or ' if spoken else ''}"
                                        f"{settings.BOOKING_ALLOWED_DURATIONS[-1]} minutes.")


def _open_hold_of(*, mentee_id: int, mentor_id: int, scheduled_at: datetime, duration_minutes: int,
                  now: datetime) -> Checkout | None:
    """The mentee's own live hold on exactly this slot, if Stripe has its page: pay there again."""
    return Checkout.objects.filter(
        mentee_id=mentee_id, mentor_id=mentor_id, scheduled_at=scheduled_at, duration_minutes=duration_minutes,
        status=Checkout.Status.OPEN, expires_at__gt=now, stripe_checkout_session_id__isnull=False,
    ).exclude(checkout_url="").first()


def _check_hold_allowed(*, mentee_id: int, mentor_id: int, starts: datetime, ends: datetime, now: datetime,
                        network: str) -> None:
    """Refuse (409) a slot outside the mentor's schedule, taken, or one hold too many for the
    mentee or for their network (accounts are free: one person could open many)."""
    if not slot_within_schedule(mentor_id=mentor_id, starts=starts, ends=ends):
        raise Conflict("The mentor is not available at that time; pick a time from their availability",
                       field="scheduled_at", code="outside_schedule",
                       user_message="The mentor is not available then; pick one of the times shown.")
    conflict = slot_conflict(mentor_id=mentor_id, mentee_id=mentee_id, starts=starts, ends=ends)
    if conflict:
        raise Conflict(conflict, field="scheduled_at", code="slot_unavailable")
    holds = Checkout.objects.filter(mentee_id=mentee_id, status=Checkout.Status.OPEN, expires_at__gt=now).count()
    if holds >= settings.MAX_OPEN_HOLDS:
        raise Conflict(f"You already have {holds} bookings waiting for payment; finish or cancel one first",
                       field="mentor_id", code="too_many_open_holds",
                       user_message=f"You already have {holds} bookings waiting for payment. Pay for one, or cancel "
                                    "one under \u201cWaiting for payment\u201d on My sessions, then book again.")
    # An abuse limit per address like the rate limits: RATE_LIMIT_ENABLED=false (load tests from
    # one address) turns it off with them.
    if network and settings.RATE_LIMIT_ENABLED and Checkout.objects.filter(
            client_network=network, status=Checkout.Status.OPEN,
            expires_at__gt=now).count() >= settings.MAX_OPEN_HOLDS_PER_ADDRESS:
        raise Conflict("Too many bookings from your network are waiting for payment; finish one first or try later",
                       field="mentor_id", code="too_many_open_holds")


def _network_lock(network: str) -> None:
    """Serialise hold checks of one network for this transaction (PostgreSQL; SQLite's
    IMMEDIATE transactions are serial already), as the mentee's row lock does per account."""
    if network and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"holds:{network}"])


def checkout_line_item(*, mentor_name: str, title: str, scheduled_at: datetime, duration_minutes: int,
                       time_zone: str) -> tuple[str, str]:
    """The Checkout line item's product name and description: what was bought, when and for
    how long, as the mentee's receipt will say it (in the zone they booked in)."""
    ends_at = scheduled_at + timedelta(minutes=duration_minutes)
    when = local_time_text(scheduled_at, time_zone, ends_at)
    tail = f" \u2014 {when}, {duration_minutes} min"
    head = f"{mentor_name}: "
    # Stripe keeps names short; the title gives way so the date and time always fit.
    room = 250 - len(head) - len(tail)
    name = head + (title if len(title) <= room else title[:max(room - 1, 0)] + "\u2026") + tail
    description = f"{duration_minutes}-minute mentorship session with {mentor_name}, {when}"
    return name[:250], description[:500]


def _zone_of_booking(scheduled_at: datetime, time_zone: str | None, mentee: User) -> str:
    """The zone the mentee booked in: the page's (the browser's), else the start's own zone
    when it is a named one, else the mentee's."""
    if time_zone and zone_name_valid(time_zone):
        return time_zone
    key = getattr(scheduled_at.tzinfo, "key", None)
    if key and key != "UTC":
        return key
    return mentee.time_zone or "UTC"


@counts_outcome(CHECKOUT_CREATIONS)
def checkout_create(
    *, mentee: User, mentor_id: int, title: str, description: str, scheduled_at: datetime, duration_minutes: int,
    client_address: str | None = None, site_url: str = "", time_zone: str | None = None,
) -> Checkout:
    """Hold the slot and open a Stripe Checkout Session for it.

    Open holds are limited per mentee (MAX_OPEN_HOLDS) and per client network, the address
    or its IPv6 /64 (MAX_OPEN_HOLDS_PER_ADDRESS, when `client_address` is given and
    RATE_LIMIT_ENABLED). With
    REQUIRE_EMAIL_VERIFICATION a first booking needs a verified email (403 otherwise).
    `site_url` (scheme and host the mentee is on) is where Checkout sends them back when
    FRONTEND_URL is unset. `time_zone` is the zone the booking form was filled in: the
    line item names the time in it, and it becomes the mentee's zone if they have none yet
    (still the default UTC), so their emails show their local time.

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
        raise InvalidInput("title must not be blank", field="title", user_message="Give the session a title.")
    _validate_slot(scheduled_at=scheduled_at, duration_minutes=duration_minutes, now=now)
    email_verification_check(user=mentee)
    ends_at = scheduled_at + timedelta(minutes=duration_minutes)
    network = client_network(client_address) if client_address else ""

    with transaction.atomic():
        mentor = Mentor.objects.select_for_update().filter(pk=mentor_id, is_active=True).select_related("user").first()
        if mentor is None:
            raise NotFound(f"Mentor {mentor_id} not found", field="mentor_id",
                           user_message="This mentor is not taking bookings at the moment.")
        if mentor.user_id == mentee.pk:
            raise NotAllowed("You can't book a session with yourself", field="mentor_id")
        # The mentee's row too: their own overlapping bookings with other mentors.
        User.objects.select_for_update().filter(pk=mentee.pk).first()
        _network_lock(network)
        booked_in = _zone_of_booking(scheduled_at, time_zone, mentee)
        if time_zone and booked_in != mentee.time_zone and mentee.time_zone in ("", "UTC"):
            User.objects.filter(pk=mentee.pk).update(time_zone=booked_in)
            mentee.time_zone = booked_in
        resumed = _open_hold_of(mentee_id=mentee.pk, mentor_id=mentor.pk, scheduled_at=scheduled_at,
                                duration_minutes=duration_minutes, now=now)
        if resumed:
            logger.info("checkout %s: same booking submitted again, resuming its hold", resumed.pk)
            return resumed
        _check_hold_allowed(mentee_id=mentee.pk, mentor_id=mentor.pk, starts=scheduled_at, ends=ends_at, now=now,
                            network=network)
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
            client_network=network,
            site_url=site_url[:300],
        )

    ids = stripe_metadata(checkout_id=checkout.pk, mentor_id=mentor.pk, mentee_id=mentee.pk)
    log_context.bind(checkout_id=checkout.pk)
    product_name, product_description = checkout_line_item(
        mentor_name=mentor.name, title=title, scheduled_at=scheduled_at, duration_minutes=duration_minutes,
        time_zone=booked_in)
    back_to = site_base_url(checkout)
    try:
        stripe_session = stripe_gateway.checkout_session_create(
            idempotency_key=idempotency_key("checkout", checkout.pk),
            amount=checkout.amount,
            currency=checkout.currency,
            product_name=product_name,
            description=product_description,
            customer_email=mentee.email,
            client_reference_id=str(checkout.pk),
            metadata=ids,
            expires_at=checkout.expires_at,
            success_url=f"{back_to}/sessions?success=true&session_id={{CHECKOUT_SESSION_ID}}",
            cancel_url=f"{back_to}/mentors/{mentor.pk}?canceled=true",
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


def site_base_url(checkout: Checkout | None = None) -> str:
    """Where our pages are, for links leaving the site (Checkout's return, emails):
    FRONTEND_URL when set, else the site the booking was made on."""
    return settings.FRONTEND_URL or (checkout.site_url if checkout is not None else "")


def checkout_holds_open(*, mentee: User, mentor_id: int | None = None) -> list[Checkout]:
    """The mentee's live holds (on one mentor's slots, or all), payable on their Checkout page."""
    holds = Checkout.objects.filter(mentee=mentee, status=Checkout.Status.OPEN, expires_at__gt=timezone.now())
    if mentor_id is not None:
        holds = holds.filter(mentor_id=mentor_id)
    return list(holds.exclude(checkout_url="").select_related("mentor").order_by("expires_at", "pk"))


def checkout_hold_cancel(*, user: User, stripe_checkout_session_id: str) -> tuple[str, Checkout, Session | None]:
    """The mentee gives up a hold: its Checkout is expired at Stripe and the slot is free.

    Stripe decides: it expires only a Checkout that is still open, so a payment completing
    at the same moment wins, and is booked (409 then says so). Cancelling twice is
    harmless. Returns the booking's state, as checkout_state_get does.
    """
    checkout = Checkout.objects.filter(stripe_checkout_session_id=stripe_checkout_session_id, mentee=user).first()
    if checkout is None:
        raise NotFound(f"Checkout session {stripe_checkout_session_id} not found", field="session_id")
    if checkout.status == Checkout.Status.OPEN:
        try:
            stripe_session = stripe_gateway.checkout_session_expire(stripe_checkout_session_id)
        except PaymentProviderError:
            # Stripe refuses to expire a Checkout that is no longer open: settle it as Stripe has it.
            checkout_settle_from_stripe(checkout_id=checkout.pk)
        else:
            with transaction.atomic():
                checkout_expire(stripe_session=stripe_session)
            logger.info("checkout %s: hold cancelled by the mentee, expired at Stripe", checkout.pk)
        checkout.refresh_from_db()
    if checkout.status == Checkout.Status.COMPLETE:
        raise Conflict("This booking is already paid; cancel the session instead", field="session_id",
                       code="checkout_complete",
                       user_message="This booking was paid meanwhile, so it is booked; cancel the session "
                                    "instead if you no longer want it.")
    return _checkout_state(checkout)


def _stripe_ask_allowed(*, checkout_id: int) -> bool:
    """True for the first asker of each STRIPE_STATE_ASK_INTERVAL_SECONDS window per Checkout,
    across every web process (an atomic add in the shared cache); the others answer from our
    rows, which the webhook keeps current. A cache that can't answer lets the ask through
    (logged), as the rate limits do: a Redis outage must not stall bookings."""
    try:
        return cache.add(f"checkout:{checkout_id}:stripe-asked", True, timeout=STRIPE_STATE_ASK_INTERVAL_SECONDS)
    except Exception:
        logger.warning("checkout %s: cache unavailable, asking Stripe without the interval", checkout_id, exc_info=True)
        return True


class CheckoutState:
    """What the mentee's browser shows after Checkout, by Stripe Checkout Session id."""

    OPEN = "open"  # not paid yet (or Stripe does not say yet)
    PROCESSING = "processing"  # paid at Stripe, the booking is being confirmed
    BOOKED = "booked"  # booked and paid (part of it may have been refunded since)
    PENDING_PAYMENT = "pending_payment"  # a delayed debit: booked once the bank confirms
    PAYMENT_FAILED = "payment_failed"  # the delayed debit failed; the slot is free again
    EXPIRED = "expired"  # the hold ended unpaid (or the mentee cancelled it)
    REFUNDED = "refunded"  # paid but never booked (the slot was taken meanwhile): refunded in full
    CANCELLED = "cancelled"  # booked, then cancelled (by a party, an admin, or a refund in full at Stripe)


def checkout_state_get(*, user: User, stripe_checkout_session_id: str) -> tuple[str, Checkout, Session | None]:
    """The state of one of the caller's bookings by its Checkout Session id.

    While our row is still open, Stripe is asked (at most once every
    STRIPE_STATE_ASK_INTERVAL_SECONDS per Checkout) and a completed session is fulfilled
    through the same service as its webhook (Stripe's advice to fulfil on the success
    page too), so a slow or lost webhook never leaves the mentee waiting.
    """
    checkout = Checkout.objects.filter(stripe_checkout_session_id=stripe_checkout_session_id, mentee=user).first()
    if checkout is None:
        raise NotFound(f"Checkout session {stripe_checkout_session_id} not found", field="session_id")
    unsettled = False
    if checkout.status == Checkout.Status.OPEN and _stripe_ask_allowed(checkout_id=checkout.pk):
        try:
            checkout_settle_from_stripe(checkout_id=checkout.pk)
        except ApplicationError as exc:  # Stripe unreachable, or the event path refused it
            logger.warning("checkout %s: could not settle from Stripe: %s", checkout.pk, exc.code)
            unsettled = True
        checkout.refresh_from_db()
    return _checkout_state(checkout, unsettled=unsettled)


def _checkout_state(checkout: Checkout, *, unsettled: bool = False) -> tuple[str, Checkout, Session | None]:
    session = (Session.objects.select_related("mentor").prefetch_related("refunds")
               .filter(stripe_checkout_session_id=checkout.stripe_checkout_session_id).first())
    if session is None:
        if checkout.status == Checkout.Status.EXPIRED:
            return CheckoutState.EXPIRED, checkout, None
        if checkout.status == Checkout.Status.COMPLETE or unsettled:
            return CheckoutState.PROCESSING, checkout, None
        return CheckoutState.OPEN, checkout, None
    if session.status == Session.Status.CANCELLED:
        if session.payment_status == Session.PaymentStatus.PENDING:
            return CheckoutState.PAYMENT_FAILED, checkout, session
        if session.cancelled_by:
            return CheckoutState.CANCELLED, checkout, session
        return CheckoutState.REFUNDED, checkout, session
    if session.payment_status == Session.PaymentStatus.PENDING:
        return CheckoutState.PENDING_PAYMENT, checkout, session
    return CheckoutState.BOOKED, checkout, session
