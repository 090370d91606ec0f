"""When a mentor can be booked: their weekly schedule minus sessions and live holds."""
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from backend.errors import InvalidInput, NotFound, PermissionDenied
from backend.models import Mentor, User, WeeklyAvailability
from backend.services.slots import blocking_holds, overlapping, scheduled_sessions

Interval = tuple[datetime, datetime]

# The longest range one availability request may cover.
MAX_RANGE_DAYS = 62


def _schedule_intervals(windows: list[WeeklyAvailability], starts: datetime, ends: datetime) -> list[Interval]:
    """The weekly windows laid out on the calendar days between starts and ends (UTC)."""
    intervals = []
    day: date = starts.astimezone(UTC).date()
    while datetime.combine(day, time.min, tzinfo=UTC) < ends:
        for window in windows:
            if window.weekday == day.weekday():
                intervals.append((datetime.combine(day, window.start_time, tzinfo=UTC),
                                  datetime.combine(day, window.end_time, tzinfo=UTC)))
        day += timedelta(days=1)
    return intervals


def _subtract(free: list[Interval], busy: list[Interval]) -> list[Interval]:
    for busy_start, busy_end in sorted(busy):
        remaining = []
        for start, end in free:
            if busy_end <= start or busy_start >= end:
                remaining.append((start, end))
                continue
            if start < busy_start:
                remaining.append((start, busy_start))
            if busy_end < end:
                remaining.append((busy_end, end))
        free = remaining
    return free


def _clip(intervals: list[Interval], starts: datetime, ends: datetime) -> list[Interval]:
    clipped = ((max(s, starts), min(e, ends)) for s, e in intervals)
    return sorted((s, e) for s, e in clipped if s < e)


def mentor_availability(*, mentor_id: int, starts: datetime | None = None, ends: datetime | None = None) -> list[Interval]:
    """Free intervals of an active mentor between `starts` and `ends`, inside the booking window.

    With a weekly schedule only its windows count; without one the whole range is free.
    Scheduled sessions and open, unexpired holds are taken out.
    """
    mentor = Mentor.objects.filter(pk=mentor_id, is_active=True).first()
    if mentor is None:
        raise NotFound(f"Mentor {mentor_id} not found", field="mentor_id")
    now = timezone.now()
    starts = starts or now
    ends = ends or starts + timedelta(days=14)
    if ends <= starts:
        raise InvalidInput("to must be after from", field="to")
    if ends - starts > timedelta(days=MAX_RANGE_DAYS):
        raise InvalidInput(f"from and to may be at most {MAX_RANGE_DAYS} days apart", field="to")
    # Bookable only from BOOKING_MIN_LEAD_MINUTES ahead, as checkout_create requires.
    window_start = max(starts, now.replace(second=0, microsecond=0)
                       + timedelta(minutes=settings.BOOKING_MIN_LEAD_MINUTES + 1))
    window_end = min(ends, now + timedelta(days=settings.BOOKING_MAX_DAYS_AHEAD))
    if window_end <= window_start:
        return []

    windows = list(mentor.weekly_availability.all())
    free = _schedule_intervals(windows, window_start, window_end) if windows else [(window_start, window_end)]
    busy = [
        interval
        for occupant in (scheduled_sessions(), blocking_holds())
        for interval in overlapping(occupant.filter(mentor_id=mentor_id), starts=window_start, ends=window_end)
        .values_list("scheduled_at", "ends_at")
    ]
    return _clip(_subtract(free, busy), window_start, window_end)


def slot_within_schedule(*, mentor_id: int, starts: datetime, ends: datetime) -> bool:
    """True when the mentor has no schedule, or one of its windows holds the whole slot."""
    windows = list(WeeklyAvailability.objects.filter(mentor_id=mentor_id))
    if not windows:
        return True
    return any(s <= starts and ends <= e for s, e in _schedule_intervals(windows, starts, ends))


def mentor_schedule_set(*, user: User, windows: list[dict]) -> list[WeeklyAvailability]:
    """Replace the caller's weekly schedule (they must be a mentor); an empty list removes it."""
    mentor = Mentor.objects.filter(user=user).first()
    if mentor is None:
        raise PermissionDenied("Only mentors have a schedule", field="windows")
    for index, window in enumerate(windows):
        if not 0 <= window["weekday"] <= 6:
            raise InvalidInput("weekday must be 0 (Monday) to 6 (Sunday)", field=f"windows.{index}.weekday")
        if window["end_time"] <= window["start_time"]:
            raise InvalidInput("end_time must be after start_time", field=f"windows.{index}.end_time")
    with transaction.atomic():
        Mentor.objects.select_for_update().filter(pk=mentor.pk).first()  # serialise with bookings
        WeeklyAvailability.objects.filter(mentor=mentor).delete()
        return WeeklyAvailability.objects.bulk_create(
            WeeklyAvailability(mentor=mentor, weekday=w["weekday"], start_time=w["start_time"], end_time=w["end_time"])
            for w in windows
        )


def mentor_schedule_get(*, mentor_id: int) -> list[WeeklyAvailability]:
    return list(WeeklyAvailability.objects.filter(mentor_id=mentor_id))
