"""Times as a person reads them: an instant in their own time zone, with the zone named.

Pages, emails and calendar files format times through here, so they always agree; the API
keeps ISO 8601 with offsets and never uses this. Zones are IANA names (Europe/Berlin),
expanded with the standard library's `zoneinfo` (the `tzdata` package where the system
has no zone files).
"""
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from importlib import resources
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from backend.errors import InvalidInput

DEFAULT_TIME_ZONE = "UTC"
# Files in the zone directory that are not zones people live in.
_NOT_ZONES = frozenset({"localtime", "Factory"})


@cache
def time_zone_names() -> tuple[str, ...]:
    """Every IANA zone name this machine knows, sorted: what a time zone may be set to."""
    return tuple(sorted((available_timezones() | {DEFAULT_TIME_ZONE}) - _NOT_ZONES))


@cache
def _known() -> frozenset[str]:
    return frozenset(time_zone_names())


@cache
def _links() -> dict[str, str]:
    """Old names still in the database (Asia/Calcutta, US/Eastern) -> the zone they now name
    (Asia/Kolkata, America/New_York), from the tzdata package's source. Browsers still report
    some old names (Chrome says Asia/Calcutta); we store the current one."""
    try:
        source = (resources.files("tzdata") / "zoneinfo" / "tzdata.zi").read_text()
    except (ModuleNotFoundError, OSError):
        return {}
    links = {}
    for line in source.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "L":
            links[parts[2]] = parts[1]
    links.pop(DEFAULT_TIME_ZONE, None)  # "UTC" is what everyone reads; not Etc/UTC
    return links


@cache
def time_zone_choices() -> tuple[str, ...]:
    """The zones to offer in a picker: current names only (old aliases are accepted, not offered)."""
    links = _links()
    return tuple(name for name in time_zone_names() if name not in links)


def time_zone_check(name: str | None, *, field: str = "time_zone") -> str:
    """The current IANA name of `name` (America/New_York; Asia/Calcutta becomes Asia/Kolkata), or
    InvalidInput naming `field` when it is not a time zone name."""
    name = (name or "").strip()
    if name not in _known():
        raise InvalidInput(f"{field} must be an IANA time zone name such as Europe/Berlin or America/New_York",
                           field=field)
    return _links().get(name, name)


def zone_or_utc(name: str | None) -> ZoneInfo:
    """The zone of a stored name; UTC for an empty name or one this machine does not know (a
    page or an email never breaks on one)."""
    try:
        return ZoneInfo(name or DEFAULT_TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIME_ZONE)


zone = zone_or_utc


def zone_name_valid(tz_name: str) -> bool:
    return (tz_name or "").strip() in _known()


def _abbreviation(local: datetime, tz_name: str) -> str:
    """ "EST (America/New_York)"; just "UTC" where the abbreviation is the name."""
    abbreviation = local.tzname() or ""
    if not abbreviation or abbreviation == tz_name:
        return tz_name
    return f"{abbreviation} ({tz_name})"


def _day(local: datetime | date) -> str:
    return f"{local:%A} {local.day} {local:%B %Y}"


def local_instant_text(dt: datetime, tz_name: str | None) -> str:
    """One instant in a zone, in full: "Tuesday 3 March 2026, 15:00 CET (Europe/Berlin)"."""
    tz_name = tz_name or DEFAULT_TIME_ZONE
    local = dt.astimezone(zone(tz_name))
    return f"{_day(local)}, {local:%H:%M} {_abbreviation(local, tz_name)}"


def local_range_text(start: datetime, end: datetime, tz_name: str | None) -> str:
    """A session in a zone: "Tuesday 3 March 2026, 15:00-16:00 CET (Europe/Berlin)"; the end's
    day too when it falls on another one; both abbreviations when a DST change falls between."""
    tz_name = tz_name or DEFAULT_TIME_ZONE
    tz = zone(tz_name)
    local_start, local_end = start.astimezone(tz), end.astimezone(tz)
    if local_start.date() != local_end.date():
        return f"{_day(local_start)}, {local_start:%H:%M} - {_day(local_end)}, {local_end:%H:%M} " \
               f"{_abbreviation(local_end, tz_name)}"
    if local_start.tzname() != local_end.tzname():
        return f"{_day(local_start)}, {local_start:%H:%M} {local_start.tzname()}-{local_end:%H:%M} " \
               f"{_abbreviation(local_end, tz_name)}"
    return f"{_day(local_start)}, {local_start:%H:%M}-{local_end:%H:%M} {_abbreviation(local_end, tz_name)}"


def local_clock_text(dt: datetime, tz_name: str | None) -> str:
    """The wall-clock time alone with its abbreviation, for lists grouped by day: "09:00 EST"."""
    local = dt.astimezone(zone(tz_name))
    return f"{local:%H:%M} {local.tzname() or tz_name}"


def local_date(dt: datetime, tz_name: str | None) -> date:
    """The calendar day an instant falls on in a zone."""
    return dt.astimezone(zone(tz_name)).date()


def date_param(text: str | None) -> date | None:
    """A YYYY-MM-DD date from a page's query or form, or None for anything else (never an error).
    Far years are refused too: a page adds weeks to it, which must not overflow."""
    try:
        day = date.fromisoformat(text) if text and len(text) == 10 else None
    except ValueError:
        return None
    return day if day and 1900 <= day.year <= 9000 else None


def local_date_text(day: date) -> str:
    """ "Saturday 13 March 2027"."""
    return _day(day)


def intervals_by_local_day(intervals: list[tuple[datetime, datetime]], tz_name: str | None
                           ) -> list[tuple[date, list[tuple[datetime, datetime]]]]:
    """Intervals cut at local midnight and grouped by local day, for a list a person reads:
    [(day, [(start, end), ...]), ...] in order. The pieces stay aware instants."""
    tz = zone(tz_name)
    days: dict[date, list[tuple[datetime, datetime]]] = {}
    for start, end in intervals:
        piece_start = start
        while piece_start < end:
            local = piece_start.astimezone(tz)
            next_midnight = datetime.combine(local.date() + timedelta(days=1), time.min, tzinfo=tz).astimezone(UTC)
            piece_end = min(end, next_midnight)
            days.setdefault(local.date(), []).append((piece_start, piece_end))
            piece_start = piece_end
    return sorted(days.items())


def local_clock_range_text(start: datetime, end: datetime, tz_name: str | None) -> str:
    """ "09:00-12:00 EST" within one day; an end at the next local midnight reads 24:00."""
    tz = zone(tz_name)
    local_start, local_end = start.astimezone(tz), end.astimezone(tz)
    end_text = "24:00" if local_end.date() > local_start.date() and local_end.time() == time.min else f"{local_end:%H:%M}"
    return f"{local_start:%H:%M}-{end_text} {local_start.tzname() or tz_name}"


def _short_day(moment: datetime) -> str:
    return f"{moment:%a} {moment.day} {moment:%b %Y}"


def local_time_text(dt: datetime, tz_name: str | None, end: datetime | None = None) -> str:
    """`dt` (and `end`, if given) in the zone `tz_name`, short, for one line (a receipt's
    product name, an email's "when"): "Wed 2 Dec 2026, 15:00–16:00 (Europe/Berlin)"; the
    end's day too when it differs."""
    zone = zone_or_utc(tz_name)
    start = (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(zone)
    name = zone.key
    if end is None:
        return f"{_short_day(start)}, {start:%H:%M} ({name})"
    finish = (end if end.tzinfo else end.replace(tzinfo=UTC)).astimezone(zone)
    if finish.date() == start.date():
        return f"{_short_day(start)}, {start:%H:%M}\u2013{finish:%H:%M} ({name})"
    return f"{_short_day(start)}, {start:%H:%M} \u2013 {_short_day(finish)}, {finish:%H:%M} ({name})"
