"""Times as a person reads them: in their own zone (User.time_zone, an IANA name), with
the zone named, so nobody has to convert from UTC in their head."""
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def zone_or_utc(tz_name: str | None) -> ZoneInfo:
    """The zone of an IANA name; UTC for an empty or unknown one (a bad value never breaks a page or an email)."""
    try:
        return ZoneInfo(tz_name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def zone_name_valid(tz_name: str) -> bool:
    try:
        ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _day(moment: datetime) -> str:
    return f"{moment:%a} {moment.day} {moment:%b %Y}"


def local_time_text(dt: datetime, tz_name: str | None, end: datetime | None = None) -> str:
    """`dt` (and `end`, if given) in the zone `tz_name`, e.g.
    "Wed 2 Dec 2026, 15:00–16:00 (Europe/Berlin)"; the end's day too when it differs."""
    zone = zone_or_utc(tz_name)
    start = (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(zone)
    name = zone.key
    if end is None:
        return f"{_day(start)}, {start:%H:%M} ({name})"
    finish = (end if end.tzinfo else end.replace(tzinfo=UTC)).astimezone(zone)
    if finish.date() == start.date():
        return f"{_day(start)}, {start:%H:%M}\u2013{finish:%H:%M} ({name})"
    return f"{_day(start)}, {start:%H:%M} \u2013 {_day(finish)}, {finish:%H:%M} ({name})"
