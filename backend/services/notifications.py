"""Session emails (booked, refunded, cancelled, payment failed) and alerts to the admins.

Each email is recorded in a Notification row, unique per (session, kind, recipient),
and sent only while that row is locked and unsent, so a retried or concurrent task
never sends the same email twice.
"""
import logging
import smtplib
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parseaddr

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection, mail_admins
from django.db import connection, transaction
from django.template.loader import render_to_string
from django.utils import timezone
from icalendar import Calendar, Event, vCalAddress

from backend.models import Notification, Session

logger = logging.getLogger(__name__)

Kind = Notification.Kind
Recipient = Notification.Recipient

RECIPIENTS: dict[str, tuple[str, ...]] = {
    Kind.BOOKED: (Recipient.MENTEE, Recipient.MENTOR),
    # The mentor only when they were told of the booking (see _recipients).
    Kind.REFUNDED: (Recipient.MENTEE, Recipient.MENTOR),
    Kind.CANCELLED: (Recipient.MENTEE, Recipient.MENTOR),
    # The mentor never heard of a booking whose payment failed.
    Kind.PAYMENT_FAILED: (Recipient.MENTEE,),
}

SUBJECTS: dict[str, str] = {
    Kind.BOOKED: "Session booked: {title}",
    Kind.REFUNDED: "Refund issued: {title}",
    Kind.CANCELLED: "Session cancelled: {title}",
    Kind.PAYMENT_FAILED: "Payment failed: {title}",
}

# Stripe's zero- and three-decimal currencies; every other one has two decimals.
# https://docs.stripe.com/currencies#special-cases
ZERO_DECIMAL_CURRENCIES = frozenset(
    "bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split()
)
THREE_DECIMAL_CURRENCIES = frozenset("bhd jod kwd omr tnd".split())

ICS_PRODID = "-//MyRoadmap//Sessions//EN"


def notification_send(*, session_id: int, kind: str) -> int:
    """Send the `kind` emails about one session; returns how many were sent by this call.

    The rows are created first; each is then claimed (marked sent, locked) in its own
    transaction around its send: a concurrent call waits on the lock and then finds it
    sent. If sending fails the transaction rolls back and the row stays unsent, so the
    task's retry sends it. (Sent but then not committed would resend: at least once,
    never twice for a committed send.)
    """
    if kind not in RECIPIENTS:
        raise ValueError(f"Unknown notification kind {kind!r}; expected one of {sorted(RECIPIENTS)}")
    session = Session.objects.select_related("mentor__user", "mentee").filter(pk=session_id).first()
    if session is None:
        logger.warning("Notification %s for session %s skipped: no such session", kind, session_id)
        return 0

    recipients = _recipients(session, kind)
    # Every recipient's row in one statement (an existing one is kept as it is).
    Notification.objects.bulk_create(
        [Notification(session=session, kind=kind, recipient=recipient, email=_party(session, recipient)[1])
         for recipient in recipients],
        ignore_conflicts=True,
    )
    attachment = _attachment(session, kind)  # the same invite for everyone: built once
    mail = get_connection()  # one SMTP session for every recipient, opened at the first send
    try:
        sent = sum(_notification_send_to(session=session, kind=kind, recipient=recipient,
                                         attachment=attachment, mail=mail) for recipient in recipients)
    finally:
        mail.close()
    return sent


def _notification_send_to(*, session: Session, kind: str, recipient: str, attachment, mail) -> int:
    """One recipient's email, in its own transaction around the send: 1 if sent by this call."""
    with transaction.atomic():
        claimed = _unsent_claim(session_id=session.pk, kind=kind, recipient=recipient)
        if claimed is None:
            return 0  # sent (or refused for good) already
        notification_id, address = claimed
        try:
            message = _email_build(session=session, kind=kind, recipient=recipient, to=address,
                                   attachment=attachment)
            mail.open()  # no-op once open
            mail.send_messages([message])
        except smtplib.SMTPRecipientsRefused as exc:
            if not _refused_for_good(exc):
                raise
            # A 5xx for the address: no retry will change the answer (nor the sweep's).
            last_error = str(exc.recipients)[:4000]
            Notification.objects.filter(pk=notification_id).update(sent_at=None, refused_at=timezone.now(),
                                                                    last_error=last_error)
            logger.warning("%s email to the %s of session %s refused for good: %s", kind, recipient,
                           session.pk, last_error)
            return 0
    logger.info("Sent %s email to the %s of session %s", kind, recipient, session.pk)
    return 1


_CLAIM_UNSENT = f"""
UPDATE {Notification._meta.db_table} SET sent_at = %s
WHERE session_id = %s AND kind = %s AND recipient = %s AND sent_at IS NULL AND refused_at IS NULL
RETURNING id, email
"""


def _unsent_claim(*, session_id: int, kind: str, recipient: str) -> tuple[int, str] | None:
    """Mark the email sent, before sending it, and lock its row until the caller's
    transaction ends: if the send fails, the rollback makes it unsent again; a concurrent
    claim waits for the lock and then finds it sent. One statement: (id, address) or None."""
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_UNSENT, [timezone.now(), session_id, kind, recipient])
        return cursor.fetchone()


def _recipients(session: Session, kind: str) -> tuple[str, ...]:
    """Who gets `kind` about this session. The mentor hears of a cancellation or refund only
    if they were told of the booking: a session whose slot was lost, or whose payment did
    not match, was never theirs. A session whose start has passed was in the mentor's
    calendar (a delayed debit still pending at its start, cancelled by that policy): the
    mentor hears of it."""
    recipients = RECIPIENTS[kind]
    if kind in (Kind.CANCELLED, Kind.REFUNDED) and session.scheduled_at > timezone.now() and not Notification.objects.filter(
        session=session, kind=Kind.BOOKED, recipient=Recipient.MENTOR
    ).exists():
        recipients = tuple(r for r in recipients if r != Recipient.MENTOR)
    return recipients


def _refused_for_good(exc: smtplib.SMTPRecipientsRefused) -> bool:
    """Every recipient refused with a permanent (5xx) reply; a 4xx is worth another try."""
    return bool(exc.recipients) and all(code >= 500 for code, _ in exc.recipients.values())


def admin_alert(*, subject: str, message: str) -> None:
    """Tell the admins (settings.ADMINS) about something a person must look at.

    Used for disputes, amount mismatches and failures that need a person (events and
    refunds failed for good), queued after commit by dispatch.admin_alert_on_commit.
    Callers pass ids and amounts only, never keys, webhook secrets or card data. The alert is logged first and a mail failure is
    only logged: an alert must not make the payment handler that raised it fail.
    """
    logger.error("Admin alert: %s\n%s", subject, message)
    try:
        mail_admins(subject, message, fail_silently=False)
    except (smtplib.SMTPException, OSError):
        logger.exception("Could not email the admin alert %r", subject)


def _party(session: Session, recipient: str) -> tuple[str, str]:
    """(name, email) of the mentee or the mentor."""
    if recipient == Recipient.MENTOR:
        return session.mentor.name, session.mentor.user.email
    return session.mentee.name, session.mentee.email


def money_format(amount: int, currency: str) -> str:
    """Minor units as a readable amount: 12000 usd -> "120.00 USD", 6000 jpy -> "6,000 JPY"."""
    code = currency.lower()
    decimals = 0 if code in ZERO_DECIMAL_CURRENCIES else 3 if code in THREE_DECIMAL_CURRENCIES else 2
    value = Decimal(amount).scaleb(-decimals)
    return f"{value:,.{decimals}f} {code.upper()}"


def _when(start: datetime, end: datetime) -> str:
    """Like "Tuesday 3 March 2026, 15:00-16:00 UTC"; the end's date too when it differs."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    day = f"{start:%A} {start.day} {start:%B %Y}"
    if end.date() == start.date():
        return f"{day}, {start:%H:%M}-{end:%H:%M} UTC"
    return f"{day}, {start:%H:%M} UTC - {end:%A} {end.day} {end:%B %Y}, {end:%H:%M} UTC"


def _attachment(session: Session, kind: str) -> tuple[str, str, str] | None:
    """The calendar file a `kind` email carries: (filename, content, mimetype), or None."""
    if kind == Kind.BOOKED:
        return "invite.ics", _ics_build(session=session, method="REQUEST"), "text/calendar; method=REQUEST"
    if kind == Kind.CANCELLED:
        # Same UID with a higher SEQUENCE: calendars that took the invite drop the event.
        return "cancel.ics", _ics_build(session=session, method="CANCEL"), "text/calendar; method=CANCEL"
    return None


def _email_build(*, session: Session, kind: str, recipient: str, to: str,
                 attachment: tuple[str, str, str] | None) -> EmailMultiAlternatives:
    name, _ = _party(session, recipient)
    start = session.scheduled_at.astimezone(UTC)
    end = session.ends_at.astimezone(UTC)
    context = {
        "session": session,
        "recipient": recipient,
        "name": name,
        "mentor_name": session.mentor.name,
        "mentee_name": session.mentee.name,
        "starts_at_iso": start.isoformat(),
        "ends_at_iso": end.isoformat(),
        "when": _when(start, end),
        "duration_minutes": session.duration_minutes,
        "amount": money_format(session.amount, session.currency),
        "refunded_amount": money_format(session.refunded_amount, session.currency),
        "frontend_url": settings.FRONTEND_URL,
    }
    message = EmailMultiAlternatives(
        # A newline in a header is refused by Django; titles come from users.
        subject=SUBJECTS[kind].format(title=" ".join(session.title.split())),
        body=render_to_string(f"emails/{kind}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
    )
    message.attach_alternative(render_to_string(f"emails/{kind}.html", context), "text/html")
    if attachment is not None:
        message.attach(*attachment)
    return message


def _ics_build(*, session: Session, method: str) -> str:
    """An iCalendar invite (or cancellation) for the session, in UTC, stable UID per session."""
    calendar = Calendar()
    calendar.add("prodid", ICS_PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", method)

    event = Event()
    event.add("uid", f"session-{session.pk}@myroadmap")
    event.add("sequence", 0 if method == "REQUEST" else 1)
    event.add("dtstamp", timezone.now().astimezone(UTC))
    event.add("dtstart", session.scheduled_at.astimezone(UTC))
    event.add("dtend", session.ends_at.astimezone(UTC))
    event.add("summary", session.title)
    event.add("description", session.description or f"MyRoadmap session with {session.mentor.name}")
    event.add("status", "CONFIRMED" if method == "REQUEST" else "CANCELLED")

    # The platform organizes; neither party is the organizer of their own invite.
    from_name, from_address = parseaddr(settings.DEFAULT_FROM_EMAIL)
    organizer = vCalAddress(f"mailto:{from_address}")
    organizer.params["cn"] = from_name or "MyRoadmap"
    event.add("organizer", organizer)
    for recipient in (Recipient.MENTOR, Recipient.MENTEE):
        name, address = _party(session, recipient)
        attendee = vCalAddress(f"mailto:{address}")
        attendee.params["cn"] = name
        attendee.params["role"] = "REQ-PARTICIPANT"
        attendee.params["partstat"] = "ACCEPTED"
        event.add("attendee", attendee)

    calendar.add_component(event)
    return calendar.to_ical().decode()


def session_ics(*, session: Session) -> str:
    """The session's calendar file for download: the invite, or its cancellation."""
    return _ics_build(session=session, method="CANCEL" if session.status == Session.Status.CANCELLED else "REQUEST")
