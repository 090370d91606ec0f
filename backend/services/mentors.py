"""Mentor catalogue and stats."""
from django.db import transaction
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
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
    """Recompute the stats from paid, non-refunded sessions in one aggregate query.

    Derived from the sessions rather than incremented, so running it twice, late, or
    out of order always gives the same answer. The mentor row is locked before the
    sessions are read: a recompute that waits behind a booking transaction (which holds
    that lock) then sees the booking, instead of writing totals from before it.
    """
    with transaction.atomic():
        if not Mentor.objects.select_for_update().filter(pk=mentor_id).exists():
            return None
        totals = Session.objects.filter(
            mentor_id=mentor_id, payment_status=Session.PaymentStatus.PAID
        ).exclude(status=Session.Status.CANCELLED).aggregate(
            sessions=Count("id"),
            minutes=Coalesce(Sum("duration_minutes"), 0),
            earnings=Coalesce(Sum("amount"), 0) - Coalesce(Sum("refunded_amount"), 0),
        )
        Mentor.objects.filter(pk=mentor_id).update(
            total_sessions=totals["sessions"],
            total_minutes=totals["minutes"],
            total_earnings=totals["earnings"],
            stats_updated_at=timezone.now(),
        )
    return Mentor.objects.get(pk=mentor_id)
