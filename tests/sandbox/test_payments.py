"""Paying a Checkout Session with each of Stripe's test cards and with a bank debit:
the objects and the events come out as on Stripe."""

import pytest
import stripe

from stripe_sandbox.process import SandboxControlError

from .factories import create_session, missing_fields, paid_session


def event_types(receiver) -> list[str]:
    return [event["type"] for event in receiver.events(only_accepted=True)]


def test_card_4242_pays_the_session(client, sandbox, receiver):
    session, intent, charge = paid_session(sandbox, client, card="4242424242424242")

    assert (session.status, session.payment_status) == ("complete", "paid")
    assert session.customer_details.email == "mentee@example.com"
    assert (intent.status, intent.amount_received, intent.latest_charge) == ("succeeded", 4500, charge.id)
    assert (charge.status, charge.paid, charge.captured, charge.amount) == ("succeeded", True, True, 4500)
    assert charge.payment_intent == intent.id
    assert charge.payment_method_details.card.last4 == "4242"
    assert charge.metadata.to_dict() == {"checkout_id": "17"}
    payment_method = client.v1.payment_methods.retrieve(intent.payment_method)
    assert (payment_method.type, payment_method.card.last4) == ("card", "4242")
    for obj, name in ((session, "checkout.session"), (intent, "payment_intent"), (charge, "charge"),
                      (payment_method, "payment_method")):
        assert missing_fields(obj, name) == set(), name
    receiver.wait_for_event("checkout.session.completed", id=session.id)
    assert event_types(receiver) == ["payment_intent.created", "charge.succeeded",
                                     "payment_intent.succeeded", "checkout.session.completed"]


def test_completed_event_carries_what_the_backend_reconciles_on(client, sandbox, receiver):
    session = create_session(client)
    sandbox.pay(session.id)

    event = receiver.wait_for_event("checkout.session.completed")

    completed = event["data"]["object"]
    assert (completed["id"], completed["payment_status"], completed["amount_total"]) == (session.id, "paid", 4500)
    assert completed["client_reference_id"] == "checkout-17"
    assert completed["metadata"] == {"checkout_id": "17", "mentor_id": "3"}
    assert completed["payment_intent"].startswith("pi_")
    assert (event["api_version"], event["livemode"], event["object"]) == (stripe.api_version, False, "event")
    assert missing_fields(event, "event") == set()


@pytest.mark.parametrize("card, code, decline_code, message", [
    ("4000000000000002", "card_declined", "generic_decline", "Your card was declined."),
    ("4000000000009995", "card_declined", "insufficient_funds", "Your card has insufficient funds."),
    ("4000000000000069", "expired_card", "expired_card", "Your card has expired."),
    ("4000000000000127", "incorrect_cvc", "incorrect_cvc", "Your card's security code is incorrect."),
])
def test_declined_card_leaves_the_session_open(client, sandbox, receiver, card, code, decline_code, message):
    session = create_session(client)

    result = sandbox.pay(session.id, card=card)

    assert result["outcome"] == "declined"
    assert result["error"] == {"code": code, "decline_code": decline_code, "message": message}
    session = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent"]})
    assert (session.status, session.payment_status) == ("open", "unpaid")
    intent = session.payment_intent
    assert intent.status == "requires_payment_method"
    assert (intent.last_payment_error.code, intent.last_payment_error.decline_code) == (code, decline_code)
    assert intent.last_payment_error.message == message
    charge = client.v1.charges.retrieve(intent.latest_charge)
    assert (charge.status, charge.paid, charge.failure_code) == ("failed", False, code)
    receiver.wait_for_event("payment_intent.payment_failed", id=intent.id)
    assert "checkout.session.completed" not in event_types(receiver)


def test_declined_then_4242_pays_the_same_session(client, sandbox):
    session = create_session(client)
    sandbox.pay(session.id, card="4000000000000002")

    sandbox.pay(session.id, card="4242424242424242")

    session = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent"]})
    assert (session.status, session.payment_intent.status) == ("complete", "succeeded")
    assert len(client.v1.charges.list(params={"payment_intent": session.payment_intent.id}).data) == 2


def test_card_3155_waits_for_authentication_then_pays_when_completed(client, sandbox, receiver):
    session = create_session(client)

    waiting = sandbox.pay(session.id, card="4000002500003155")

    assert waiting["outcome"] == "requires_action"
    assert waiting["payment_intent"]["status"] == "requires_action"
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
    sandbox.authenticate(session.id, "complete")
    session = client.v1.checkout.sessions.retrieve(session.id)
    assert (session.status, session.payment_status) == ("complete", "paid")
    receiver.wait_for_event("checkout.session.completed", id=session.id)


def test_card_3155_failed_authentication_is_refused_and_session_stays_open(client, sandbox, receiver):
    session = create_session(client)

    result = sandbox.pay(session.id, card="4000002500003155", three_d_secure="fail")

    assert result["outcome"] == "declined"
    assert result["error"]["code"] == "payment_intent_authentication_failure"
    intent = client.v1.payment_intents.retrieve(result["payment_intent"]["id"])
    assert intent.status == "requires_payment_method"
    assert intent.last_payment_error.code == "payment_intent_authentication_failure"
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
    receiver.wait_for_event("payment_intent.payment_failed", id=intent.id)


def test_non_test_card_number_is_refused_as_in_test_mode(client, sandbox):
    session = create_session(client)

    assert sandbox.pay(session.id, card="4111111111111112")["error"]["code"] == "incorrect_number"
    assert sandbox.pay(session.id, card="5105105105105100")["error"]["decline_code"] == "test_mode_live_card"


@pytest.mark.parametrize("outcome, final_event, intent_status, payment_status", [
    ("succeeded", "checkout.session.async_payment_succeeded", "succeeded", "paid"),
    ("failed", "checkout.session.async_payment_failed", "requires_payment_method", "unpaid"),
])
def test_bank_debit_completes_unpaid_then_settles_when_the_clock_passes(
        client, sandbox, receiver, outcome, final_event, intent_status, payment_status):
    session = create_session(client)

    sandbox.pay(session.id, method="bank_debit", outcome=outcome, settle_after=3600)

    pending = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent"]})
    assert (pending.status, pending.payment_status) == ("complete", "unpaid")
    assert pending.payment_intent.status == "processing"
    completed = receiver.wait_for_event("checkout.session.completed", id=session.id)
    assert completed["data"]["object"]["payment_status"] == "unpaid"

    sandbox.advance_clock(3600)

    settled = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent"]})
    assert (settled.payment_status, settled.payment_intent.status) == (payment_status, intent_status)
    event = receiver.wait_for_event(final_event, id=session.id)
    assert event["data"]["object"]["payment_status"] == payment_status


def test_completed_and_expired_sessions_cannot_be_paid(client, sandbox):
    paid = create_session(client)
    sandbox.pay(paid.id)
    expired = create_session(client)
    client.v1.checkout.sessions.expire(expired.id)

    for session in (paid, expired):
        with pytest.raises(SandboxControlError) as refused:
            sandbox.pay(session.id)
        assert refused.value.status_code == 400


def test_expiring_a_session_with_a_declined_attempt_cancels_its_payment_intent(client, sandbox, receiver):
    session = create_session(client)
    intent_id = sandbox.pay(session.id, card="4000000000000002")["payment_intent"]["id"]

    sandbox.expire_session(session.id)

    assert client.v1.payment_intents.retrieve(intent_id).status == "canceled"
    receiver.wait_for_event("checkout.session.expired", id=session.id)


def test_card_0259_is_disputed_after_paying(client, sandbox, receiver):
    session, intent, charge = paid_session(sandbox, client, card="4000000000000259")

    event = receiver.wait_for_event("charge.dispute.created")

    assert event["data"]["object"]["charge"] == charge.id
    assert missing_fields(event["data"]["object"], "dispute") == set()
    assert client.v1.charges.retrieve(charge.id).disputed is True


def test_payment_method_has_stripes_fields(client, sandbox, receiver):
    session, intent, charge = paid_session(sandbox, client)

    event = receiver.wait_for_event("payment_intent.succeeded")

    assert event["data"]["object"]["payment_method"] == charge.payment_method
    failed = create_session(client)
    result = sandbox.pay(failed.id, card="4000000000000002")
    method = result["payment_intent"]["last_payment_error"]["payment_method"]
    assert missing_fields(method, "payment_method") == set()
