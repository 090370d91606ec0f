"""Stripe calls are labelled by endpoint with ids folded, so the label set stays small."""
import pytest

from backend.observability.metrics import stripe_endpoint


@pytest.mark.parametrize("method, url, label", [
    ("post", "https://api.stripe.com/v1/checkout/sessions", "POST /v1/checkout/sessions"),
    ("get", "https://api.stripe.com/v1/checkout/sessions/cs_test_a1B2c3D4e5", "GET /v1/checkout/sessions/{id}"),
    ("post", "http://127.0.0.1:12111/v1/checkout/sessions/cs_test_a1b2c3/expire", "POST /v1/checkout/sessions/{id}/expire"),
    ("get", "https://api.stripe.com/v1/events?types[0]=x&created[gte]=1", "GET /v1/events"),
    ("get", "https://api.stripe.com/v1/events/evt_1NfakeEventId000", "GET /v1/events/{id}"),
    ("post", "https://api.stripe.com/v1/payment_intents", "POST /v1/payment_intents"),
    ("post", "https://api.stripe.com/v1/refunds", "POST /v1/refunds"),
])
def test_ids_are_folded_and_resource_names_kept(method, url, label):
    assert stripe_endpoint(method, url) == label
