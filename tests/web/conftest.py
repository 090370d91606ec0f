"""The booking flow in Chromium: our pages on the live server, the sandbox's hosted
Checkout page, webhooks processed by a real Celery worker."""
import os
from pathlib import Path
from urllib.parse import urlparse

import pytest


@pytest.fixture
def stack(live_server, stripe_sandbox, celery_session_worker, settings):
    """Checkout returns to the live server's pages; retries short enough to watch."""
    settings.FRONTEND_URL = live_server.url
    settings.TASK_RETRY_BASE_SECONDS = 0.1
    settings.TASK_MAX_RETRIES = 3
    return live_server


def loopback_context(chromium, **options):
    """A fresh browser context that may reach nothing but loopback (127.0.0.1, localhost): every
    other request is refused and listed in `context.offsite`."""
    context = chromium.new_context(**options)
    offsite: list[str] = []

    def only_loopback(route):
        if urlparse(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            offsite.append(route.request.url)
            route.abort()

    context.route("**/*", only_loopback)
    context.offsite = offsite
    return context


@pytest.fixture
def browser_page(chromium):
    """A page in New York time on a desktop-sized window, reaching only loopback (`page.offsite`)."""
    context = loopback_context(chromium, timezone_id="America/New_York", locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.offsite = context.offsite
    yield page
    context.close()


@pytest.fixture
def browser_in(chromium):
    """browser_in("Asia/Kolkata"): a loopback-only page whose browser lives in that time zone; one
    context per call (two people, two browsers). Keyword options go to the context (viewport...)."""
    contexts = []

    def open_page(timezone_id: str, **options):
        context = loopback_context(chromium, timezone_id=timezone_id, locale="en-US", **options)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.offsite = context.offsite
        return page

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def phone_page(chromium):
    """A 390 px wide phone in Tokyo time, reaching only loopback (`page.offsite`)."""
    context = loopback_context(chromium, timezone_id="Asia/Tokyo", locale="en-US", viewport={"width": 390, "height": 844},
                               device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.offsite = context.offsite
    yield page
    context.close()


@pytest.fixture
def screenshot(tmp_path):
    """Save a page's picture: into SCREENSHOTS_DIR when set (`make screenshots` writes the
    docs' pictures so), else into the test's temporary directory."""
    folder = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)

    def take(page, name: str, **options) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), animations="disabled", **options)
        assert path.stat().st_size > 10_000, f"{path} looks empty"
        return path

    return take
