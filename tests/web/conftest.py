"""The booking flow in Chromium: our pages on the live server, the sandbox's hosted
Checkout page, webhooks processed by a real Celery worker."""
import os
from urllib.parse import urlparse

import pytest

from tests.sandbox.conftest import chromium  # noqa: F401  (one Debian Chromium for the module's tests)


@pytest.fixture(scope="session", autouse=True)
def _orm_beside_playwright():
    """Playwright's sync API keeps an event loop running in the test's thread; the test
    still queries the database synchronously, which Django allows only when told."""
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def stack(live_server, stripe_sandbox, celery_session_worker, settings):
    """Checkout returns to the live server's pages; retries short enough to watch."""
    settings.FRONTEND_URL = live_server.url
    settings.TASK_RETRY_BASE_SECONDS = 0.1
    settings.TASK_MAX_RETRIES = 3
    return live_server


@pytest.fixture
def browser_page(chromium):  # noqa: F811
    """A fresh browser context in New York time that may reach nothing but loopback (127.0.0.1, localhost):
    every other request is refused and listed in `page.offsite`."""
    context = chromium.new_context(timezone_id="America/New_York", locale="en-US")
    offsite: list[str] = []

    def only_loopback(route):
        if urlparse(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            offsite.append(route.request.url)
            route.abort()

    context.route("**/*", only_loopback)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.offsite = offsite
    yield page
    context.close()
