"""One sandbox process and one webhook receiver for the whole sandbox suite, reset
before every test so that no test sees another's objects, events or faults."""

from __future__ import annotations

import os
import time
import warnings

import pytest

from stripe_sandbox.process import SandboxProcess
from stripe_sandbox.receiver import WebhookReceiver

WEBHOOK_SECRET = "whsec_sandbox_suite_secret"
# Debian's package; CHROMIUM_PATH only moves it (e.g. to check the loud skip).
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

_browser_skip_reasons: list[str] = []


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


@pytest.fixture(scope="session")
def chromium():
    """Playwright's Chromium: Debian's build, never a downloaded one."""
    if not os.path.exists(CHROMIUM):
        reason = (f"BROWSER TESTS NOT RUN: {CHROMIUM} is missing "
                  "(apt-get install -y chromium); they are skipped, not passed")
        _browser_skip_reasons.append(reason)
        warnings.warn(reason)  # listed in the warnings summary; the terminal summary repeats it
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    context = chromium.new_context()
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def pytest_terminal_summary(terminalreporter):
    if _browser_skip_reasons:
        terminalreporter.write_sep("!", "BROWSER TESTS SKIPPED, NOT PASSED", red=True, bold=True)
        terminalreporter.write_line(_browser_skip_reasons[0], red=True, bold=True)
