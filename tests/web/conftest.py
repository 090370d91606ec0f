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


def _loopback_page(chromium, timezone_id: str, **options):
    """A page in a fresh context in `timezone_id` that may reach nothing but loopback (127.0.0.1,
    localhost): every other request is refused and listed in `page.offsite`."""
    context = chromium.new_context(timezone_id=timezone_id, locale="en-US", **options)
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
    return context, page


@pytest.fixture
def browser_page(chromium):
    """A fresh browser context in New York time that may reach nothing but loopback (127.0.0.1, localhost):
    every other request is refused and listed in `page.offsite`."""
    context, page = _loopback_page(chromium, "America/New_York")
    yield page
    context.close()


@pytest.fixture
def browser_in(chromium):
    """browser_in("Asia/Kolkata"): a loopback-only page whose browser lives in that time zone; one
    context per call (two people, two browsers). Keyword options go to the context (viewport...)."""
    contexts = []

    def open_page(timezone_id: str, **options):
        context, page = _loopback_page(chromium, timezone_id, **options)
        contexts.append(context)
        return page

    yield open_page
    for context in contexts:
        context.close()
