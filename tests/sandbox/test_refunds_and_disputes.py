"""Refunds asked through the API and made in the Dashboard, and disputes."""

import pytest
import stripe

from stripe_sandbox.process import SandboxControlError

from .factories import create_session, missing_fields, paid_session


def test_api_refund_of_a_payment_intent_refunds_its_charge(client, sandbox, receiver):
    session, intent, charge = paid_session(sandbox, client)

    refund = client.v1.refunds.create(params={"payment_intent": intent.id, "reason": "requested_by_customer",
                                              "metadata": {"refund_id": "9"}})

    assert (refund.amount, refund.status, refund.charge, refund.payment_intent) == (4500, "succeeded", charge.id, intent.id)
    assert refund.metadata.to_dict() == {"refund_id": "9"}
    assert missing_fields(refund, "refund") == set()
    assert client.v1.refunds.retrieve(refund.id).id == refund.id
    charge = client.v1.charges.retrieve(charge.id)
    assert (charge.amount_refunded, charge.refunded) == (4500, True)
    refunded = receiver.wait_for_event("charge.refunded", id=charge.id)
    assert refunded["data"]["previous_attributes"] == {"amount_refunded": 0, "refunded": False}
    created = receiver.wait_for_event("refund.created", id=refund.id)
    assert created["request"]["id"].startswith("req_")


def test_partial_refunds_add_up_and_over_refund_is_refused(client, sandbox):
    session, intent, charge = paid_session(sandbox, client)
    client.v1.refunds.create(params={"charge": charge.id, "amount": 3000})

    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.refunds.create(params={"charge": charge.id, "amount": 2000})

    assert (refused.value.http_status, refused.value.code, refused.value.param) == (400, "amount_too_large", "amount")
    assert "greater than unrefunded amount on charge ($15.00)" in refused.value.user_message
    client.v1.refunds.create(params={"charge": charge.id, "amount": 1500})
    assert client.v1.charges.retrieve(charge.id).refunded is True
    with pytest.raises(stripe.InvalidRequestError) as again:
        client.v1.refunds.create(params={"charge": charge.id})
    assert again.value.code == "charge_already_refunded"


def test_refund_list_filters_by_charge_and_pages(client, sandbox):
    _, _, first_charge = paid_session(sandbox, client)
    _, _, second_charge = paid_session(sandbox, client)
    refunds = [client.v1.refunds.create(params={"charge": first_charge.id, "amount": 100}) for _ in range(3)]
    client.v1.refunds.create(params={"charge": second_charge.id, "amount": 100})

    listed = client.v1.refunds.list(params={"charge": first_charge.id, "limit": 2})
    following = client.v1.refunds.list(params={"charge": first_charge.id, "limit": 2,
                                               "starting_after": listed.data[-1].id})

    assert [r.id for r in listed.data + following.data] == [r.id for r in reversed(refunds)]
    assert (listed.has_more, following.has_more) == (True, False)
    assert len(client.v1.refunds.list().data) == 4


def test_unpaid_payment_intent_cannot_be_refunded(client, sandbox):
    session = create_session(client)
    intent_id = sandbox.pay(session.id, card="4000000000000002")["payment_intent"]["id"]

    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.refunds.create(params={"payment_intent": intent_id})

    assert refused.value.code == "charge_not_refundable"


def test_dashboard_refund_emits_charge_refunded_and_refund_created(client, sandbox, receiver):
    session, intent, charge = paid_session(sandbox, client)

    refund = sandbox.refund_charge(charge.id, amount=1500)

    refunded = receiver.wait_for_event("charge.refunded", id=charge.id)
    created = receiver.wait_for_event("refund.created", id=refund["id"])
    assert refunded["data"]["object"]["amount_refunded"] == 1500
    assert created["data"]["object"]["payment_intent"] == intent.id
    assert created["request"] == {"id": None, "idempotency_key": None}  # the backend did not ask
    assert client.v1.refunds.list(params={"payment_intent": intent.id}).data[0].id == refund["id"]


def test_dashboard_over_refund_is_refused(client, sandbox, receiver):
    session, intent, charge = paid_session(sandbox, client)

    with pytest.raises(SandboxControlError) as refused:
        sandbox.refund_charge(charge.id, amount=4501)

    assert refused.value.status_code == 400
    assert refused.value.body["error"]["code"] == "amount_too_large"
    assert client.v1.charges.retrieve(charge.id).amount_refunded == 0


def test_refund_of_card_5126_fails_later_with_refund_updated(client, sandbox, receiver):
    session, intent, charge = paid_session(sandbox, client, card="4000000000005126")
    refund = client.v1.refunds.create(params={"charge": charge.id})
    assert refund.status == "succeeded"

    sandbox.advance_clock(60)

    updated = receiver.wait_for_event("refund.updated", id=refund.id)
    assert updated["data"]["object"]["status"] == "failed"
    assert updated["data"]["previous_attributes"] == {"status": "succeeded"}
    receiver.wait_for_event("refund.failed", id=refund.id)
    assert client.v1.charges.retrieve(charge.id).amount_refunded == 0


def test_bank_debit_refund_is_pending_then_succeeds(client, sandbox, receiver):
    session = create_session(client)
    sandbox.pay(session.id, method="bank_debit", outcome="succeeded", settle_after=10)
    sandbox.advance_clock(10)
    intent_id = client.v1.checkout.sessions.retrieve(session.id).payment_intent

    refund = client.v1.refunds.create(params={"payment_intent": intent_id})
    assert refund.status == "pending"
    sandbox.advance_clock(120)

    assert client.v1.refunds.retrieve(refund.id).status == "succeeded"
    receiver.wait_for_event("refund.updated", id=refund.id, status="succeeded")


def test_dispute_opens_on_the_charge_and_blocks_refunds(client, sandbox, receiver):
    session, intent, charge = paid_session(sandbox, client)

    dispute = sandbox.dispute_charge(charge.id, reason="product_not_received")

    event = receiver.wait_for_event("charge.dispute.created", id=dispute["id"])
    assert event["data"]["object"]["reason"] == "product_not_received"
    assert (dispute["amount"], dispute["payment_intent"], dispute["status"]) == (4500, intent.id, "needs_response")
    assert client.v1.charges.retrieve(charge.id).disputed is True
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.refunds.create(params={"charge": charge.id})
    assert refused.value.code == "charge_disputed"
    with pytest.raises(SandboxControlError):
        sandbox.dispute_charge(charge.id)
