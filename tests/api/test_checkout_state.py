"""GET /api/payments/checkout-sessions/{id}, resuming a hold, MAX_OPEN_HOLDS, and what a
failed Stripe call shows (and mails): against the sandbox over real HTTP, no worker."""
import pytest
from django.core import mail

from backend.models import Checkout, Session
from tests.factories import book, future_slot, login, make_mentor, make_user

pytestmark = pytest.mark.django_db(transaction=True)


def state_of(client, headers, cs_id):
    return client.get(f"/api/payments/checkout-sessions/{cs_id}", **headers)


def test_state_is_open_until_paid_then_booked_even_with_the_webhook_held_back(client, stripe_sandbox):
    mentee = make_user()
    headers = login(client, mentee)
    cs_id = book(client, headers, make_mentor(hourly_rate=6000)).json()["session_id"]

    opened = state_of(client, headers, cs_id)
    assert opened.status_code == 200, opened.content
    assert opened.json()["state"] == "open" and opened.json()["checkout_url"].startswith(stripe_sandbox.api_base)

    stripe_sandbox.pause()  # the webhook is slow: the return page must not wait for it
    try:
        assert stripe_sandbox.pay(cs_id)["outcome"] == "succeeded"
        booked = state_of(client, headers, cs_id).json()
    finally:
        stripe_sandbox.resume()
    assert booked["state"] == "booked"
    assert booked["session"]["payment_status"] == "paid" and booked["checkout_url"] is None
    session = Session.objects.get(stripe_checkout_session_id=cs_id)
    assert (session.mentee_id, session.amount, session.status) == (mentee.pk, 6000, "scheduled")


def test_delayed_debit_is_pending_payment(client, stripe_sandbox):
    headers = login(client, make_user())
    cs_id = book(client, headers, make_mentor()).json()["session_id"]
    stripe_sandbox.pause()
    try:
        stripe_sandbox.pay(cs_id, card=None, method="bank_debit", settle_after=3600)
        body = state_of(client, headers, cs_id).json()
    finally:
        stripe_sandbox.resume()
    assert body["state"] == "pending_payment"
    assert body["session"]["payment_status"] == "pending"


def test_another_mentees_checkout_is_not_found(client, stripe_sandbox):
    cs_id = book(client, login(client, make_user()), make_mentor()).json()["session_id"]
    response = state_of(client, login(client, make_user()), cs_id)
    assert response.status_code == 404
    assert state_of(client, {}, cs_id).status_code == 401


def test_resubmitting_the_same_booking_resumes_the_hold_but_not_for_someone_else(client, stripe_sandbox):
    mentor, start = make_mentor(), future_slot(days=5)
    headers = login(client, make_user())
    first = book(client, headers, mentor, scheduled_at=start)
    again = book(client, headers, mentor, scheduled_at=start)
    assert again.status_code == 200, again.content
    assert again.json() == first.json()
    assert Checkout.objects.count() == 1

    other = book(client, login(client, make_user()), mentor, scheduled_at=start)
    assert other.status_code == 409 and other.json()["code"] == "slot_unavailable"


def test_a_mentee_holds_at_most_max_open_holds(client, stripe_sandbox, settings):
    settings.MAX_OPEN_HOLDS = 2
    headers = login(client, make_user())
    for days in (3, 4):
        assert book(client, headers, make_mentor(), scheduled_at=future_slot(days=days)).status_code == 200
    third = book(client, headers, make_mentor(), scheduled_at=future_slot(days=5))
    assert third.status_code == 409
    assert third.json()["code"] == "too_many_open_holds"
    Checkout.objects.filter(scheduled_at__lt=future_slot(days=4)).update(status="expired")  # one hold ends
    assert book(client, headers, make_mentor(), scheduled_at=future_slot(days=5)).status_code == 200


def test_stripe_outage_answer_carries_no_sdk_details_and_mails_no_admin(client, stripe_sandbox, settings):
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # nothing listens
    response = book(client, login(client, make_user()), make_mentor())
    assert response.status_code == 503
    body = response.content.decode()
    for leak in ("127.0.0.1", "Connection", "APIConnectionError", "Errno", "urllib", "http"):
        assert leak not in body, leak
    assert mail.outbox == []
