"""The booking page's slot picker: when a session of one length can start, day by day, on
the clock of the person looking. Computed from the mentor's free intervals
(availability.mentor_availability), so the picker never offers what booking would refuse."""
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.conf import settings
from django.utils import timezone

from backend.errors import InvalidInput, NotFound
from backend.models import Mentor
from backend.services.availability import MAX_RANGE_DAYS, mentor_availability
from backend.services.checkouts import checkout_price
from backend.services.local_time import zone_name_valid, zone_or_utc


def slot_grid_minutes(duration_minutes: int) -> int:
    """Starts on the half hour; a length that is not a multiple of 30 (45 minutes) gets a
    quarter-hour grid so back-to-back sessions leave no gap."""
    return 30 if duration_minutes % 30 == 0 else 15


@dataclass
class BookableStarts:
    """What the picker shows: the price of the chosen length and its start times by local day."""

    mentor_id: int
    time_zone: str
    duration_minutes: int
    grid_minutes: int
    amount: int
    currency: str
    days: list[tuple[date, list[datetime]]] = field(default_factory=list)


def _starts_in(start: datetime, end: datetime, *, length: timedelta, grid: int, zone) -> list[datetime]:
    """Grid-aligned starts (on the viewer's clock) of sessions of `length` inside [start, end)."""
    first = start.replace(second=0, microsecond=0)
    if first < start:
        first += timedelta(minutes=1)
    local = first.astimezone(zone)
    first += timedelta(minutes=(-(local.hour * 60 + local.minute)) % grid)
    starts, moment, step = [], first, timedelta(minutes=grid)
    while moment + length <= end:
        starts.append(moment)
        moment += step
    return starts


def mentor_bookable_starts(*, mentor_id: int, duration_minutes: int, days: int = 14,
                           time_zone: str = "UTC") -> BookableStarts:
    """Start times a session of `duration_minutes` can be booked at in the next `days` days,
    grouped by day in `time_zone` (an IANA name), with its price."""
    if duration_minutes not in settings.BOOKING_ALLOWED_DURATIONS:
        allowed = ", ".join(str(d) for d in settings.BOOKING_ALLOWED_DURATIONS)
        raise InvalidInput(f"duration_minutes must be one of {allowed}", field="duration_minutes")
    if not 1 <= days <= MAX_RANGE_DAYS:
        raise InvalidInput(f"days must be between 1 and {MAX_RANGE_DAYS}", field="days")
    if not zone_name_valid(time_zone):
        raise InvalidInput("time_zone must be an IANA time zone name, e.g. Europe/Berlin", field="time_zone")
    mentor = Mentor.objects.filter(pk=mentor_id, is_active=True).first()
    if mentor is None:
        raise NotFound(f"Mentor {mentor_id} not found", field="mentor_id")
    zone = zone_or_utc(time_zone)
    now = timezone.now()
    grid = slot_grid_minutes(duration_minutes)
    length = timedelta(minutes=duration_minutes)
    by_day: dict[date, list[datetime]] = {}
    for start, end in mentor_availability(mentor_id=mentor_id, starts=now, ends=now + timedelta(days=days)):
        for moment in _starts_in(start, end, length=length, grid=grid, zone=zone):
            by_day.setdefault(moment.astimezone(zone).date(), []).append(moment.astimezone(zone))
    return BookableStarts(
        mentor_id=mentor.pk, time_zone=zone.key, duration_minutes=duration_minutes, grid_minutes=grid,
        amount=checkout_price(hourly_rate=mentor.hourly_rate, duration_minutes=duration_minutes),
        currency=mentor.currency, days=sorted(by_day.items()),
    )


def mentor_prices(*, mentor: Mentor) -> dict[int, int]:
    """The price of each allowed length with this mentor, minor units."""
    return {minutes: checkout_price(hourly_rate=mentor.hourly_rate, duration_minutes=minutes)
            for minutes in settings.BOOKING_ALLOWED_DURATIONS}
