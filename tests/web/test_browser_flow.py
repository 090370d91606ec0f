"""The seven steps a mentee walks, in Chromium: /mentors, "Book Session", the booking
form, "Book & Pay with Stripe", the hosted Checkout page, paying, and back on /sessions.
Skipped, loudly, where /usr/bin/chromium is missing."""
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from backend.models import Refund, Session
from tests.factories import PASSWORD, make_mentor, make_user
from tests.polling import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NEW_YORK = ZoneInfo("America/New_York")


def log_in(page, base_url: str, email: str) -> None:
    page.goto(f"{base_url}/login")
    page.fill("#id_email", email)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base_url}/sessions")


def book_on_pages(page, base_url: str, mentor_name: str, start: datetime) -> None:
    """Steps 1 to 5: from the catalogue to Stripe's Checkout page."""
    page.goto(f"{base_url}/mentors")  # 1
    page.get_by_test_id("mentor-card").filter(has_text=mentor_name).get_by_role("link", name="Book Session").click()  # 2
    page.fill("#id_title", "Career chat")  # 3
    page.fill("#id_description", "Going from junior to senior")
    page.fill("#id_scheduled_at", start.astimezone(NEW_YORK).strftime("%Y-%m-%dT%H:%M"))
    page.select_option("#id_duration_minutes", "90")
    page.get_by_test_id("book-and-pay").click()  # 4
    page.wait_for_selector("#cardnumber")  # 5: the hosted page


def pay(page, card: str) -> None:
    page.fill("#cardnumber", card)
    page.fill("#name", "Mentee Example")
    page.get_by_test_id("pay").click()


def a_slot(days: int = 4) -> datetime:
    return (timezone.now() + timedelta(days=days)).replace(hour=15, minute=0, second=0, microsecond=0)


def assert_booked(page, base_url: str, mentee, mentor, start: datetime) -> Session:
    page.wait_for_url(re.compile(re.escape(f"{base_url}/sessions?success=true&session_id=cs_")))  # 7
    status = page.get_by_test_id("checkout-status-text")
    status.filter(has_text="Booked!").wait_for()
    assert "paid and confirmed" in status.inner_text()
    page.get_by_test_id("session-row").filter(has_text="Career chat").wait_for()
    session = Session.objects.get(mentee=mentee)
    assert (session.mentor_id, session.status, session.payment_status) == (mentor.pk, "scheduled", "paid")
    assert session.scheduled_at == start and session.duration_minutes == 90 and session.amount == 18000
    assert page.url.endswith(session.stripe_checkout_session_id)
    assert page.offsite == []
    return session


@pytest.mark.parametrize("card", ["4242 4242 4242 4242", "decline then 4242", "4000 0025 0000 3155 (3DS)"])
def test_a_mentee_books_and_pays_in_the_browser(stack, browser_page, card):
    page, base = browser_page, stack.url
    mentor = make_mentor(name="Ada Lovelace", hourly_rate=12000)
    mentee = make_user(email="mentee@example.test")
    start = a_slot()
    log_in(page, base, mentee.email)
    book_on_pages(page, base, "Ada Lovelace", start)

    if card.startswith("decline"):
        pay(page, "4000 0000 0000 0002")
        assert page.get_by_test_id("payment-error").inner_text() == "Your card was declined."
        assert not Session.objects.exists()
        pay(page, "4242 4242 4242 4242")  # 6: retry on the same page
    elif "3DS" in card:
        pay(page, "4000 0025 0000 3155")
        page.get_by_test_id("authenticate-complete").click()  # 6: the authentication step
    else:
        pay(page, card)  # 6
    assert_booked(page, base, mentee, mentor, start)


def test_cancel_in_the_browser_refunds_the_session(stack, browser_page):
    page, base = browser_page, stack.url
    mentor = make_mentor(name="Grace Hopper", hourly_rate=12000)
    mentee = make_user(email="mentee@example.test")
    start = a_slot(days=5)
    log_in(page, base, mentee.email)
    book_on_pages(page, base, "Grace Hopper", start)
    pay(page, "4242 4242 4242 4242")
    session = assert_booked(page, base, mentee, mentor, start)

    page.get_by_test_id("session-row").filter(has_text="Career chat").get_by_role("link", name="Cancel").click()
    assert "full refund" in page.get_by_test_id("refund-policy").inner_text()
    page.get_by_test_id("confirm-cancel").click()
    page.wait_for_url(f"{base}/sessions")
    assert "cancelled" in page.get_by_role("status").first.inner_text()

    wait_for(lambda: Session.objects.get(pk=session.pk).payment_status == "refunded", message="refund confirmed")
    page.reload()
    row = page.get_by_test_id("session-row").filter(has_text="Career chat")
    assert row.get_by_test_id("session-status").inner_text() == "cancelled"
    assert row.get_by_test_id("payment-status").inner_text() == "refunded"
    assert row.get_by_test_id("refund-state").inner_text() == "succeeded: 180.00 USD"
    assert Refund.objects.get(session=session).status == "succeeded"
    assert page.offsite == []
