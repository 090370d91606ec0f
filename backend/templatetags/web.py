"""Filters for the pages in templates/web/."""
from django import template

from backend.services.local_time import local_clock_range_text, local_date_text, local_range_text, local_time_text
from backend.services.notifications import money_format

register = template.Library()


@register.filter
def money(amount: int, currency: str) -> str:
    """Minor units in a currency, readable: {{ mentor.hourly_rate|money:mentor.currency }}."""
    return money_format(amount, currency)


@register.filter
def local(instant, tz_name: str) -> str:
    """An instant in a person's zone, named: {{ session.scheduled_at|local:user.time_zone }}."""
    return local_time_text(instant, tz_name) if instant else ""


@register.filter
def local_day(day) -> str:
    """A calendar day spelled out: "Saturday 13 March 2027"."""
    return local_date_text(day)


@register.simple_tag
def local_range(start, end, tz_name: str) -> str:
    """A session in a person's zone: {% local_range session.scheduled_at session.ends_at user.time_zone %}."""
    return local_range_text(start, end, tz_name)


@register.simple_tag
def local_clock_range(start, end, tz_name: str) -> str:
    """Clock times within one day: {% local_clock_range start end tz %} -> "09:00-12:00 EST"."""
    return local_clock_range_text(start, end, tz_name)
