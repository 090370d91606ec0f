"""Mentor catalogue and stats."""
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from backend.errors import NotFound
from backend.models import Expertise, Mentor, Session


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


def mentor_stats_recompute(*, mentor_id: int) -> Mentor | None:
    """Recompute the stats from paid, non-refunded sessions (mentor_stats_write) and
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
    SELECT count(*), coalesce(sum(duration_minutes), 0), coalesce(sum(amount), 0) - coalesce(sum(refunded_amount), 0), %s
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
