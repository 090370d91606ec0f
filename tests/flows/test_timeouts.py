"""Issue 9 item 9: a slow Stripe never holds a request past its budget, and never keeps a slot."""
import time

import pytest

from backend.models import Checkout
from tests.factories import book, login, make_mentor, make_user

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_slow_stripe_answers_503_within_the_budget_and_releases_the_hold(client, stripe_sandbox, settings):
    settings.STRIPE_TIMEOUT_SECONDS, settings.STRIPE_MAX_NETWORK_RETRIES = 1.0, 1
    budget = 2 * 1.0 + 1  # two tries of a second, and the SDK's backoff between them
    stripe_sandbox.set_api_faults(latency_ms=6000, path_prefix="/v1/checkout/sessions")
    mentor, mentee, other = make_mentor(), make_user(), make_user()

    started = time.monotonic()
    response = book(client, login(client, mentee), mentor)
    took = time.monotonic() - started

    assert response.status_code == 503, response.content
    assert response.json()["code"] == "payment_provider_unavailable"
    assert took < budget + 2, f"answered after {took:.1f}s"
    assert Checkout.objects.get(mentee=mentee).status == "expired"  # the hold is released...
    stripe_sandbox.set_api_faults(latency_ms=0)
    assert book(client, login(client, other), mentor).status_code == 200  # ...so the slot can be booked
