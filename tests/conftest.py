"""Suite-wide setup: the suite runs on real PostgreSQL and Redis, and says clearly when one is down."""
import os
import socket
import uuid
import warnings
from urllib.parse import urlparse

import pytest


def _reachable(url: str, default_port: int) -> str | None:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=3):
            return None
    except OSError as exc:
        return str(exc)


def _redacted(url: str) -> str:
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@")
    return url


def pytest_sessionstart(session):
    database_url = os.environ.get("DATABASE_URL", "")
    broker_url = os.environ.get("CELERY_BROKER_URL", "")
    if not database_url.startswith("postgres"):
        pytest.exit("The suite runs on PostgreSQL: set DATABASE_URL (make test does)", returncode=3)
    if not broker_url.startswith("redis"):
        pytest.exit("The suite runs on Redis: set CELERY_BROKER_URL (make test does)", returncode=3)
    for name, url, port in (("PostgreSQL", database_url, 5432), ("Redis", broker_url, 6379)):
        error = _reachable(url, port)
        if error:
            pytest.exit(f"{name} at {_redacted(url)} is unreachable ({error}); start it and run again", returncode=3)


@pytest.fixture(autouse=True)
def fresh_rate_limit_counters(settings):
    """The abuse limits count in Redis, where counts outlive a test: each test starts from zero."""
    settings.RATELIMIT_CACHE_PREFIX = f"rl:{uuid.uuid4().hex[:12]}:"


# --- Celery: pytest-celery's session worker, running OUR app on the Redis broker ----------


@pytest.fixture(scope="session")
def celery_session_app():
    from worker import app

    app.control.purge()  # nothing left over from an earlier run reaches this worker
    return app


@pytest.fixture(scope="session")
def celery_worker_parameters():
    # Our app keeps no results, so the worker's ping-through-results check can't work.
    return {"perform_ping_check": False, "shutdown_timeout": 30}


# --- Stripe: the offline sandbox as a real process, delivering to a live API ------------

STRIPE_TEST_KEY = "sk_test_backend_suite"
WEBHOOK_SECRET = "whsec_backend_suite"


@pytest.fixture(scope="session")
def stripe_sandbox_process(live_server):
    from stripe_sandbox.process import SandboxProcess

    with SandboxProcess(
        webhook_url=f"{live_server.url}/api/payments/webhook",
        webhook_secret=WEBHOOK_SECRET,
        retry_base=0.1,
        max_attempts=6,
        retry_max_delay=1.0,
    ) as sandbox:
        yield sandbox


@pytest.fixture
def stripe_sandbox(stripe_sandbox_process, settings):
    """A clean sandbox, with the backend's settings pointing at it (key, base, webhook secret)."""
    stripe_sandbox_process.reset()
    settings.STRIPE_SECRET_KEY = STRIPE_TEST_KEY
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_backend_suite"
    settings.STRIPE_API_BASE = stripe_sandbox_process.api_base
    settings.STRIPE_WEBHOOK_SECRETS = [WEBHOOK_SECRET]
    yield stripe_sandbox_process
    # Let in-flight deliveries land before the database is flushed for the next test.
    try:
        stripe_sandbox_process.wait_until_delivered(timeout=10)
    except TimeoutError:
        pass


# --- Browser: one Debian Chromium for the whole session (the sandbox's hosted page, our pages) --
# Playwright's sync API allows one instance per thread, so every browser test shares it.

# Debian's package; CHROMIUM_PATH only moves it (e.g. to check the loud skip).
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

_browser_skip_reasons: list[str] = []


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
    # Playwright's sync API keeps an event loop in this thread; tests beside it still query
    # the database synchronously (they never run inside that loop), which Django allows only when told.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def pytest_terminal_summary(terminalreporter):
    if _browser_skip_reasons:
        terminalreporter.write_sep("!", "BROWSER TESTS SKIPPED, NOT PASSED", red=True, bold=True)
        terminalreporter.write_line(_browser_skip_reasons[0], red=True, bold=True)
