"""The hosted page in a real browser: Debian's Chromium driven by Playwright.

Skipped, loudly, where /usr/bin/chromium is missing; never passed without a browser."""

import pytest

from .factories import create_session

pytestmark = pytest.mark.browser


def merchant_urls(receiver) -> dict:
    return {"success_url": f"{receiver.base_url}/sessions?success=true&session_id={{CHECKOUT_SESSION_ID}}",
            "cancel_url": f"{receiver.base_url}/sessions?cancelled=true"}


def test_paying_with_4242_in_chromium_lands_on_success_url(client, receiver, page):
    session = create_session(client, **merchant_urls(receiver))

    page.goto(session.url)
    assert page.get_by_test_id("amount").inner_text() == "$45.00"
    page.fill("#cardnumber", "4242 4242 4242 4242")
    page.fill("#name", "Mentee Example")
    page.get_by_test_id("pay").click()
    page.wait_for_url(f"{receiver.base_url}/sessions?**")

    assert page.url == f"{receiver.base_url}/sessions?success=true&session_id={session.id}"
    assert page.get_by_test_id("merchant-page").is_visible()
    paid = client.v1.checkout.sessions.retrieve(session.id)
    assert (paid.status, paid.payment_status) == ("complete", "paid")
    assert paid.customer_details.name == "Mentee Example"


def test_declined_card_in_chromium_shows_the_decline(client, receiver, page):
    session = create_session(client, **merchant_urls(receiver))

    page.goto(session.url)
    page.fill("#cardnumber", "4000 0000 0000 0002")
    page.get_by_test_id("pay").click()

    assert page.get_by_test_id("payment-error").inner_text() == "Your card was declined."
    assert page.url.startswith(session.url)
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"


def test_authentication_step_in_chromium_then_pays(client, receiver, page):
    session = create_session(client, **merchant_urls(receiver))

    page.goto(session.url)
    page.fill("#cardnumber", "4000 0025 0000 3155")
    page.get_by_test_id("pay").click()
    page.get_by_test_id("authenticate-complete").click()
    page.wait_for_url(f"{receiver.base_url}/sessions?**")

    assert client.v1.checkout.sessions.retrieve(session.id).payment_status == "paid"


def test_cancel_in_chromium_goes_to_cancel_url(client, receiver, page):
    session = create_session(client, **merchant_urls(receiver))

    page.goto(session.url)
    page.get_by_test_id("cancel").click()
    page.wait_for_url(f"{receiver.base_url}/sessions?cancelled=true")

    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
