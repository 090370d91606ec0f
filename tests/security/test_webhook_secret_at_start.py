"""A webhook secret anyone can know (the placeholder `.env.example` and compose used to ship,
a short one, none at all) can't run a server: an attacker who read the repository and signs
`checkout.session.completed` for their own Checkout finds nothing listening. Only DEBUG and
the offline sandbox (STRIPE_API_BASE) are exempt; real Stripe's test mode is not."""
import os
import secrets
import subprocess
import sys

import httpx
import pytest

from backend.models import WebhookEvent
from tests.stack import ROOT, ApiServer
from tests.webhooks import signed, stripe_event

pytestmark = pytest.mark.django_db(transaction=True)

PLACEHOLDER = "whsec_replace_me"


def a_forged_payment(secret: str) -> tuple[bytes, str]:
    """What an attacker sends: their own Checkout Session, 'paid', signed with the secret they guessed."""
    return signed(stripe_event("checkout.session.completed", data_object={
        "id": f"cs_test_{secrets.token_hex(12)}", "object": "checkout.session", "payment_status": "paid",
        "status": "complete", "amount_total": 12000, "currency": "usd", "client_reference_id": "1",
        "metadata": {"checkout_id": "1"}}), secret)


def deliver(url: str, payload: bytes, header: str) -> httpx.Response:
    return httpx.post(f"{url}/api/payments/webhook", content=payload, timeout=10,
                      headers={"Stripe-Signature": header, "Content-Type": "application/json"})


@pytest.fixture
def real_stripe(monkeypatch):
    """Production-like: real Stripe (test mode), no sandbox, DEBUG off."""
    monkeypatch.delenv("STRIPE_API_BASE", raising=False)
    monkeypatch.delenv("STRIPE_CONNECT_WEBHOOK_SECRET", raising=False)
    monkeypatch.setenv("DJANGO_DEBUG", "false")
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_not_exempt")


def django_setup_in_a_process(**env) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in ({**os.environ, **env}).items() if v is not None}
    return subprocess.run([sys.executable, "-c", "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = "
                                                 "'backend.settings'; django.setup(); print('started')"],
                          cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60)


def test_the_api_server_with_the_placeholder_secret_refuses_to_start_so_a_forged_payment_finds_nobody(real_stripe):
    api = ApiServer(env={"STRIPE_WEBHOOK_SECRET": PLACEHOLDER})
    with pytest.raises(RuntimeError) as refused:
        api.start()
    assert "STRIPE_WEBHOOK_SECRET is a known placeholder" in str(refused.value)
    assert PLACEHOLDER not in str(refused.value)  # the secret is named, never printed

    payload, header = a_forged_payment(PLACEHOLDER)
    with pytest.raises(httpx.ConnectError):
        deliver(api.url, payload, header)
    assert not WebhookEvent.objects.exists()


def test_with_a_real_secret_the_forged_payment_is_refused_and_nothing_stored(real_stripe):
    with ApiServer(env={"STRIPE_WEBHOOK_SECRET": f"whsec_{secrets.token_hex(24)}"}, workers=1) as api:
        response = deliver(api.url, *a_forged_payment(PLACEHOLDER))
    assert response.status_code == 400, response.text
    assert not WebhookEvent.objects.exists()


@pytest.mark.parametrize("name,value,problem", [
    ("STRIPE_WEBHOOK_SECRET", None, "STRIPE_WEBHOOK_SECRET is not set"),
    ("STRIPE_WEBHOOK_SECRET", PLACEHOLDER, "STRIPE_WEBHOOK_SECRET is a known placeholder"),
    ("STRIPE_WEBHOOK_SECRET", "whsec_CHANGE_ME_" + "x1" * 16, "STRIPE_WEBHOOK_SECRET is a known placeholder"),
    ("STRIPE_WEBHOOK_SECRET", "whsec_" + "a1B2c3D4" * 3, "STRIPE_WEBHOOK_SECRET is shorter than 32 characters"),
    ("STRIPE_WEBHOOK_SECRET", "whsec_" + "0" * 40, "STRIPE_WEBHOOK_SECRET has fewer than 5 distinct characters"),
    ("STRIPE_WEBHOOK_SECRET", "9f3c51d2a8e04b7c96d1f0a2b3c4d5e6f7a8b9c0d1e2f3a4", "STRIPE_WEBHOOK_SECRET does not start with whsec_"),
    ("STRIPE_WEBHOOK_SECRET", "whsec_9f3c51d2a8e04b7c96d1f0a2b3c4d5e6f7a8b9c0,whsec_replace_me",
     "STRIPE_WEBHOOK_SECRET is a known placeholder (secret 2 of 2)"),
    ("STRIPE_CONNECT_WEBHOOK_SECRET", PLACEHOLDER, "STRIPE_CONNECT_WEBHOOK_SECRET is a known placeholder"),
    ("STRIPE_CONNECT_WEBHOOK_SECRET", "whsec_connect", "STRIPE_CONNECT_WEBHOOK_SECRET is shorter than 32"),
])
def test_every_process_refuses_to_start_with_a_guessable_webhook_secret(real_stripe, name, value, problem):
    env = {"STRIPE_WEBHOOK_SECRET": f"whsec_{secrets.token_hex(24)}", name: value}
    result = django_setup_in_a_process(**env)
    assert result.returncode != 0 and "started" not in result.stdout
    assert f"ImproperlyConfigured: {problem}" in result.stderr, result.stderr[-2000:]
    if value:
        assert value.split(",")[-1] not in result.stderr


def test_a_real_secret_starts_and_connect_may_be_left_unconfigured(real_stripe):
    result = django_setup_in_a_process(STRIPE_WEBHOOK_SECRET=f"whsec_{secrets.token_hex(24)}",
                                       STRIPE_CONNECT_WEBHOOK_SECRET="")
    assert result.returncode == 0, result.stderr
    both = django_setup_in_a_process(STRIPE_WEBHOOK_SECRET=f"whsec_{secrets.token_hex(24)}",
                                     STRIPE_CONNECT_WEBHOOK_SECRET=f"whsec_{secrets.token_hex(24)}")
    assert both.returncode == 0, both.stderr


@pytest.mark.parametrize("exemption", [{"DJANGO_DEBUG": "true"}, {"STRIPE_API_BASE": "http://127.0.0.1:12111"}])
def test_debug_and_the_offline_sandbox_start_with_the_placeholder(real_stripe, exemption):
    # make run (the sandbox) and the test stacks keep starting; check --deploy still names it (test_settings.py).
    result = django_setup_in_a_process(STRIPE_WEBHOOK_SECRET=PLACEHOLDER, **exemption)
    assert result.returncode == 0, result.stderr
