"""What the emails say: each recipient's local time, who cancelled and why, a refund that
failed and what happens next, and the one sent when a retry went through. Money as people
read it, and admin alerts from the branded sender."""
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings

from backend.models import Notification, Refund, Session, User
from backend.services.cancellations import session_cancel
from backend.services.local_time import local_time_text
from backend.services.money import money_format
from backend.services.notifications import admin_alert, notification_send
from tests.factories import make_mentor, make_session, make_user

pytestmark = pytest.mark.django_db


def a_session(**fields) -> Session:
    mentor = make_mentor(name="Grace Hopper", hourly_rate=13000, currency="usd")
    mentee = make_user(name="Ada Lovelace")
    User.objects.filter(pk=mentee.pk).update(time_zone="America/New_York")
    User.objects.filter(pk=mentor.user_id).update(time_zone="Europe/Berlin")
    return make_session(mentor=mentor, mentee=mentee, title="Career chat", **fields)


def email_to(outbox, address):
    (message,) = [m for m in outbox if m.to == [address]]
    return message


def in_zone(moment, end, zone: str) -> str:
    start, finish = moment.astimezone(ZoneInfo(zone)), end.astimezone(ZoneInfo(zone))
    return f"{start:%a} {start.day} {start:%b %Y}, {start:%H:%M}\u2013{finish:%H:%M} ({zone})"


def test_each_recipient_reads_the_time_in_their_own_zone(mailoutbox):
    session = a_session()
    notification_send(session_id=session.pk, kind="booked")

    mentee = email_to(mailoutbox, session.mentee.email)
    mentor = email_to(mailoutbox, session.mentor.user.email)
    assert in_zone(session.scheduled_at, session.ends_at, "America/New_York") in mentee.body
    assert in_zone(session.scheduled_at, session.ends_at, "Europe/Berlin") in mentor.body
    assert in_zone(session.scheduled_at, session.ends_at, "Europe/Berlin") not in mentee.body
    assert in_zone(session.scheduled_at, session.ends_at, "UTC") in mentee.body  # beside it, for reference
    assert in_zone(session.scheduled_at, session.ends_at, "America/New_York") in mentee.alternatives[0][0]
    assert "130.00 USD" in mentee.body


def test_the_other_party_is_told_who_cancelled_and_why_in_full(mailoutbox):
    session = a_session()
    Notification.objects.create(session=session, kind="booked", recipient="mentor",
                                email=session.mentor.user.email)  # the mentor was told of the booking
    reason = "I have to be at a conference that week, sorry. " * 8  # 392 characters: more than a refund's reason

    session_cancel(user=session.mentor.user, session_id=session.pk, reason=reason)
    notification_send(session_id=session.pk, kind="cancelled")

    session.refresh_from_db()
    assert (session.cancelled_by, session.cancel_reason) == ("mentor", reason.strip())
    mentee = email_to(mailoutbox, session.mentee.email)
    assert "Grace Hopper (your mentor) cancelled it." in mentee.body
    assert f'Reason given: "{reason.strip()}"' in mentee.body
    assert reason.strip() in mentee.alternatives[0][0]
    assert "You cancelled it." in email_to(mailoutbox, session.mentor.user.email).body


def test_a_failed_refund_email_says_why_and_what_happens_next(mailoutbox):
    session = a_session(status="cancelled", cancelled_by="mentee")
    Refund.objects.create(session=session, amount=13000, currency="usd", status="failed",
                          stripe_refund_id="re_failed", failure_reason="expired_or_canceled_card")

    assert notification_send(session_id=session.pk, kind="refund_failed") == 1  # the mentee only

    (message,) = mailoutbox
    assert message.to == [session.mentee.email]
    assert message.subject == "Your refund did not go through yet: Career chat"
    assert ("The refund of 130.00 USD for your session with Grace Hopper did not go through: the card it was going "
            "back to is closed or has expired.") in message.body
    assert "What happens next: you don't need to do anything." in message.body
    assert "We will email you as soon as the money is on its way." in message.body


def test_a_retried_refund_that_went_through_is_announced_again(mailoutbox):
    session = a_session(status="cancelled", cancelled_by="mentee", payment_status="refunded", refunded_amount=13000)
    failed = Refund.objects.create(session=session, amount=13000, currency="usd", status="failed",
                                   stripe_refund_id="re_failed", failure_reason="expired_or_canceled_card")
    Refund.objects.create(session=session, amount=13000, currency="usd", status="succeeded",
                          stripe_refund_id="re_retry", retry_of=failed)

    assert notification_send(session_id=session.pk, kind="refund_retried") == 1

    (message,) = mailoutbox
    assert message.subject == "Refund sent again: Career chat"
    assert "we sent your refund of 130.00 USD for your session with Grace Hopper again" in message.body
    assert "Stripe has confirmed it" in message.body


def test_admin_alerts_come_from_the_branded_sender_without_the_django_prefix(mailoutbox):
    admin_alert(subject="Refund 7 failed", message="Refund 7 of 130.00 USD could not be sent.")
    (message,) = mailoutbox
    assert message.subject == "[MyRoadmap] Refund 7 failed"
    assert message.from_email == settings.DEFAULT_FROM_EMAIL == "MyRoadmap <no-reply@myroadmap.local>"
    assert message.body.splitlines()[0] == "Refund 7 of 130.00 USD could not be sent."


@pytest.mark.parametrize("amount, currency, text", [
    (13000, "usd", "130.00 USD"), (5000, "eur", "50.00 EUR"), (6000, "jpy", "6,000 JPY"),
    (12345, "kwd", "12.345 KWD"), (123456789, "usd", "1,234,567.89 USD"),
])
def test_money_is_formatted_by_the_currencys_minor_units(amount, currency, text):
    assert money_format(amount, currency) == text


def test_local_time_text_names_the_zone_and_the_next_day_when_it_changes():
    start = datetime(2026, 12, 2, 22, 30, tzinfo=UTC)
    assert local_time_text(start, "UTC", start + timedelta(hours=1)) == "Wed 2 Dec 2026, 22:30\u201323:30 (UTC)"
    assert local_time_text(start, "Europe/Berlin", start + timedelta(hours=1)) == \
        "Wed 2 Dec 2026, 23:30 \u2013 Thu 3 Dec 2026, 00:30 (Europe/Berlin)"
    assert local_time_text(start, "Not/A_Zone") == "Wed 2 Dec 2026, 22:30 (UTC)"
