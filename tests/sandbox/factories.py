"""Small builders of Checkout Session params and paid sessions for the sandbox tests."""

from __future__ import annotations

import json
import time
from pathlib import Path

SUCCESS_URL = "https://mentors.example/sessions?success=true&session_id={CHECKOUT_SESSION_ID}"
CANCEL_URL = "https://mentors.example/sessions?cancelled=true"

# Top-level fields of Stripe's own example object of each type (from stripe-mock's fixtures).
STRIPE_OBJECT_FIELDS = json.loads(
    (Path(__file__).parent / "stripe_object_fields.json").read_text())["fields"]


def checkout_session_params(**overrides) -> dict:
    params = {
        "mode": "payment",
        "line_items": [{"price_data": {"currency": "usd", "unit_amount": 4500,
                                       "product_data": {"name": "Mentorship session: system design"}},
                        "quantity": 1}],
        "success_url": SUCCESS_URL,
        "cancel_url": CANCEL_URL,
        "client_reference_id": "checkout-17",
        "customer_email": "mentee@example.com",
        "metadata": {"checkout_id": "17", "mentor_id": "3"},
        "payment_intent_data": {"metadata": {"checkout_id": "17"}},
        "expires_at": int(time.time()) + 30 * 60,
    }
    params.update(overrides)
    return {key: value for key, value in params.items() if value is not None}


def create_session(client, **overrides):
    return client.v1.checkout.sessions.create(params=checkout_session_params(**overrides))


def paid_session(sandbox, client, card: str = "4242424242424242", **overrides):
    """A session paid with `card`; returns (session, payment_intent, charge) as SDK objects."""
    session = create_session(client, **overrides)
    sandbox.pay(session.id, card=card)
    session = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent"]})
    charge = client.v1.charges.retrieve(session.payment_intent.latest_charge)
    return session, session.payment_intent, charge


def missing_fields(stripe_object, object_type: str | None = None) -> set[str]:
    """Fields of Stripe's example object that `stripe_object` (SDK object or dict) lacks."""
    data = stripe_object if isinstance(stripe_object, dict) else stripe_object.to_dict()
    return set(STRIPE_OBJECT_FIELDS[object_type or data["object"]]) - set(data)
