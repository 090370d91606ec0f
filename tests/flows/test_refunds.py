"""Flow 6: cancellations, refunds we ask for, refunds made in the Dashboard, disputes."""
import json
from datetime import timedelta

import httpx
import pytest
from django.core import mail
from django.utils import timezone

from backend.models import Mentor, Notification, Refund, Session, WebhookEvent
from tests.conftest import WEBHOOK_SECRET
from tests.factories import future_slot, login, make_mentor, make_user
from tests.flows.conftest import charge_of, checkout, paid_session, wait_for
from tests.webhooks import signature_header

pytestmark = pytest.mark.django_db(transaction=True)


def cancel(client, user, session, reason="Something came up"):
    return client.post(f"/api/sessions/{session.pk}/cancel", {"reason": reason}, content_type="application/json",
                       **login(client, user))


def refunded(session):
    return wait_for(lambda: Session.objects.filter(pk=session.pk, payment_status="refunded").first(),
                    message=f"session {session.pk} refunded")


def test_mentee_cancelling_a_day_ahead_is_refunded_and_stats_go_back_down(client, payments):
    mentor, mentee = make_mentor(hourly_rate=9000), make_user()
    session = paid_session(client, payments, mentee, mentor, scheduled_at=future_slot(days=3))
    wait_for(lambda: Mentor.objects.get(pk=mentor.pk).total_sessions == 1)

    response = cancel(client, mentee, session)
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "cancelled"

    session = refunded(session)
    assert session.status == "cancelled" and session.refunded_amount == session.amount
    refund = Refund.objects.get(session=session)
    assert refund.stripe_refund_id.startswith("re_") and refund.status == "succeeded"
    assert refund.requested_by_id == mentee.pk
    stripe_refund = payments.stripe_client().v1.refunds.retrieve(refund.stripe_refund_id)
    assert stripe_refund.amount == session.amount and stripe_refund.metadata["refund_id"] == str(refund.pk)
    wait_for(lambda: Mentor.objects.get(pk=mentor.pk).total_sessions == 0, message="stats back down")
    assert Mentor.objects.get(pk=mentor.pk).total_earnings == 0
    wait_for(lambda: Notification.objects.filter(session=session, kind="refunded", sent_at__isnull=False).count() == 2)

    # Cancelling twice is harmless: still one refund.
    assert cancel(client, mentee, session).status_code == 200
    payments.wait_until_delivered()
    assert Refund.objects.filter(session=session).count() == 1
    assert len(payments.stripe_client().v1.refunds.list({"payment_intent": session.stripe_payment_id}).data) == 1


def test_mentee_cannot_cancel_within_24_hours_but_the_mentor_can(client, payments):
    mentor, mentee = make_mentor(), make_user()
    soon = (timezone.now() + timedelta(hours=5)).replace(minute=0, second=0, microsecond=0).isoformat()
    session = paid_session(client, payments, mentee, mentor, scheduled_at=soon)

    response = cancel(client, mentee, session)
    assert response.status_code == 409
    assert "24 hours" in response.json()["detail"]
    assert Session.objects.get(pk=session.pk).status == "scheduled"

    assert cancel(client, mentor.user, session).status_code == 200
    assert refunded(session).status == "cancelled"


def test_nobody_else_can_cancel_a_session(client, payments):
    session = paid_session(client, payments, make_user(), make_mentor())
    assert cancel(client, make_user(), session).status_code == 404
    assert Session.objects.get(pk=session.pk).status == "scheduled"


def test_a_dashboard_refund_cancels_and_refunds_through_the_webhook(client, payments):
    mentor = make_mentor()
    session = paid_session(client, payments, make_user(), mentor)
    payments.refund_charge(charge_of(payments, session.stripe_payment_id))
    session = refunded(session)
    assert session.status == "cancelled"
    refund = Refund.objects.get(session=session)
    assert refund.requested_by is None and refund.status == "succeeded"
    wait_for(lambda: Mentor.objects.get(pk=mentor.pk).total_sessions == 0 and
             Mentor.objects.get(pk=mentor.pk).stats_updated_at is not None)


def test_a_partial_dashboard_refund_is_recorded_with_its_amount(client, payments):
    mentor = make_mentor(hourly_rate=10000)
    session = paid_session(client, payments, make_user(), mentor)
    payments.refund_charge(charge_of(payments, session.stripe_payment_id), amount=2500)
    wait_for(lambda: Session.objects.get(pk=session.pk).refunded_amount == 2500, message="partial refund")
    session.refresh_from_db()
    assert session.payment_status == "paid" and session.status == "scheduled"
    wait_for(lambda: Mentor.objects.get(pk=mentor.pk).total_earnings == 7500, message="earnings net of refund")


def test_a_refund_delivered_before_its_completion_ends_refunded(client, live_server, payments):
    mentee = make_user()
    payments.pause()  # our endpoint is "down": nothing arrives in Stripe's order
    cs_id = checkout(client, mentee, make_mentor())
    payments.pay(cs_id)
    stripe = payments.stripe_client()
    payment_intent = stripe.v1.checkout.sessions.retrieve(cs_id).payment_intent
    payments.refund_charge(charge_of(payments, payment_intent))

    events = stripe.v1.events.list({"limit": 100}).data
    by_type = {e.type: e for e in events}
    # Deliver the refund first, then the completion, as a reordering network might.
    for event_type in ["charge.refunded", "refund.created", "checkout.session.completed"]:
        payload = json.dumps(by_type[event_type].to_dict()).encode()
        response = httpx.post(f"{live_server.url}/api/payments/webhook", content=payload,
                              headers={"Stripe-Signature": signature_header(payload, WEBHOOK_SECRET),
                                       "Content-Type": "application/json"})
        assert response.status_code == 200
    session = wait_for(lambda: Session.objects.filter(stripe_checkout_session_id=cs_id, payment_status="refunded").first(),
                       message="refunded once both are processed")
    assert session.status == "cancelled"
    wait_for(lambda: WebhookEvent.objects.filter(status="processed").count() == 3, message="all three processed")
    refund_event = WebhookEvent.objects.get(type="charge.refunded")
    assert refund_event.attempts >= 2  # it waited for the completion instead of guessing
    payments.resume()  # the original deliveries change nothing now
    payments.wait_until_delivered()
    wait_for(lambda: not WebhookEvent.objects.filter(status__in=["received", "processing"]).exists())
    assert Session.objects.count() == 1 and Refund.objects.count() == 1


def test_a_dispute_flags_the_session_and_tells_the_admins(client, payments):
    session = paid_session(client, payments, make_user(), make_mentor())
    payments.dispute_charge(charge_of(payments, session.stripe_payment_id))
    wait_for(lambda: Session.objects.get(pk=session.pk).is_disputed, message="dispute flag")
    assert any(f"session {session.pk}" in m.subject for m in mail.outbox if m.to == ["admin@myroadmap.local"])
