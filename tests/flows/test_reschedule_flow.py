"""Flow 10: a paid session moves through the API, with the sandbox and a real worker: no second
charge, both invites move, moves and a booking racing for one slot have exactly one winner,
and a late cancellation refunds the tier its booking was paid under."""
import threading
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from django.core import mail
from django.utils import timezone
from icalendar import Calendar

from backend.models import Checkout, Notification, Refund, Session, SessionReschedule
from backend.services.audit import payments_audit
from backend.services.reconciliation import followups_sweep
from tests.factories import login, make_mentor, make_user
from tests.flows.conftest import paid_session
from tests.polling import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def at(*, days: int, hour: int) -> datetime:
    return (timezone.now() + timedelta(days=days)).astimezone(UTC).replace(hour=hour, minute=0, second=0, microsecond=0)


def invites(session, kind: str) -> dict[str, object]:
    """Each recipient's calendar event from the `kind` emails about the session."""
    subject = {"booked": "Session booked", "rescheduled": "Session moved"}[kind]
    found = {}
    for message in mail.outbox:
        if message.subject == f"{subject}: {session.title}":
            content = next(a.content for a in message.attachments if a.filename == "invite.ics")
            (found[message.to[0]],) = Calendar.from_ical(content).events
    return found


def test_a_moved_session_keeps_its_one_payment_and_both_calendars_move_the_event(client, payments):
    mentor, mentee = make_mentor(name="Ada", hourly_rate=12000), make_user(email="mia@example.test")
    session = paid_session(client, payments, mentee, mentor, scheduled_at=at(days=3, hour=15).isoformat())
    wait_for(lambda: len(invites(session, "booked")) == 2, message="booking invites")

    new_start = at(days=4, hour=9)
    response = client.post(f"/api/sessions/{session.pk}/reschedule", {"scheduled_at": new_start.isoformat()},
                           content_type="application/json", **login(client, mentee))
    assert response.status_code == 200, response.content

    wait_for(lambda: len(invites(session, "rescheduled")) == 2, message="updated invites")
    booked, moved = invites(session, "booked"), invites(session, "rescheduled")
    assert set(moved) == {mentee.email, mentor.user.email}
    for address, event in moved.items():
        assert str(event["uid"]) == str(booked[address]["uid"])
        assert event["sequence"] > booked[address]["sequence"]
        assert event["dtstart"].dt == new_start

    # One Checkout, one PaymentIntent, one charge at Stripe; nothing refunded.
    stripe = payments.stripe_client()
    charges = stripe.v1.charges.list().data
    assert len(charges) == 1 and charges[0].amount == 12000 and charges[0].amount_refunded == 0
    assert len(stripe.v1.payment_intents.list().data) == 1
    assert len(stripe.v1.checkout.sessions.list().data) == 1
    moved_session = Session.objects.get(pk=session.pk)
    assert (moved_session.payment_status, moved_session.stripe_payment_id) == ("paid", charges[0].payment_intent)
    assert payments_audit(since=timezone.now() - timedelta(hours=1), until=timezone.now()).discrepancies == []


def test_two_moves_and_a_booking_racing_for_one_slot_have_exactly_one_winner(client, payments, live_server):
    mentor = make_mentor(hourly_rate=12000)
    first, second, booker = make_user(), make_user(), make_user()
    sessions = [paid_session(client, payments, first, mentor, scheduled_at=at(days=3, hour=9).isoformat()),
                paid_session(client, payments, second, mentor, scheduled_at=at(days=3, hour=11).isoformat())]
    tokens = [login(client, user)["HTTP_AUTHORIZATION"] for user in (first, second, booker)]

    for round_number, hour in enumerate((14, 16, 18)):
        target = at(days=5 + round_number, hour=hour)
        requests = [
            ("post", f"/api/sessions/{sessions[0].pk}/reschedule", tokens[0], {"scheduled_at": target.isoformat()}),
            ("post", f"/api/sessions/{sessions[1].pk}/reschedule", tokens[1], {"scheduled_at": target.isoformat()}),
            ("post", "/api/payments/create-checkout-session", tokens[2], {
                "mentor_id": mentor.pk, "title": "Race", "description": "", "scheduled_at": target.isoformat(),
                "duration_minutes": 60}),
        ]
        barrier, statuses = threading.Barrier(len(requests)), [None] * len(requests)

        def send(index, method, path, token, body):
            with httpx.Client(base_url=live_server.url, timeout=30) as http:
                barrier.wait()
                statuses[index] = http.request(method, path, json=body, headers={"Authorization": token}).status_code

        threads = [threading.Thread(target=send, args=(i, *r)) for i, r in enumerate(requests)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert sorted(statuses) == [200, 409, 409], statuses
        at_target = (Session.objects.filter(mentor=mentor, status="scheduled", scheduled_at=target).count()
                     + Checkout.objects.filter(mentor=mentor, status="open", scheduled_at=target).count())
        assert at_target == 1
        Checkout.objects.filter(status="open").update(status="expired")  # the next round's booking may hold again


def test_a_late_mentee_cancellation_refunds_the_tier_it_was_paid_under_and_no_more(client, payments, settings):
    settings.CANCELLATION_POLICY = [{"min_hours_before": 24, "refund_percent": 100},
                                    {"min_hours_before": 2, "refund_percent": 50}]
    mentor, mentee = make_mentor(hourly_rate=12000), make_user()
    start = (timezone.now() + timedelta(hours=5)).replace(second=0, microsecond=0)
    session = paid_session(client, payments, mentee, mentor, scheduled_at=start.isoformat())
    assert session.cancellation_policy == settings.CANCELLATION_POLICY  # copied when paid
    settings.CANCELLATION_POLICY = [{"min_hours_before": 1, "refund_percent": 100}]  # changes nothing for it

    response = client.post(f"/api/sessions/{session.pk}/cancel", {"reason": "plans changed"},
                           content_type="application/json", **login(client, mentee))
    assert response.status_code == 200, response.content
    wait_for(lambda: Refund.objects.filter(session=session, status="succeeded").exists(), message="refund succeeded")
    wait_for(lambda: Notification.objects.filter(session=session, kind="refunded", recipient="mentee",
                                                 sent_at__isnull=False).exists(), message="refund email")
    payments.wait_until_delivered()
    settled = Session.objects.get(pk=session.pk)
    assert (settled.status, settled.payment_status, settled.refunded_amount) == ("cancelled", "paid", 6000)
    assert [r.amount for r in Refund.objects.filter(session=session)] == [6000]  # no top-up to the full amount
    charge = payments.stripe_client().v1.charges.list().data[0]
    assert charge.amount_refunded == 6000
    assert followups_sweep()["refunds"] == 0
    assert payments_audit(since=timezone.now() - timedelta(hours=1), until=timezone.now()).discrepancies == []


def test_a_move_whose_email_the_broker_lost_is_sent_by_the_sweep(client, payments):
    mentor, mentee = make_mentor(), make_user()
    session = paid_session(client, payments, mentee, mentor, scheduled_at=at(days=3, hour=15).isoformat())
    # What a move commits while the broker is down: the rows, and no task queued.
    new_start = at(days=4, hour=15)
    SessionReschedule.objects.create(session=session, previous_scheduled_at=session.scheduled_at,
                                     previous_ends_at=session.ends_at, scheduled_at=new_start,
                                     ends_at=new_start + timedelta(hours=1), requested_by=mentee, by_mentor=False)
    Session.objects.filter(pk=session.pk).update(scheduled_at=new_start, ends_at=new_start + timedelta(hours=1),
                                                 reschedule_count=1, updated_at=timezone.now() - timedelta(minutes=2))

    assert followups_sweep()["notifications"] >= 1
    wait_for(lambda: Notification.objects.filter(session=session, kind="rescheduled", revision=1,
                                                 sent_at__isnull=False).count() == 2, message="move emails")
