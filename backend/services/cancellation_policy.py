"""The cancellation policy: tiers of refund by notice, copied onto a session when it is paid.

A mentee who cancels at least `min_hours_before` hours before the start gets
`refund_percent` of what they paid (the first tier, most notice first, that the notice
meets); later than every tier, nothing. A mentor's cancellation always refunds in full, and
so does the mentee's when the mentor was the last to move the session. The tiers live in
settings.CANCELLATION_POLICY and are snapshotted on the session when it is paid, so changing
the settings never changes what an existing booking promised.
"""
from datetime import datetime, timedelta

from django.conf import settings

from backend.models import Session

Policy = list[dict[str, int]]


def cancellation_policy_current() -> Policy:
    """The tiers new bookings are sold under (the booking page states them)."""
    return [dict(tier) for tier in settings.CANCELLATION_POLICY]


def cancellation_policy_snapshot(session: Session) -> None:
    """Copy today's tiers onto a session being paid (the caller saves it)."""
    if session.cancellation_policy is None:
        session.cancellation_policy = cancellation_policy_current()


def cancellation_policy_of(session: Session) -> Policy:
    """The tiers this session was sold under; today's for one not paid yet."""
    return session.cancellation_policy if session.cancellation_policy is not None else cancellation_policy_current()


def refund_percent_for_notice(policy: Policy, *, starts: datetime, now: datetime) -> int:
    """The percent a mentee's cancellation at `now` refunds of a session starting at `starts`."""
    notice = starts - now
    for tier in sorted(policy, key=lambda t: -t["min_hours_before"]):
        if notice >= timedelta(hours=tier["min_hours_before"]):
            return tier["refund_percent"]
    return 0


def refund_amount(amount: int, percent: int) -> int:
    """`percent` of `amount` in minor units, rounded half up."""
    return (amount * percent * 2 + 100) // 200


def _hours(hours: int) -> str:
    return f"{hours} hour{'s' if hours != 1 else ''}"


def cancellation_policy_lines(policy: Policy) -> list[str]:
    """The tiers in words, one line each, for pages and emails."""
    lines = []
    tiers = sorted(policy, key=lambda t: -t["min_hours_before"])
    for tier in tiers:
        percent = tier["refund_percent"]
        refund = ("a full refund" if percent == 100 else f"a {percent} % refund" if percent
                  else "no refund (your mentor can still cancel it)")
        when = ("any time before the start" if tier["min_hours_before"] == 0
                else f"at least {_hours(tier['min_hours_before'])} before the start")
        lines.append(f"Cancelled by you {when}: {refund}.")
    if not tiers or tiers[-1]["min_hours_before"] > 0:
        later = f"less than {_hours(tiers[-1]['min_hours_before'])} before the start" if tiers else "at any time"
        lines.append(f"Cancelled by you {later}: no refund (your mentor can still cancel it).")
    lines.append("Cancelled or moved by your mentor: you can always get a full refund.")
    return lines
