"""Whole payment flows: the API (live server), the sandbox delivering signed webhooks to
it over HTTP, and a real Celery worker on Redis processing them."""
import pytest

from backend.models import Session
from tests.factories import book, login
from tests.polling import wait_for


@pytest.fixture
def payments(live_server, stripe_sandbox, celery_session_worker, settings):
    """The whole stack, with retries short enough to watch in a test."""
    settings.TASK_RETRY_BASE_SECONDS = 0.1
    settings.TASK_MAX_RETRIES = 3
    return stripe_sandbox


def checkout(client, mentee, mentor, **booking) -> str:
    """Book through the API; returns the Stripe Checkout Session id."""
    response = book(client, login(client, mentee), mentor, **booking)
    assert response.status_code == 200, response.content
    return response.json()["session_id"]


def paid_session(client, sandbox, mentee, mentor, card="4242424242424242", **booking) -> Session:
    """Book, pay with `card` in the sandbox, and wait for the worker to book the session."""
    cs_id = checkout(client, mentee, mentor, **booking)
    assert sandbox.pay(cs_id, card=card)["outcome"] == "succeeded"
    return wait_for(
        lambda: Session.objects.filter(stripe_checkout_session_id=cs_id, payment_status="paid").first(),
        message=f"paid session for {cs_id}",
    )


def charge_of(sandbox, payment_intent: str) -> str:
    return sandbox.stripe_client().v1.payment_intents.retrieve(payment_intent).latest_charge
