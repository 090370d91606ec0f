"""Filters for the pages in templates/web/."""
from django import template

from backend.services.notifications import money_format

register = template.Library()


@register.filter
def money(amount: int, currency: str) -> str:
    """Minor units in a currency, readable: {{ mentor.hourly_rate|money:mentor.currency }}."""
    return money_format(amount, currency)
