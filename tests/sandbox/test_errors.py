"""Errors as Stripe answers them, raised by the SDK as the matching exception class."""

import time
import uuid

import httpx
import pytest
import stripe

from .factories import checkout_session_params, create_session


def test_unknown_parameter_is_refused_naming_it(client):
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.checkout.sessions.create(params=checkout_session_params(colour="blue"))

    assert refused.value.http_status == 400
    assert refused.value.code == "parameter_unknown"
    assert refused.value.param == "colour"
    assert refused.value.user_message == "Received unknown parameter: colour"
    assert refused.value.error.type == "invalid_request_error"
    assert refused.value.error.doc_url == "https://docs.stripe.com/error-codes/parameter-unknown"


def test_unknown_nested_parameter_is_refused_with_its_full_path(client):
    params = checkout_session_params(payment_intent_data={"metadata": {"a": "b"}, "tip": "1"})

    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.checkout.sessions.create(params=params)

    assert refused.value.param == "payment_intent_data[tip]"


def test_missing_required_parameter_is_refused(client):
    line = {"price_data": {"unit_amount": 4500, "product_data": {"name": "Session"}}, "quantity": 1}

    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.checkout.sessions.create(params=checkout_session_params(line_items=[line]))

    assert (refused.value.http_status, refused.value.code) == (400, "parameter_missing")
    assert refused.value.param == "line_items[0][price_data][currency]"
    assert refused.value.user_message == "Missing required param: line_items[0][price_data][currency]."


def test_missing_mode_is_refused(client):
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.checkout.sessions.create(params=checkout_session_params(mode=None))

    assert (refused.value.code, refused.value.param) == ("parameter_missing", "mode")


def test_refund_needs_a_charge_or_a_payment_intent(client):
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.refunds.create(params={"amount": 100})

    assert refused.value.code == "parameter_missing"


@pytest.mark.parametrize("minutes_from_now", [10, 29 - 1, 24 * 60 + 5, -5])
def test_expires_at_outside_30_minutes_to_24_hours_is_refused(client, minutes_from_now):
    expires_at = int(time.time()) + minutes_from_now * 60

    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.checkout.sessions.create(params=checkout_session_params(expires_at=expires_at))

    assert (refused.value.http_status, refused.value.param) == (400, "expires_at")


def test_non_integer_is_refused(client):
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.checkout.sessions.list(params={"limit": "many"})

    assert (refused.value.code, refused.value.param) == ("parameter_invalid_integer", "limit")


@pytest.mark.parametrize("fetch, name", [
    (lambda c: c.v1.checkout.sessions.retrieve("cs_test_missing"), "checkout.session"),
    (lambda c: c.v1.payment_intents.retrieve("pi_missing"), "payment_intent"),
    (lambda c: c.v1.charges.retrieve("ch_missing"), "charge"),
    (lambda c: c.v1.refunds.retrieve("re_missing"), "refund"),
    (lambda c: c.v1.events.retrieve("evt_missing"), "event"),
])
def test_unknown_id_is_resource_missing(client, fetch, name):
    with pytest.raises(stripe.InvalidRequestError) as refused:
        fetch(client)

    assert (refused.value.http_status, refused.value.code) == (404, "resource_missing")
    assert refused.value.user_message.startswith(f"No such {name}: '")


def test_bad_key_is_an_authentication_error(sandbox):
    bad = stripe.StripeClient("sk_live_not_a_sandbox_key", base_addresses={"api": sandbox.api_base})

    with pytest.raises(stripe.AuthenticationError) as refused:
        bad.v1.checkout.sessions.list()

    assert refused.value.http_status == 401
    assert refused.value.user_message.startswith("Invalid API Key provided: sk_live_")
    assert "not_a_sandbox" not in refused.value.user_message  # the key is redacted


def test_missing_key_is_401_with_stripes_message(sandbox):
    response = httpx.get(f"{sandbox.api_base}/v1/checkout/sessions")

    assert response.status_code == 401
    assert response.json()["error"]["message"].startswith("You did not provide an API key.")
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_unrecognized_url_is_404(sandbox):
    response = httpx.get(f"{sandbox.api_base}/v1/customers/cus_1",
                         headers={"Authorization": "Bearer sk_test_x1"})

    assert response.status_code == 404
    assert response.json()["error"]["message"].startswith("Unrecognized request URL (GET: /v1/customers/cus_1)")


def test_same_idempotency_key_and_parameters_replay_the_first_response(client):
    key = f"checkout:{uuid.uuid4()}"
    params = checkout_session_params()

    first = client.v1.checkout.sessions.create(params=params, options={"idempotency_key": key})
    replay = client.v1.checkout.sessions.create(params=params, options={"idempotency_key": key})

    assert replay.id == first.id
    assert replay.last_response.headers.get("Idempotent-Replayed") == "true"
    assert first.last_response.headers.get("Idempotent-Replayed") is None
    assert len(client.v1.checkout.sessions.list().data) == 1


def test_same_idempotency_key_with_other_parameters_is_an_idempotency_error(client):
    key = f"checkout:{uuid.uuid4()}"
    client.v1.checkout.sessions.create(params=checkout_session_params(), options={"idempotency_key": key})

    with pytest.raises(stripe.IdempotencyError) as refused:
        client.v1.checkout.sessions.create(params=checkout_session_params(client_reference_id="other"),
                                           options={"idempotency_key": key})

    assert refused.value.http_status == 400
    assert refused.value.error.type == "idempotency_error"
    assert key in refused.value.user_message


def test_idempotent_refund_is_made_once(client, sandbox):
    session = create_session(client)
    sandbox.pay(session.id)
    intent = client.v1.checkout.sessions.retrieve(session.id).payment_intent
    options = {"idempotency_key": f"refund:{uuid.uuid4()}"}

    first = client.v1.refunds.create(params={"payment_intent": intent, "amount": 1000}, options=options)
    again = client.v1.refunds.create(params={"payment_intent": intent, "amount": 1000}, options=options)

    assert again.id == first.id
    assert len(client.v1.refunds.list(params={"payment_intent": intent}).data) == 1


def test_refused_request_is_not_saved_under_its_idempotency_key(client):
    key = f"checkout:{uuid.uuid4()}"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.checkout.sessions.create(params=checkout_session_params(colour="blue"),
                                           options={"idempotency_key": key})

    created = client.v1.checkout.sessions.create(params=checkout_session_params(),
                                                 options={"idempotency_key": key})

    assert created.status == "open"
