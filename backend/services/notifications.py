"""Session emails (booked, rescheduled, refunded, cancelled, payment failed) and alerts to the admins.

Each email is recorded in a Notification row, unique per (session, kind, recipient,
revision: which move a `rescheduled` email is about), and sent only while that row is
locked and unsent, so a retried or concurrent task never sends the same email twice.
Each person reads times in their own time zone (User.time_zone), in the text and in the
attached calendar file.
"""
import logging
import smtplib
from datetime import UTC, timedelta
from email.utils import parseaddr

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection, mail_admins
from django.db import connection, transaction
from django.template.loader import render_to_string
from django.utils import timezone
from icalendar import Calendar, Event, vCalAddress

from backend.models import Notification, Refund, Session
from backend.services.cancellation_policy import cancellation_policy_lines, cancellation_policy_of
from backend.services.local_time import local_time_text, zone
from backend.services.money import money_format

logger = logging.getLogger(__name__)

Kind = Notification.Kind
Recipient = Notification.Recipient

RECIPIENTS: dict[str, tuple[str, ...]] = {
    Kind.BOOKED: (Recipient.MENTEE, Recipient.MENTOR),
    Kind.RESCHEDULED: (Recipient.MENTEE, Recipient.MENTOR),
    # The mentor only when they were told of the booking (see _recipients).
    Kind.REFUNDED: (Recipient.MENTEE, Recipient.MENTOR),
    Kind.CANCELLED: (Recipient.MENTEE, Recipient.MENTOR),
    # The mentor never heard of a booking whose payment failed.
    Kind.PAYMENT_FAILED: (Recipient.MENTEE,),
    # The money goes back to the mentee: only they need to know it is delayed, then sent.
    Kind.REFUND_FAILED: (Recipient.MENTEE,),
    Kind.REFUND_RETRIED: (Recipient.MENTEE,),
}

SUBJECTS: dict[str, str] = {
    Kind.BOOKED: "Session booked: {title}",
    Kind.RESCHEDULED: "Session moved: {title}",
    Kind.REFUNDED: "Refund issued: {title}",
    Kind.CANCELLED: "Session cancelled: {title}",
    Kind.PAYMENT_FAILED: "Payment failed: {title}",
    Kind.REFUND_FAILED: "Your refund did not go through yet: {title}",
    Kind.REFUND_RETRIED: "Refund sent again: {title}",
}

# Stripe's failure_reason on a refund, as the mentee reads it.
REFUND_FAILURE_TEXT = {
    "expired_or_canceled_card": "the card it was going back to is closed or has expired",
    "lost_or_stolen_card": "the card it was going back to was reported lost or stolen",
    "charge_for_pending_refund_disputed": "the payment is being disputed with your bank",
    "insufficient_funds": "it could not be processed yet",
    "declined": "your bank declined it",
    "merchant_request": "it was stopped on our side",
}

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
    session = Session.objects.select_related("mentor__user", "mentee", "checkout").filter(pk=session_id).first()
    if session is None:
        logger.warning("Notification %s for session %s skipped: no such session", kind, session_id)
        return 0

    recipients = _recipients(session, kind)
    # A `rescheduled` email is about the latest move: two quick moves make one email, of the last.
    revision = session.reschedule_count if kind == Kind.RESCHEDULED else 0
    # Every recipient's row in one statement (an existing one is kept as it is).
    Notification.objects.bulk_create(
        [Notification(session=session, kind=kind, recipient=recipient, revision=revision,
                      email=_party(session, recipient)[1])
         for recipient in recipients],
        ignore_conflicts=True,
    )
    attachments = {}  # one invite per time zone, built once
    mail = get_connection()  # one SMTP session for every recipient, opened at the first send
    try:
        sent = 0
        for recipient in recipients:
            tz_name = _time_zone(session, recipient)
            if tz_name not in attachments:
                attachments[tz_name] = _attachment(session, kind, tz_name)
            sent += _notification_send_to(session=session, kind=kind, recipient=recipient, revision=revision,
                                          attachment=attachments[tz_name], mail=mail)
    finally:
        mail.close()
    return sent


def _notification_send_to(*, session: Session, kind: str, recipient: str, revision: int, attachment, mail) -> int:
    """One recipient's email, in its own transaction around the send: 1 if sent by this call."""
    with transaction.atomic():
        claimed = _unsent_claim(session_id=session.pk, kind=kind, recipient=recipient, revision=revision)
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
WHERE session_id = %s AND kind = %s AND recipient = %s AND revision = %s AND sent_at IS NULL AND refused_at IS NULL
RETURNING id, email
"""


def _unsent_claim(*, session_id: int, kind: str, recipient: str, revision: int) -> tuple[int, str] | None:
    """Mark the email sent, before sending it, and lock its row until the caller's
    transaction ends: if the send fails, the rollback makes it unsent again; a concurrent
    claim waits for the lock and then finds it sent. One statement: (id, address) or None."""
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_UNSENT, [timezone.now(), session_id, kind, recipient, revision])
        return cursor.fetchone()


def _recipients(session: Session, kind: str) -> tuple[str, ...]:
    """Who gets `kind` about this session. The mentor hears of a cancellation or refund only
    if they were told of the booking: a session whose slot was lost, or whose payment did
    not match, was never theirs. A session whose start has passed was in the mentor's
    calendar (a delayed debit still pending at its start, cancelled by that policy): the
    mentor hears of it."""
    recipients = RECIPIENTS[kind]
    if kind == Kind.RESCHEDULED and session.status != Session.Status.SCHEDULED:
        return ()  # cancelled since it was moved: the cancellation says what matters
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


def _time_zone(session: Session, recipient: str) -> str:
    """The recipient's own time zone, which their email and invite show times in."""
    return session.mentor.user.time_zone if recipient == Recipient.MENTOR else session.mentee.time_zone


def _party(session: Session, recipient: str) -> tuple[str, str]:
    """(name, email) of the mentee or the mentor."""
    if recipient == Recipient.MENTOR:
        return session.mentor.name, session.mentor.user.email
    return session.mentee.name, session.mentee.email


def refund_failure_text(failure_reason: str) -> str:
    """Why Stripe failed a refund, in the mentee's words."""
    return REFUND_FAILURE_TEXT.get(failure_reason, "the bank did not accept it")


def _cancelled_by_text(session: Session, recipient: str) -> str:
    """Who cancelled, as the recipient reads it ("" for a booking that never went through)."""
    by = session.cancelled_by
    if by == Session.CancelledBy.MENTOR:
        return "You cancelled it." if recipient == Recipient.MENTOR else f"{session.mentor.name} (your mentor) cancelled it."
    if by == Session.CancelledBy.MENTEE:
        return "You cancelled it." if recipient == Recipient.MENTEE else f"{session.mentee.name} (the mentee) cancelled it."
    if by == Session.CancelledBy.ADMIN:
        return "Our support team cancelled it."
    if by == Session.CancelledBy.STRIPE:
        return "The payment was refunded in full."
    if by == Session.CancelledBy.SYSTEM:
        return "The bank payment had not cleared when the session was due to start."
    return ""


def _attachment(session: Session, kind: str, tz_name: str) -> tuple[str, str, str] | None:
    """The calendar file a `kind` email carries: (filename, content, mimetype), or None."""
    if kind in (Kind.BOOKED, Kind.RESCHEDULED):
        # A move: the same UID with the next SEQUENCE, so calendars move the event.
        return "invite.ics", _ics_build(session=session, method="REQUEST", tz_name=tz_name), \
            "text/calendar; method=REQUEST"
    if kind == Kind.CANCELLED:
        # Same UID with a higher SEQUENCE: calendars that took the invite drop the event.
        return "cancel.ics", _ics_build(session=session, method="CANCEL", tz_name=tz_name), \
            "text/calendar; method=CANCEL"
    return None


def _email_build(*, session: Session, kind: str, recipient: str, to: str,
                 attachment: tuple[str, str, str] | None) -> EmailMultiAlternatives:
    name, _ = _party(session, recipient)
    tz_name = _time_zone(session, recipient)
    start = session.scheduled_at.astimezone(UTC)
    end = session.ends_at.astimezone(UTC)
    move = session.reschedules.order_by("-created_at", "-id").first() if kind == Kind.RESCHEDULED else None
    newest_refund = session.refunds.order_by("-created_at", "-id").first()
    failed_refund = session.refunds.filter(status=Refund.Status.FAILED).order_by("-created_at", "-id").first()
    context = {
        "session": session,
        "recipient": recipient,
        "name": name,
        "mentor_name": session.mentor.name,
        "mentee_name": session.mentee.name,
        "starts_at_iso": start.isoformat(),
        "ends_at_iso": end.isoformat(),
        # Each recipient's own local time, with its zone; UTC beside it for anyone elsewhere.
        "when": local_time_text(start, tz_name, end),
        "when_utc": local_time_text(start, "UTC", end) if tz_name != "UTC" else "",
        "time_zone": tz_name,
        "previous_when": local_time_text(move.previous_scheduled_at, tz_name, move.previous_ends_at) if move else "",
        "moved_by_mentor": bool(move and move.by_mentor),
        "policy_lines": cancellation_policy_lines(cancellation_policy_of(session)),
        "duration_minutes": session.duration_minutes,
        "amount": money_format(session.amount, session.currency),
        "refunded_amount": money_format(session.refunded_amount, session.currency),
        "refund_amount": money_format(newest_refund.amount if newest_refund else session.amount, session.currency),
        "failed_amount": money_format(failed_refund.amount if failed_refund else session.amount, session.currency),
        "failure_text": refund_failure_text(failed_refund.failure_reason if failed_refund else ""),
        "cancelled_by_text": _cancelled_by_text(session, recipient),
        "cancel_reason": session.cancel_reason,
        "frontend_url": settings.FRONTEND_URL or (session.checkout.site_url if session.checkout else ""),
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


def _ics_build(*, session: Session, method: str, tz_name: str = "UTC") -> str:
    """An iCalendar invite (or cancellation) for the session in the reader's time zone (a
    VTIMEZONE with it), with one UID per session. SEQUENCE counts the changes: 0 when booked,
    one more with each move, and one more again to cancel, so calendars update their event."""
    calendar = Calendar()
    calendar.add("prodid", ICS_PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", method)

    event = Event()
    event.add("uid", f"session-{session.pk}@myroadmap")
    event.add("sequence", session.reschedule_count + (0 if method == "REQUEST" else 1))
    event.add("dtstamp", timezone.now().astimezone(UTC))
    tz = zone(tz_name)
    event.add("dtstart", session.scheduled_at.astimezone(tz))
    event.add("dtend", session.ends_at.astimezone(tz))
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
    # The zone's rules around the event only: a few lines, not 1970 to 2038.
    calendar.add_missing_timezones(first_date=(session.scheduled_at - timedelta(days=366)).date(),
                                   last_date=(session.ends_at + timedelta(days=366)).date())
    return calendar.to_ical().decode()


def session_ics(*, session: Session, tz_name: str = "UTC") -> str:
    """The session's calendar file for download, in the reader's time zone: the invite, or its cancellation."""
    return _ics_build(session=session, method="CANCEL" if session.status == Session.Status.CANCELLED else "REQUEST",
                      tz_name=tz_name)
