"""Checkout Sessions through the official SDK: create -> retrieve -> list -> expire."""

import time

import httpx
import pytest
import stripe

from .factories import SUCCESS_URL, checkout_session_params, create_session, missing_fields


def test_created_session_has_every_field_of_stripes_example_and_our_values(client, sandbox):
    session = create_session(client)

    assert missing_fields(session, "checkout.session") == set()
    assert session.id.startswith("cs_test_")
    assert (session.object, session.status, session.payment_status) == ("checkout.session", "open", "unpaid")
    assert (session.amount_total, session.currency, session.mode) == (4500, "usd", "payment")
    assert session.client_reference_id == "checkout-17"
    assert session.customer_email == "mentee@example.com"
    assert session.metadata.to_dict() == {"checkout_id": "17", "mentor_id": "3"}
    assert session.success_url == SUCCESS_URL
    assert session.livemode is False
    assert session.payment_intent is None  # created at the first payment attempt, as on Stripe
    assert session.url == f"{sandbox.api_base}/c/pay/{session.id}"


def test_retrieve_returns_the_created_session_and_expands_the_payment_intent(client, sandbox):
    session = create_session(client)
    sandbox.pay(session.id, card="4242424242424242")

    retrieved = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent"]})

    assert retrieved.id == session.id
    assert retrieved.payment_intent.object == "payment_intent"
    assert retrieved.payment_intent.metadata.to_dict() == {"checkout_id": "17"}
    assert retrieved.payment_intent.amount == 4500


def test_line_items_are_listed_and_expandable(client):
    session = create_session(client, line_items=[
        {"price_data": {"currency": "usd", "unit_amount": 1500, "product_data": {"name": "Prep"}},
         "quantity": 2}])

    items = client.v1.checkout.sessions.line_items.list(session.id)
    expanded = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["line_items"]})

    assert [(item.description, item.quantity, item.amount_total) for item in items.data] == [("Prep", 2, 3000)]
    assert missing_fields(items.data[0], "item") == set()
    assert expanded.line_items.data[0].id == items.data[0].id
    assert expanded.amount_total == 3000


def test_list_filters_by_created_and_pages_with_cursors(client, sandbox):
    first = [create_session(client) for _ in range(3)]
    sandbox.advance_clock(100)
    later = [create_session(client) for _ in range(4)]
    boundary = later[0].created

    recent = client.v1.checkout.sessions.list(params={"created": {"gte": boundary}, "limit": 3})
    assert [s.id for s in recent.data] == [s.id for s in reversed(later)][:3]
    assert recent.has_more is True
    rest = client.v1.checkout.sessions.list(
        params={"created": {"gte": boundary}, "limit": 3, "starting_after": recent.data[-1].id})
    assert [s.id for s in rest.data] == [later[0].id]
    assert rest.has_more is False
    back = client.v1.checkout.sessions.list(params={"limit": 2, "ending_before": later[0].id})
    assert [s.id for s in back.data] == [later[2].id, later[1].id]
    assert back.has_more is True

    older = client.v1.checkout.sessions.list(params={"created": {"lt": boundary}})
    assert {s.id for s in older.data} == {s.id for s in first}
    everything = list(client.v1.checkout.sessions.list(params={"limit": 2}).auto_paging_iter())
    assert [s.id for s in everything] == [s.id for s in reversed(first + later)]


def test_list_filters_by_status_and_payment_intent(client, sandbox):
    open_session = create_session(client)
    paid = create_session(client)
    sandbox.pay(paid.id)
    intent_id = client.v1.checkout.sessions.retrieve(paid.id).payment_intent

    complete = client.v1.checkout.sessions.list(params={"status": "complete"})
    by_intent = client.v1.checkout.sessions.list(params={"payment_intent": intent_id})
    still_open = client.v1.checkout.sessions.list(params={"status": "open"})

    assert [s.id for s in complete.data] == [paid.id]
    assert [s.id for s in by_intent.data] == [paid.id]
    assert [s.id for s in still_open.data] == [open_session.id]


def test_expire_closes_an_open_session_and_emits_checkout_session_expired(client, receiver):
    session = create_session(client)

    expired = client.v1.checkout.sessions.expire(session.id)

    assert (expired.status, expired.url) == ("expired", None)
    event = receiver.wait_for_event("checkout.session.expired", id=session.id)
    assert event["data"]["object"]["status"] == "expired"
    assert event["request"]["id"].startswith("req_")


def test_expire_refuses_a_session_that_is_not_open(client, sandbox):
    session = create_session(client)
    sandbox.pay(session.id)

    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.checkout.sessions.expire(session.id)
    assert refused.value.http_status == 400
    assert "complete" in refused.value.user_message


def test_session_expires_when_the_clock_passes_expires_at(client, sandbox, receiver):
    session = create_session(client, expires_at=int(time.time()) + 31 * 60)

    sandbox.advance_clock(30 * 60)
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
    sandbox.advance_clock(2 * 60)

    assert client.v1.checkout.sessions.retrieve(session.id).status == "expired"
    event = receiver.wait_for_event("checkout.session.expired", id=session.id)
    assert event["request"] == {"id": None, "idempotency_key": None}  # nobody asked through the API


def test_default_expiry_is_24_hours(client):
    session = client.v1.checkout.sessions.create(params=checkout_session_params(expires_at=None))

    assert session.expires_at - session.created == 24 * 3600


def test_api_is_served_with_stripe_headers(client, sandbox):
    response = httpx.get(f"{sandbox.api_base}/v1/checkout/sessions",
                         headers={"Authorization": "Bearer sk_test_x1", "Stripe-Version": "2020-08-27"})

    assert response.status_code == 200
    assert response.headers["Request-Id"].startswith("req_")
    assert response.json() == {"object": "list", "data": [], "has_more": False,
                               "url": "/v1/checkout/sessions"}


def test_plain_form_posts_with_bracket_nesting_and_expand_brackets_work(sandbox):
    """What curl or another client sends, without the SDK."""
    auth = {"Authorization": "Bearer sk_test_plain_form"}
    form = {"mode": "payment", "line_items[0][price_data][currency]": "eur",
            "line_items[0][price_data][unit_amount]": "2500",
            "line_items[0][price_data][product_data][name]": "Review",
            "line_items[0][quantity]": "2", "metadata[checkout_id]": "5",
            "success_url": "https://mentors.example/ok"}

    created = httpx.post(f"{sandbox.api_base}/v1/checkout/sessions", data=form, headers=auth).json()
    sandbox.pay(created["id"])
    fetched = httpx.get(f"{sandbox.api_base}/v1/checkout/sessions/{created['id']}?expand[]=payment_intent",
                        headers=auth).json()

    assert (created["amount_total"], created["currency"], created["metadata"]) == (5000, "eur", {"checkout_id": "5"})
    assert fetched["payment_intent"]["object"] == "payment_intent"
    assert fetched["payment_intent"]["amount_received"] == 5000
