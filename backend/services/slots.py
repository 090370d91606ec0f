"""A mentor's slot: what occupies it. The one overlap check, used by booking, fulfilment
and the availability listing, so they never disagree about a slot."""
from datetime import datetime

from django.db.models import Q, QuerySet

from backend.models import Checkout, Session


def overlapping(queryset, *, starts: datetime, ends: datetime):
    """Rows of `queryset` whose [scheduled_at, ends_at) meets [starts, ends)."""
    return queryset.filter(scheduled_at__lt=ends, ends_at__gt=starts)


def scheduled_sessions() -> QuerySet[Session]:
    return Session.objects.filter(status=Session.Status.SCHEDULED)


def blocking_holds() -> QuerySet[Checkout]:
    """Holds that keep their slot: every one still `open`, even past its expires_at. Until
    Stripe confirms its Checkout expired (the expired event, or checkout_holds_expire) it
    may have been paid with the completion still on its way, and a paid slot must never be
    sold again."""
    return Checkout.objects.filter(status=Checkout.Status.OPEN)


def slot_conflict(
    *, mentor_id: int, starts: datetime, ends: datetime, mentee_id: int | None = None,
    excluding_checkout_id: int | None = None,
) -> str | None:
    """Why this slot can't be held or booked, or None. Call with the mentor row locked.

    `mentee_id`: the mentee's own bookings with any mentor count too. `excluding_checkout_id`:
    the Checkout being fulfilled, which does not conflict with itself.
    """
    scheduled, holding = scheduled_sessions(), blocking_holds()
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
