"""Emails and calendar invites in each person's own time zone, and the emails a move sends:
the updated invite keeps its UID and raises its SEQUENCE, so calendars move the event."""
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from icalendar import Calendar

from backend.models import Notification, Session, User
from backend.services.notifications import notification_send
from backend.services.reschedules import session_reschedule
from tests.factories import make_mentor, make_session, make_user

pytestmark = pytest.mark.django_db

KOLKATA, NEW_YORK = ZoneInfo("Asia/Kolkata"), ZoneInfo("America/New_York")


def mail_to(mailoutbox, user):
    return [m for m in mailoutbox if m.to == [user.email]]


def invite(message, filename="invite.ics"):
    (attachment,) = [a for a in message.attachments if a.filename == filename]
    (event,) = Calendar.from_ical(attachment.content).events
    return event


def at(*, days: int, hour: int) -> datetime:
    return (timezone.now() + timedelta(days=days)).astimezone(UTC).replace(hour=hour, minute=0, second=0, microsecond=0)


@pytest.fixture
def session():
    mentor = make_mentor(name="Grace Hopper")
    mentee = make_user(name="Kavya")
    User.objects.filter(pk=mentee.pk).update(time_zone="Asia/Kolkata")
    User.objects.filter(pk=mentor.user_id).update(time_zone="America/New_York")
    start = at(days=6, hour=14)
    return make_session(mentor=mentor, mentee=mentee, title="Career chat", scheduled_at=start,
                        ends_at=start + timedelta(hours=1))


def test_each_person_reads_the_time_in_their_own_zone_in_the_email_and_the_invite(mailoutbox, session):
    notification_send(session_id=session.pk, kind="booked")
    (to_mentee,), (to_mentor,) = mail_to(mailoutbox, session.mentee), mail_to(mailoutbox, session.mentor.user)

    in_kolkata, in_new_york = session.scheduled_at.astimezone(KOLKATA), session.scheduled_at.astimezone(NEW_YORK)
    assert f"{in_kolkata:%H:%M}\u2013" in to_mentee.body and "(Asia/Kolkata)" in to_mentee.body
    assert f"{in_new_york:%H:%M}\u2013" in to_mentor.body and "(America/New_York)" in to_mentor.body
    assert "Asia/Kolkata" not in to_mentor.body
    for message, zone_name in ((to_mentee, "Asia/Kolkata"), (to_mentor, "America/New_York")):
        event = invite(message)
        assert event["dtstart"].params["TZID"] == zone_name
        assert event["dtstart"].dt == session.scheduled_at  # the same instant, written in the reader's zone
        assert f"TZID:{zone_name}" in next(a.content for a in message.attachments if a.filename == "invite.ics")


def test_the_booking_confirmation_states_the_cancellation_policy(mailoutbox, session, settings):
    Session.objects.filter(pk=session.pk).update(cancellation_policy=[
        {"min_hours_before": 24, "refund_percent": 100}, {"min_hours_before": 2, "refund_percent": 50}])
    settings.CANCELLATION_POLICY = [{"min_hours_before": 48, "refund_percent": 100}]  # not this booking's
    notification_send(session_id=session.pk, kind="booked")
    (to_mentee,) = mail_to(mailoutbox, session.mentee)
    assert "Cancelled by you at least 24 hours before the start: a full refund." in to_mentee.body
    assert "at least 2 hours before the start: a 50 % refund" in to_mentee.body
    assert "less than 2 hours before the start: no refund" in to_mentee.body
    assert "48 hours" not in to_mentee.body
    assert "a 50 % refund" in to_mentee.alternatives[0].content


def test_a_move_sends_both_an_updated_invite_with_the_same_uid_and_a_higher_sequence(mailoutbox, session):
    notification_send(session_id=session.pk, kind="booked")
    booked_invites = {m.to[0]: invite(m) for m in mailoutbox}
    mailoutbox.clear()

    old_start = session.scheduled_at
    session_reschedule(user=session.mentee, session_id=session.pk, scheduled_at=at(days=7, hour=15))
    assert notification_send(session_id=session.pk, kind="rescheduled") == 2
    assert notification_send(session_id=session.pk, kind="rescheduled") == 0  # never twice
    for message in mailoutbox:
        assert message.subject == "Session moved: Career chat"
        assert "The payment carries over" in message.body and "Was:" in message.body
        event = invite(message)
        before = booked_invites[message.to[0]]
        assert str(event["uid"]) == str(before["uid"]) == f"session-{session.pk}@myroadmap"
        assert (before["sequence"], event["sequence"]) == (0, 1)
        assert event["dtstart"].dt == at(days=7, hour=15)
    (to_mentee,) = mail_to(mailoutbox, session.mentee)
    assert f"{old_start.astimezone(KOLKATA):%H:%M}" in to_mentee.body.split("Was:")[1].splitlines()[0]
    assert "cancel with a full refund" not in to_mentee.body  # the mentee moved it themselves

    # The mentor moves it again: a new email (revision 2), SEQUENCE 2, and the mentee may cancel in full.
    mailoutbox.clear()
    session_reschedule(user=session.mentor.user, session_id=session.pk, scheduled_at=at(days=8, hour=15))
    assert notification_send(session_id=session.pk, kind="rescheduled") == 2
    (to_mentee,) = mail_to(mailoutbox, session.mentee)
    assert invite(to_mentee)["sequence"] == 2
    assert "cancel with a full refund" in to_mentee.body and f"/sessions/{session.pk}/cancel" in to_mentee.body
    assert Notification.objects.filter(session=session, kind="rescheduled").count() == 4

    # Cancelled afterwards: the cancellation's SEQUENCE is above every invite's.
    mailoutbox.clear()
    Session.objects.filter(pk=session.pk).update(status="cancelled")
    notification_send(session_id=session.pk, kind="cancelled")
    assert {invite(m, "cancel.ics")["sequence"] for m in mailoutbox} == {3}
    assert notification_send(session_id=session.pk, kind="rescheduled") == 0  # not about a cancelled session
