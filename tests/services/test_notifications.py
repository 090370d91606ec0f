"""Session emails: who gets them, what they say, the .ics invite, and never twice."""
import time
from datetime import UTC, timedelta

import pytest
from django.core import mail
from icalendar import Calendar

from backend.models import Mentor, Notification
from backend.services.notifications import admin_alert, notification_send
from backend.tasks import mentor_stats_recompute_task
from backend.tasks.notifications import send_session_notification
from tests.factories import make_mentor, make_session, make_user

pytestmark = pytest.mark.django_db


def booked_session(**fields):
    mentor = make_mentor(name="Grace Hopper", hourly_rate=12000, currency="usd")
    mentee = make_user(name="Ada Lovelace")
    return make_session(mentor=mentor, mentee=mentee, title="Career chat", description="From junior to senior", **fields)


def wait_for(predicate, timeout=15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def ics_of(message, filename="invite.ics") -> Calendar:
    (attachment,) = [a for a in message.attachments if a.filename == filename]
    return Calendar.from_ical(attachment.content)


def test_booked_sends_one_email_to_mentee_and_one_to_mentor(mailoutbox):
    session = booked_session()

    assert notification_send(session_id=session.id, kind="booked") == 2

    assert sorted(m.to[0] for m in mailoutbox) == sorted([session.mentee.email, session.mentor.user.email])
    for message in mailoutbox:
        assert message.subject == "Session booked: Career chat"
        assert "Career chat" in message.body and "60 minutes" in message.body and "120.00 USD" in message.body
        assert session.scheduled_at.astimezone(UTC).isoformat() in message.body
        ((html, mimetype),) = message.alternatives
        assert mimetype == "text/html" and "<table" in html and "120.00 USD" in html
    rows = Notification.objects.filter(session=session, kind="booked")
    assert {(n.recipient, n.sent_at is not None) for n in rows} == {("mentee", True), ("mentor", True)}


def test_mentee_invite_is_a_valid_ics_for_the_session(mailoutbox):
    session = booked_session(starts_in=timedelta(days=5), duration_minutes=90)
    notification_send(session_id=session.id, kind="booked")

    (message,) = [m for m in mailoutbox if m.to == [session.mentee.email]]
    calendar = ics_of(message)
    (event,) = calendar.events
    assert str(calendar["method"]) == "REQUEST"
    assert str(event["uid"]) == f"session-{session.id}@myroadmap"
    assert event["dtstart"].dt == session.scheduled_at
    assert event["dtend"].dt == session.scheduled_at + timedelta(minutes=90)
    assert event["dtstart"].dt.utcoffset() == timedelta(0)
    assert str(event["summary"]) == "Career chat"
    assert str(event["description"]) == "From junior to senior"
    assert "dtstamp" in event and "organizer" in event
    assert {str(a) for a in event["attendee"]} == {f"mailto:{session.mentee.email}", f"mailto:{session.mentor.user.email}"}
    ics_part = next(p for p in message.message().walk() if p.get_filename() == "invite.ics")
    assert ics_part.get_content_type() == "text/calendar" and ics_part.get_param("method") == "REQUEST"


def test_second_call_sends_nothing(mailoutbox):
    session = booked_session()
    notification_send(session_id=session.id, kind="booked")

    assert notification_send(session_id=session.id, kind="booked") == 0

    assert len(mailoutbox) == 2
    assert Notification.objects.filter(session=session).count() == 2


def test_failed_send_stays_unsent_and_the_retry_sends_it(mailoutbox, settings):
    session = booked_session()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 1, 2  # nothing listens

    with pytest.raises(OSError):
        notification_send(session_id=session.id, kind="payment_failed")
    assert Notification.objects.get(session=session, kind="payment_failed").sent_at is None

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert notification_send(session_id=session.id, kind="payment_failed") == 1
    assert len(mailoutbox) == 1


def test_payment_failed_goes_only_to_the_mentee(mailoutbox):
    session = booked_session(payment_status="pending")

    assert notification_send(session_id=session.id, kind="payment_failed") == 1

    (message,) = mailoutbox
    assert message.to == [session.mentee.email]
    assert message.subject == "Payment failed: Career chat"
    assert not message.attachments
    assert list(Notification.objects.filter(session=session).values_list("recipient", flat=True)) == ["mentee"]


def told_of_the_booking(session, mailoutbox):
    assert notification_send(session_id=session.id, kind="booked") == 2
    mailoutbox.clear()


def test_refunded_shows_the_refunded_amount(mailoutbox):
    session = booked_session(refunded_amount=4550, payment_status="refunded")
    told_of_the_booking(session, mailoutbox)

    assert notification_send(session_id=session.id, kind="refunded") == 2

    for message in mailoutbox:
        assert "45.50 USD" in message.body and "45.50 USD" in message.alternatives[0].content
        assert "120.00 USD" in message.body


def test_cancelled_reaches_both_with_a_calendar_cancellation(mailoutbox):
    session = booked_session(status="cancelled")
    told_of_the_booking(session, mailoutbox)

    assert notification_send(session_id=session.id, kind="cancelled") == 2

    for message in mailoutbox:
        calendar = ics_of(message, "cancel.ics")
        assert str(calendar["method"]) == "CANCEL"
        assert str(calendar.events[0]["uid"]) == f"session-{session.id}@myroadmap"


@pytest.mark.parametrize(
    ("currency", "hourly_rate", "duration", "shown"),
    [("usd", 12000, 60, "120.00 USD"), ("usd", 5, 60, "0.05 USD"), ("jpy", 6000, 60, "6,000 JPY"), ("jpy", 9000, 30, "4,500 JPY")],
)
def test_amounts_are_formatted_from_minor_units(mailoutbox, currency, hourly_rate, duration, shown):
    mentor = make_mentor(hourly_rate=hourly_rate, currency=currency)
    session = make_session(mentor=mentor, mentee=make_user(), duration_minutes=duration)

    notification_send(session_id=session.id, kind="booked")

    assert all(shown in m.body for m in mailoutbox)
    if currency == "jpy":
        assert all(f"{shown[:-4]}.00" not in m.body for m in mailoutbox)


def test_html_escapes_user_text_and_plain_text_does_not(mailoutbox):
    session = booked_session()
    session.title = "Q&A <script>"
    session.save(update_fields=["title"])

    notification_send(session_id=session.id, kind="booked")

    message = mailoutbox[0]
    assert "Q&A <script>" in message.body
    assert "Q&amp;A &lt;script&gt;" in message.alternatives[0].content


def test_unknown_kind_raises():
    session = booked_session()
    with pytest.raises(ValueError, match="reminder"):
        notification_send(session_id=session.id, kind="reminder")
    assert not Notification.objects.exists()


def test_missing_session_sends_nothing(mailoutbox):
    assert notification_send(session_id=999_999_999, kind="booked") == 0
    assert mailoutbox == []


def test_admin_alert_reaches_the_admins(mailoutbox, settings):
    settings.ADMINS = [("Ops", "ops@myroadmap.test"), ("Finance", "finance@myroadmap.test")]

    admin_alert(subject="Dispute opened on session 7", message="dp_123 for 120.00 USD")

    (message,) = mailoutbox
    assert sorted(message.to) == ["finance@myroadmap.test", "ops@myroadmap.test"]
    assert "Dispute opened on session 7" in message.subject
    assert "dp_123 for 120.00 USD" in message.body


@pytest.mark.django_db(transaction=True)
def test_worker_sends_booked_emails_once(celery_session_worker, settings):
    # The worker is a thread of this process: with locmem its mail lands in our outbox.
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox = []
    session = booked_session()

    send_session_notification.delay(session.id, "booked")
    send_session_notification.delay(session.id, "booked")

    sent = Notification.objects.filter(session=session, sent_at__isnull=False)
    assert wait_for(lambda: sent.count() == 2)
    # The session worker (solo pool) runs one task at a time in order: once this one has
    # run, the second send_session_notification has finished too, having sent nothing.
    mentor_stats_recompute_task.delay(session.mentor_id)
    assert wait_for(lambda: Mentor.objects.get(pk=session.mentor_id).stats_updated_at is not None)
    assert sorted(m.to[0] for m in mail.outbox) == sorted([session.mentee.email, session.mentor.user.email])


def test_a_session_the_mentor_never_had_is_cancelled_and_refunded_to_the_mentee_only(mailoutbox):
    session = booked_session(status="cancelled", payment_status="refunded", refunded_amount=12000)  # a lost slot

    assert notification_send(session_id=session.id, kind="cancelled") == 1
    assert notification_send(session_id=session.id, kind="refunded") == 1
    assert [m.to for m in mailoutbox] == [[session.mentee.email]] * 2
