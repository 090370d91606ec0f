"""Mentor catalogue, a mentor's own profile and bookings, and stats."""
import re

from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from backend.errors import InvalidInput, NotFound, PermissionDenied
from backend.models import Expertise, Mentor, Session, User
from backend.services.text import text_storable_check

# Mentor.bio has no column limit; a profile is read by people, not stored as a book.
BIO_MAX_LENGTH = 5000
MAX_HOURLY_RATE = 10_000_000  # minor units: 100,000.00 of a two-decimal currency


def mentor_list(*, expertise: str | None = None, search: str | None = None) -> QuerySet[Mentor]:
    """Active mentors, optionally those teaching `expertise` (a slug) or matching `search`."""
    mentors = Mentor.objects.filter(is_active=True).prefetch_related("expertise")
    if expertise:
        # A subquery rather than a join, so no DISTINCT (which would sort every column).
        mentors = mentors.filter(pk__in=Mentor.expertise.through.objects.filter(
            expertise__slug=expertise.strip().lower()).values("mentor_id"))
    if search:
        mentors = mentors.filter(Q(name__icontains=search) | Q(headline__icontains=search))
    return mentors.order_by("name", "id")


def expertise_list() -> QuerySet[Expertise]:
    """Every topic, for the catalogue's filter."""
    return Expertise.objects.order_by("name")


def mentor_get(*, mentor_id: int) -> Mentor:
    try:
        return Mentor.objects.prefetch_related("expertise").get(pk=mentor_id, is_active=True)
    except Mentor.DoesNotExist:
        raise NotFound(f"Mentor {mentor_id} not found", field="mentor_id")


def mentor_own(*, user: User) -> Mentor:
    """The caller's own mentor profile (active or not); PermissionDenied for a non-mentor."""
    mentor = Mentor.objects.prefetch_related("expertise").filter(user=user).first()
    if mentor is None:
        raise PermissionDenied("Only mentors have a mentor profile", field="mentor")
    return mentor


def _text(value: str, field: str, max_length: int, *, required: bool = False) -> str:
    value = value.strip()
    if required and not value:
        raise InvalidInput(f"{field} must not be empty", field=field)
    if len(value) > max_length:
        raise InvalidInput(f"{field} must be at most {max_length} characters", field=field)
    try:
        return text_storable_check(value)
    except ValueError as exc:
        raise InvalidInput(f"{field} {exc}", field=field)


def mentor_profile_update(*, user: User, name: str | None = None, headline: str | None = None, bio: str | None = None,
                          hourly_rate: int | None = None, currency: str | None = None) -> Mentor:
    """Change the caller's mentor profile; `None` leaves a field as it is. The rate is in minor
    units of `currency`; sessions already booked keep the price they were sold at, and new
    ones are priced from these on the server."""
    mentor = mentor_own(user=user)
    if name is not None:
        mentor.name = _text(name, "name", Mentor._meta.get_field("name").max_length, required=True)
    if headline is not None:
        mentor.headline = _text(headline, "headline", Mentor._meta.get_field("headline").max_length)
    if bio is not None:
        mentor.bio = _text(bio, "bio", BIO_MAX_LENGTH)
    if hourly_rate is not None:
        if not 0 < hourly_rate <= MAX_HOURLY_RATE:
            raise InvalidInput(f"hourly_rate must be between 1 and {MAX_HOURLY_RATE} (minor units)",
                               field="hourly_rate")
        mentor.hourly_rate = hourly_rate
    if currency is not None:
        currency = currency.strip().lower()
        if not re.fullmatch(r"[a-z]{3}", currency):
            raise InvalidInput("currency must be a three-letter ISO 4217 code such as usd", field="currency")
        mentor.currency = currency
    with transaction.atomic():
        # Under the row lock a booking takes, so a booking is priced wholly before or after.
        Mentor.objects.select_for_update().filter(pk=mentor.pk).first()
        mentor.save(update_fields=["name", "headline", "bio", "hourly_rate", "currency"])
    return mentor


def mentor_bookings(*, user: User, when: str = "upcoming") -> QuerySet[Session]:
    """The caller's sessions as mentor, by start: `upcoming` (not ended yet) soonest first, or
    `past` (ended) latest first. PermissionDenied for a non-mentor."""
    mentor = Mentor.objects.filter(user=user).values_list("pk", flat=True).first()
    if mentor is None:
        raise PermissionDenied("Only mentors have bookings to give", field="mentor")
    sessions = Session.objects.select_related("mentor", "mentee").prefetch_related("refunds").filter(mentor_id=mentor)
    now = timezone.now()
    if when == "past":
        return sessions.filter(ends_at__lte=now).order_by("-scheduled_at", "-id")
    return sessions.filter(ends_at__gt=now).order_by("scheduled_at", "id")


def mentor_stats_recompute(*, mentor_id: int) -> Mentor | None:
    """Recompute the stats from paid, non-cancelled sessions (mentor_stats_write: earnings net
    of refunds and of lost disputes) and
    return the mentor, or None if there is none.

    Derived from the sessions rather than incremented, so running it twice, late, or
    out of order always gives the same answer. The mentor row is locked before the
    sessions are read: a recompute that waits behind a booking transaction (which holds
    that lock) then sees the booking, instead of writing totals from before it.
    """
    with transaction.atomic():
        mentor = Mentor.objects.select_for_update().filter(pk=mentor_id).first()
        if mentor is None:
            return None
        mentor_stats_write(mentor_id=mentor_id)
    mentor.refresh_from_db(fields=["total_sessions", "total_minutes", "total_earnings", "stats_updated_at"])
    return mentor


_STATS_UPDATE = f"""
UPDATE {Mentor._meta.db_table}
SET (total_sessions, total_minutes, total_earnings, stats_updated_at) = (
    SELECT count(*), coalesce(sum(duration_minutes), 0),
           coalesce(sum(amount), 0) - coalesce(sum(refunded_amount), 0) - coalesce(sum(dispute_lost_amount), 0), %s
    FROM {Session._meta.db_table}
    WHERE mentor_id = %s AND payment_status = %s AND status <> %s)
WHERE id = %s
"""


def mentor_stats_write(*, mentor_id: int) -> None:
    """The stats, aggregated and written by one statement. Call with the mentor row locked
    (fulfilment holds it already: this is the whole cost of the stats on a booking)."""
    with connection.cursor() as cursor:
        cursor.execute(_STATS_UPDATE, [timezone.now(), mentor_id, Session.PaymentStatus.PAID,
                                       Session.Status.CANCELLED, mentor_id])
