"""Starting the sandbox: flags, environment, the launcher, and state kept across restarts."""

import httpx
import pytest
import stripe

from stripe_sandbox.__main__ import parse_config
from stripe_sandbox.process import SandboxProcess

from .factories import create_session


def test_every_flag_can_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("SANDBOX_HOST", "127.0.0.2")
    monkeypatch.setenv("SANDBOX_PORT", "12999")
    monkeypatch.setenv("SANDBOX_WEBHOOK_URL", "http://127.0.0.1:8002/api/payments/webhook")
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_from_env")
    monkeypatch.setenv("SANDBOX_RETRY_BASE", "0.5")

    config = parse_config([])

    assert (config.host, config.port, config.retry_base) == ("127.0.0.2", 12999, 0.5)
    assert config.webhook_url == "http://127.0.0.1:8002/api/payments/webhook"
    assert config.webhook_secret == "whsec_from_env"
    assert config.base_url == "http://127.0.0.2:12999"
    assert parse_config(["--port", "13000"]).port == 13000  # a flag beats the environment


def test_webhook_url_without_a_secret_is_refused(monkeypatch):
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET", raising=False)

    with pytest.raises(SystemExit):
        parse_config(["--webhook-url", "http://127.0.0.1:9/webhook"])


def test_state_file_keeps_objects_and_events_across_restarts(tmp_path):
    state = str(tmp_path / "sandbox.json")
    with SandboxProcess(state_file=state) as first:
        client = first.stripe_client()
        session = create_session(client)
        first.pay(session.id)
        first.advance_clock(600)

    with SandboxProcess(state_file=state) as second:
        client = second.stripe_client()
        restored = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent"]})
        assert (restored.status, restored.payment_intent.status) == ("complete", "succeeded")
        assert len(client.v1.events.list().data) == 4
        assert second.clock()["offset"] == 600
        assert restored.url is None


def test_launcher_picks_a_free_port_and_stops_cleanly():
    sandbox = SandboxProcess().start()
    api_base = sandbox.api_base
    assert httpx.get(f"{api_base}/_sandbox/health").json()["ok"] is True
    assert sandbox.webhook_status()["enabled"] is False

    sandbox.stop()

    assert not sandbox.running
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{api_base}/_sandbox/health")


def test_api_key_flag_accepts_only_that_key():
    with SandboxProcess(api_key="sk_test_the_only_one") as sandbox:
        assert sandbox.stripe_client("sk_test_the_only_one").v1.checkout.sessions.list().data == []
        with pytest.raises(stripe.AuthenticationError):
            sandbox.stripe_client("sk_test_another_key").v1.checkout.sessions.list()


def test_without_a_webhook_url_events_are_kept_and_count_as_delivered():
    with SandboxProcess() as sandbox:
        client = sandbox.stripe_client()
        sandbox.pay(create_session(client).id)

        events = client.v1.events.list()
        assert {event.pending_webhooks for event in events.data} == {0}
        assert client.v1.events.list(params={"delivery_success": False}).data == []


def test_api_latency_fault_slows_matching_requests_only_until_reset(client, sandbox):
    session = create_session(client)
    sandbox.set_api_faults(latency_ms=1500, path_prefix="/v1/checkout/sessions")
    slow = sandbox.stripe_client(max_network_retries=0, http_client=stripe.RequestsClient(timeout=0.5))

    with pytest.raises(stripe.APIConnectionError):  # the SDK's read timeout: a slow Stripe
        slow.v1.checkout.sessions.retrieve(session.id)
    assert slow.v1.events.list(params={"limit": 1}).object == "list"  # other paths answer at once

    with pytest.raises(Exception, match="Unknown fault: latency"):
        sandbox._call("POST", "/api/faults", {"latency": 5})
    sandbox.reset()
    assert slow.v1.checkout.sessions.list(params={"limit": 1}).object == "list"  # fast again
