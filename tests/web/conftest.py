"""The booking flow in Chromium: our pages on the live server, the sandbox's hosted
Checkout page, webhooks processed by a real Celery worker."""
from urllib.parse import urlparse

import pytest


@pytest.fixture
def stack(live_server, stripe_sandbox, celery_session_worker, settings):
    """Checkout returns to the live server's pages; retries short enough to watch."""
    settings.FRONTEND_URL = live_server.url
    settings.TASK_RETRY_BASE_SECONDS = 0.1
    settings.TASK_MAX_RETRIES = 3
    return live_server


@pytest.fixture
def browser_page(chromium):
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
