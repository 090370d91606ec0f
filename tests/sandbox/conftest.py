"""One sandbox process and one webhook receiver for the whole sandbox suite, reset
before every test so that no test sees another's objects, events or faults."""

from __future__ import annotations

import time

import pytest

from stripe_sandbox.process import SandboxProcess
from stripe_sandbox.receiver import WebhookReceiver

WEBHOOK_SECRET = "whsec_sandbox_suite_secret"


@pytest.fixture(scope="session")
def receiver():
    with WebhookReceiver() as running:
        yield running


@pytest.fixture(scope="session")
def sandbox(receiver):
    with SandboxProcess(webhook_url=receiver.url, webhook_secret=WEBHOOK_SECRET,
                        retry_base=0.05, max_attempts=4, retry_max_delay=1.0) as running:
        yield running


@pytest.fixture(autouse=True)
def _clean_sandbox(request):
    if "sandbox" not in request.fixturenames:
        yield
        return
    sandbox = request.getfixturevalue("sandbox")
    receiver = request.getfixturevalue("receiver")
    sandbox.reset()
    _wait_until_nothing_in_flight(sandbox)
    receiver.succeed()
    receiver.clear()
    yield


def _wait_until_nothing_in_flight(sandbox, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while sandbox.webhook_status()["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.fixture
def client(sandbox):
    return sandbox.stripe_client("sk_test_sandbox_suite")


@pytest.fixture
def page(chromium):
    context = chromium.new_context()
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()
