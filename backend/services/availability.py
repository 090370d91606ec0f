"""When a mentor can be booked: their weekly schedule, minus blocked dates, sessions and live holds.

A schedule is kept as the mentor wrote it: weekly windows in local wall-clock time of
`Mentor.schedule_time_zone`, plus blocked dates (whole local days). It is laid on the
calendar with zoneinfo, day by day, so 09:00-12:00 America/New_York is 09:00-12:00 there on
both sides of a daylight-saving change (13:00-16:00 UTC in summer, 14:00-17:00 in winter). A
window whose end is at or before its start ends the next day. Changing a schedule never
touches a booked session: it only changes what can be booked next.
"""
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from backend.errors import InvalidInput, NotFound, PermissionDenied
from backend.models import BlockedDate, Mentor, User, WeeklyAvailability
from backend.services.local_time import time_zone_check, zone
from backend.services.slots import blocking_holds, overlapping, scheduled_sessions

Interval = tuple[datetime, datetime]

# The longest range one availability request may cover.
MAX_RANGE_DAYS = 62
# What one schedule may hold: enough for any week, not a way to fill the table.
MAX_WINDOWS = 50
MAX_BLOCKED_DATES = 366


@dataclass(frozen=True)
class Schedule:
    """A mentor's schedule as stored: windows and blocked dates in `time_zone`."""

    mentor_id: int
    time_zone: str
    windows: list[WeeklyAvailability]
    blocked_dates: list[date]


def _window_intervals(windows: list[WeeklyAvailability], tz_name: str, starts: datetime, ends: datetime) -> list[Interval]:
    """The weekly windows laid on the local calendar days that can meet [starts, ends), in UTC."""
    tz = zone(tz_name)
    # From the local day before: a window of that day may cross midnight into the range.
    day = starts.astimezone(tz).date() - timedelta(days=1)
    last = ends.astimezone(tz).date()
    intervals = []
    while day <= last:
        for window in windows:
            if window.weekday != day.weekday():
                continue
            end_day = day if window.end_time > window.start_time else day + timedelta(days=1)
            start = datetime.combine(day, window.start_time, tzinfo=tz).astimezone(UTC)
            end = datetime.combine(end_day, window.end_time, tzinfo=tz).astimezone(UTC)
            if start < end:
                intervals.append((start, end))
        day += timedelta(days=1)
    return intervals


def _day_intervals(days: list[date], tz_name: str) -> list[Interval]:
    """Whole local days in UTC (23 or 25 hours long on a daylight-saving change)."""
    tz = zone(tz_name)
    return [(datetime.combine(day, time.min, tzinfo=tz).astimezone(UTC),
             datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz).astimezone(UTC)) for day in days]


def _merge(intervals: list[Interval]) -> list[Interval]:
    """Overlapping or touching intervals joined: Monday 20:00-24:00 and Tuesday 00:00-02:00 are one."""
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


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


def _bookable(schedule: Schedule, starts: datetime, ends: datetime) -> list[Interval]:
    """What the schedule allows in [starts, ends): its windows (or all of it without any),
    less its blocked days, merged, in UTC."""
    allowed = (_window_intervals(schedule.windows, schedule.time_zone, starts, ends) if schedule.windows
               else [(starts, ends)])
    blocked = [day for day in schedule.blocked_dates
               if starts.astimezone(zone(schedule.time_zone)).date() - timedelta(days=1) <= day
               <= ends.astimezone(zone(schedule.time_zone)).date()]
    return _merge(_subtract(allowed, _day_intervals(blocked, schedule.time_zone)))


def _schedule_of(mentor: Mentor) -> Schedule:
    return Schedule(mentor_id=mentor.pk, time_zone=mentor.schedule_time_zone,
                    windows=list(mentor.weekly_availability.all()),
                    blocked_dates=list(mentor.blocked_dates.values_list("date", flat=True)))


def mentor_availability(*, mentor_id: int, starts: datetime | None = None, ends: datetime | None = None,
                        excluding_session_id: int | None = None) -> list[Interval]:
    """Free intervals of an active mentor between `starts` and `ends`, inside the booking window.

    With a weekly schedule only its windows count; without one the whole range is free.
    Blocked dates, scheduled sessions and open holds are taken out (except the session
    `excluding_session_id`, being moved: its own slot is free to it).
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

    free = _bookable(_schedule_of(mentor), window_start, window_end)
    sessions = scheduled_sessions().exclude(pk=excluding_session_id) if excluding_session_id else scheduled_sessions()
    busy = [
        interval
        for occupant in (sessions, blocking_holds())
        for interval in overlapping(occupant.filter(mentor_id=mentor_id), starts=window_start, ends=window_end)
        .values_list("scheduled_at", "ends_at")
    ]
    return _clip(_subtract(free, busy), window_start, window_end)


def slot_within_schedule(*, mentor_id: int, starts: datetime, ends: datetime) -> bool:
    """True when the mentor's schedule allows the whole slot: inside its windows (joined where
    they touch), or any time without windows, and on no blocked day."""
    windows = list(WeeklyAvailability.objects.filter(mentor_id=mentor_id))
    margin = timedelta(days=2)  # blocked local days that can meet the slot, whatever the zone
    blocked = list(BlockedDate.objects.filter(mentor_id=mentor_id, date__gte=(starts - margin).date(),
                                              date__lte=(ends + margin).date()).values_list("date", flat=True))
    if not windows and not blocked:
        return True
    tz_name = Mentor.objects.filter(pk=mentor_id).values_list("schedule_time_zone", flat=True).first()
    schedule = Schedule(mentor_id=mentor_id, time_zone=tz_name or "UTC", windows=windows, blocked_dates=blocked)
    return any(s <= starts and ends <= e for s, e in _bookable(schedule, starts, ends))


def _mentor_of(user: User, field: str) -> Mentor:
    mentor = Mentor.objects.filter(user=user).first()
    if mentor is None:
        raise PermissionDenied("Only mentors have a schedule", field=field)
    return mentor


def _windows_check(windows: list[dict]) -> None:
    if len(windows) > MAX_WINDOWS:
        raise InvalidInput(f"A schedule holds at most {MAX_WINDOWS} windows", field="windows")
    for index, window in enumerate(windows):
        if not 0 <= window["weekday"] <= 6:
            raise InvalidInput("weekday must be 0 (Monday) to 6 (Sunday)", field=f"windows.{index}.weekday")


def mentor_schedule_set(*, user: User, windows: list[dict] | None = None, time_zone: str | None = None,
                        blocked_dates: list[date] | None = None) -> Schedule:
    """Replace the caller's weekly schedule (they must be a mentor); an empty list of windows
    makes every time bookable. `None` leaves that part as it is.

    Windows are local wall-clock times in `time_zone` (an IANA name). Without one they stay in
    the schedule's zone, or, for a mentor with no windows yet, go into the mentor's own time
    zone. Booked sessions are never touched: the schedule decides only what can be booked next.
    """
    mentor = _mentor_of(user, "windows")
    if windows is not None:
        _windows_check(windows)
    if time_zone is not None:
        time_zone = time_zone_check(time_zone)
    if blocked_dates is not None and len(set(blocked_dates)) > MAX_BLOCKED_DATES:
        raise InvalidInput(f"At most {MAX_BLOCKED_DATES} blocked dates", field="blocked_dates")
    with transaction.atomic():
        mentor = Mentor.objects.select_for_update().get(pk=mentor.pk)  # serialise with bookings
        if time_zone is None and windows is not None and not mentor.weekly_availability.exists():
            time_zone = user.time_zone
        if time_zone is not None and time_zone != mentor.schedule_time_zone:
            mentor.schedule_time_zone = time_zone
            mentor.save(update_fields=["schedule_time_zone"])
        if windows is not None:
            WeeklyAvailability.objects.filter(mentor=mentor).delete()
            WeeklyAvailability.objects.bulk_create(
                WeeklyAvailability(mentor=mentor, weekday=w["weekday"], start_time=w["start_time"],
                                   end_time=w["end_time"])
                for w in windows
            )
        if blocked_dates is not None:
            BlockedDate.objects.filter(mentor=mentor).delete()
            BlockedDate.objects.bulk_create(BlockedDate(mentor=mentor, date=day) for day in sorted(set(blocked_dates)))
        return _schedule_of(mentor)


def mentor_schedule_get(*, mentor_id: int) -> list[WeeklyAvailability]:
    """The mentor's weekly windows as stored (local times of their schedule's zone)."""
    return list(WeeklyAvailability.objects.select_related("mentor").filter(mentor_id=mentor_id))


def mentor_schedule_own(*, user: User) -> Schedule:
    """The caller's schedule as stored, with its zone and blocked dates (mentors only)."""
    return _schedule_of(_mentor_of(user, "mentor"))


def mentor_schedule_zone_for_editing(*, user: User) -> str:
    """The zone a schedule form shows its times in: the schedule's own once it has windows,
    else the mentor's time zone (where new windows go)."""
    mentor = _mentor_of(user, "mentor")
    return mentor.schedule_time_zone if mentor.weekly_availability.exists() else user.time_zone


# Start times offered in a picker: every half hour from the start of each free interval
# (rounded up to a quarter hour), as long as the session still fits.
SLOT_STEP = timedelta(minutes=30)
SLOT_GRID = timedelta(minutes=15)


def slot_starts(intervals: list[Interval], *, duration_minutes: int) -> list[datetime]:
    """The starts a session of `duration_minutes` can take inside free intervals."""
    length = timedelta(minutes=duration_minutes)
    starts = []
    for start, end in intervals:
        since_epoch = start - datetime(1970, 1, 1, tzinfo=UTC)
        candidate = start + (-since_epoch) % SLOT_GRID
        while candidate + length <= end:
            starts.append(candidate)
            candidate += SLOT_STEP
    return starts
