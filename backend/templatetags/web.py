"""Filters for the pages in templates/web/: money and states in words, never raw values."""
from django import template

from backend.models import Refund, Session
from backend.services.local_time import local_clock_range_text, local_date_text, local_instant_text, local_range_text
from backend.services.money import money_format
from backend.services.notifications import refund_failure_text

register = template.Library()

IN_FLIGHT = (Refund.Status.REQUESTED, Refund.Status.PENDING)


@register.filter
def money(amount: int, currency: str) -> str:
    """Minor units in a currency, readable: {{ mentor.hourly_rate|money:mentor.currency }}."""
    return money_format(amount, currency)


@register.filter
def local(instant, tz_name: str) -> str:
    """An instant in a person's zone, named: {{ session.scheduled_at|local:user.time_zone }}."""
    return local_instant_text(instant, tz_name) if instant else ""


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


@register.filter
def session_status_text(session: Session) -> str:
    """The session's state in words: Scheduled, Took place, Cancelled."""
    if session.status == Session.Status.CANCELLED:
        return "Cancelled"
    if session.status == Session.Status.COMPLETED:
        return "Took place"
    return "Scheduled"


@register.filter
def payment_text(session: Session) -> str:
    """The payment in words: paid, refunded (in part), waiting for the bank, disputed."""
    if session.payment_status == Session.PaymentStatus.PENDING:
        return "Not paid" if session.status == Session.Status.CANCELLED else "Waiting for your bank"
    if session.payment_status == Session.PaymentStatus.REFUNDED:
        return "Refunded in full"
    text = "Paid"
    if session.refunded_amount:
        text += f", {money_format(session.refunded_amount, session.currency)} refunded"
    if session.is_disputed:
        text += " \u00b7 under dispute"
    return text


@register.filter
def newest_refund(session: Session | None) -> Refund | None:
    """The session's latest refund, from the page's prefetch (no query per row)."""
    if session is None:
        return None
    refunds = getattr(session, "refunds_newest_first", None)
    if refunds is None:
        refunds = list(session.refunds.order_by("-created_at", "-id")[:1])
    return refunds[0] if refunds else None


@register.filter
def refund_in_flight(refund: Refund | None) -> bool:
    return refund is not None and refund.status in IN_FLIGHT


@register.simple_tag
def refund_text(refund: Refund | None, role: str = "mentee") -> str:
    """A refund's state in words, for the mentee (whose money it is) or the mentor."""
    if refund is None:
        return "No refund"
    amount = money_format(refund.amount, refund.currency)
    if refund.status == Refund.Status.REQUESTED:
        return f"Refund of {amount} requested; waiting for Stripe to confirm"
    if refund.status == Refund.Status.PENDING:
        return f"Refund of {amount} on its way; the bank is processing it"
    if refund.status == Refund.Status.SUCCEEDED:
        return f"Refunded {amount}"
    if refund.status == Refund.Status.CANCELED:
        return "No refund needed: the payment was already refunded in full"
    if role == "mentor":
        return f"Refund of {amount} to the mentee did not go through; our team is sending it again"
    return (f"Refund of {amount} did not go through: {refund_failure_text(refund.failure_reason)}. "
            "Nothing to do on your side: our team will send it again or contact you, and we will email you.")
