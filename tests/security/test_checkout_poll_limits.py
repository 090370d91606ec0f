"""The Checkout state poll can't be turned on Stripe: one account polls at most
CHECKOUT_STATUS_RATE_LIMIT (30 a minute; then 429), and Stripe is asked about one Checkout at
most once every 5 s however many clients poll it. Attacked from outside, over HTTP, against
gunicorn with two workers (the interval holds across processes), the sandbox as Stripe."""
import random
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from backend.models import User
from backend.services.checkouts import STRIPE_STATE_ASK_INTERVAL_SECONDS
from tests.conftest import STRIPE_TEST_KEY, WEBHOOK_SECRET
from tests.factories import PASSWORD, booking, make_mentor
from tests.ops.metrics_text import sample
from tests.stack import ApiServer

pytestmark = pytest.mark.django_db(transaction=True)

STATE_ASK = "GET /v1/checkout/sessions/{id}"


def a_fresh_account() -> User:
    # The stack's counters live in Redis and outlast the test database: an account id no earlier run used.
    return User.objects.create_user(id=random.randrange(10**8, 10**9), email=f"poller{random.randrange(10**9)}@example.test",
                                    password=PASSWORD, name="Poller")


def stripe_asks(api: ApiServer) -> float:
    return sample(httpx.get(f"{api.url}/metrics", timeout=10).text, "myroadmap_stripe_api_calls_total",
                  endpoint=STATE_ASK)


def test_one_account_polling_a_checkout_is_throttled_and_stripe_is_asked_once(stripe_sandbox, tmp_path):
    mentee, other = a_fresh_account(), a_fresh_account()
    env = {"STRIPE_SECRET_KEY": STRIPE_TEST_KEY, "STRIPE_API_BASE": stripe_sandbox.api_base,
           "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
           "CHECKOUT_STATUS_RATE_LIMIT": "30/m"}
    with ApiServer(env=env, workers=2) as api:
        def bearer(user):
            tokens = httpx.post(f"{api.url}/api/auth/login", json={"email": user.email, "password": PASSWORD},
                                timeout=30).json()
            return {"Authorization": f"Bearer {tokens['access']}"}

        headers = bearer(mentee)
        checkout = httpx.post(f"{api.url}/api/payments/create-checkout-session", json=booking(make_mentor()),
                              headers=headers, timeout=30)
        assert checkout.status_code == 200, checkout.text
        url = f"{api.url}/api/payments/checkout-sessions/{checkout.json()['session_id']}"
        asked_before = stripe_asks(api)

        # A script polling from three connections at once, 45 times.
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=3) as pool:
            answers = list(pool.map(lambda _: httpx.get(url, headers=headers, timeout=30), range(45)))
        elapsed = time.monotonic() - started
        asked = stripe_asks(api) - asked_before

        statuses = [answer.status_code for answer in answers]
        assert statuses.count(200) == 30 and statuses.count(429) == 15, statuses
        limited = next(answer for answer in answers if answer.status_code == 429)
        assert limited.json()["code"] == "rate_limited" and 1 <= int(limited.headers["Retry-After"]) <= 60
        assert {answer.json()["state"] for answer in answers if answer.status_code == 200} == {"open"}
        # 30 answered polls, Stripe asked once per started 5 s (once, unless this machine is very slow).
        assert 1 <= asked <= 1 + elapsed // STRIPE_STATE_ASK_INTERVAL_SECONDS, (asked, elapsed)

        # The limit is this account's: another one still polls (its own, unknown, Checkout: 404).
        assert httpx.get(f"{api.url}/api/payments/checkout-sessions/cs_test_unknown", headers=bearer(other),
                         timeout=30).status_code == 404
