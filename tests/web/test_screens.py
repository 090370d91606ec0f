"""What the screens say about money and time, in Chromium, as a new user meets them: the slot
picker and its prices, errors in the user's words, cancelling a hold, a disputed payment, a
refund that fails later (followed live, explained, and retried), the admin's refund
confirmation, and every page on a 390 px phone. `make screenshots` keeps the pictures the
README shows (docs/screenshots/)."""
import re
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.core import mail
from django.utils import timezone
from playwright.sync_api import expect

from backend.models import Checkout, Refund, Session, User, WeeklyAvailability
from backend.services.refunds import refunds_retry
from tests.factories import PASSWORD, future_slot, make_mentor, make_session, make_user
from tests.flows.conftest import paid_session
from tests.polling import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NEW_YORK = ZoneInfo("America/New_York")
FAILS_LATER = "4000 0000 0000 5126"
DISPUTED_LATER = "4000 0000 0000 0259"


def log_in(page, base_url: str, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{base_url}/login")
    page.fill("#id_email", email)
    page.fill("#id_password", password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/sessions$"))


def every_day(mentor, start: time, end: time) -> None:
    for weekday in range(7):
        WeeklyAvailability.objects.create(mentor=mentor, weekday=weekday, start_time=start, end_time=end)


def offered_starts(page) -> list[datetime]:
    """The start times the picker shows for the selected day, as instants."""
    return [datetime.fromisoformat(s) for s in
            page.get_by_test_id("slot-time").evaluate_all("els => els.map(e => e.dataset.start)")]


def book_form(page, title: str = "Career chat") -> None:
    page.fill("#id_title", title)
    page.get_by_test_id("book-and-pay").click()
    page.wait_for_selector("#cardnumber")


def pay(page, card: str) -> None:
    page.fill("#cardnumber", card)
    page.fill("#name", "Mentee Example")
    page.get_by_test_id("pay").click()


def type_start(page, start: datetime, zone=NEW_YORK) -> None:
    page.fill("#id_scheduled_at", start.astimezone(zone).strftime("%Y-%m-%dT%H:%M"))


def booked_through_the_pages(page, base: str, mentor_id: int, start: datetime, card: str, duration: str = "60") -> Session:
    page.goto(f"{base}/mentors/{mentor_id}")
    page.select_option("#id_duration_minutes", duration)
    type_start(page, start)
    book_form(page)
    pay(page, card)
    page.wait_for_url(re.compile(r"/sessions\?success=true&session_id=cs_"))
    page.get_by_test_id("checkout-status-text").filter(has_text="Booked!").wait_for()
    return Session.objects.get(stripe_checkout_session_id=page.url.rsplit("=", 1)[1])


def a_day(days: int) -> datetime:
    return datetime.combine((timezone.now() + timedelta(days=days)).astimezone(UTC).date(), time(0), tzinfo=UTC)


# --- Booking ------------------------------------------------------------------------------


def test_the_slot_picker_offers_bookable_starts_in_my_zone_and_fills_the_form(stack, browser_page, screenshot):
    page, base = browser_page, stack.url
    mentor = make_mentor(name="Ada Lovelace", hourly_rate=12000, headline="Compilers and careers")
    every_day(mentor, time(14), time(17))  # UTC
    busy_day, free_day = a_day(3), a_day(4)
    taken = busy_day.replace(hour=15)
    make_session(mentor=mentor, mentee=make_user(), scheduled_at=taken, ends_at=taken + timedelta(hours=1))
    mentee = make_user(email="mentee@example.test", name="Mia Mentee")
    log_in(page, base, mentee.email)
    page.goto(f"{base}/mentors/{mentor.pk}")

    price, picker = page.get_by_test_id("price"), page.get_by_test_id("slot-picker")
    expect(price).to_contain_text("Price: 120.00 USD for 60 minutes")
    expect(picker).to_have_attribute("data-loaded", "60")
    page.locator(f"[data-testid=slot-day][data-day='{busy_day.date()}']").click()
    assert offered_starts(page) == [busy_day.replace(hour=14), busy_day.replace(hour=16)]  # 15:00 is booked
    labels = page.get_by_test_id("slot-time").all_inner_texts()
    assert labels == [busy_day.replace(hour=h).astimezone(NEW_YORK).strftime("%-I:%M %p") for h in (14, 16)]

    page.select_option("#id_duration_minutes", "90")
    expect(price).to_contain_text("Price: 180.00 USD for 90 minutes")
    expect(picker).to_have_attribute("data-loaded", "90")
    expect(page.locator(f"[data-testid=slot-day][data-day='{busy_day.date()}']")).to_have_count(0)
    page.locator(f"[data-testid=slot-day][data-day='{free_day.date()}']").click()
    assert offered_starts(page) == [free_day.replace(hour=14) + timedelta(minutes=m) for m in (0, 30, 60, 90)]

    page.select_option("#id_duration_minutes", "60")
    expect(price).to_contain_text("120.00 USD")
    expect(picker).to_have_attribute("data-loaded", "60")
    page.locator(f"[data-testid=slot-day][data-day='{free_day.date()}']").click()
    chosen = free_day.replace(hour=16)
    page.locator(f"[data-testid=slot-time][data-start='{chosen.astimezone(NEW_YORK).isoformat()}']").click()
    assert page.input_value("#id_scheduled_at") == chosen.astimezone(NEW_YORK).strftime("%Y-%m-%dT%H:%M")
    expect(page.get_by_test_id("picked")).to_contain_text("Picked:")
    page.fill("#id_title", "Career chat")
    screenshot(page, "booking-picker", full_page=True)

    page.get_by_test_id("book-and-pay").click()
    page.wait_for_selector("#cardnumber")
    local = chosen.astimezone(NEW_YORK)
    when = f"{local:%a} {local.day} {local:%b %Y}, {local:%H:%M}\u2013{local + timedelta(hours=1):%H:%M} (America/New_York)"
    expect(page.get_by_test_id("line-item")).to_contain_text(f"Ada Lovelace: Career chat \u2014 {when}, 60 min")
    assert User.objects.get(pk=mentee.pk).time_zone == "America/New_York"  # the zone the form was filled in
    pay(page, "4242 4242 4242 4242")
    page.get_by_test_id("checkout-status-text").filter(has_text="Booked!").wait_for()
    assert Session.objects.get(mentee=mentee).scheduled_at == chosen
    booked = wait_for(lambda: [m for m in mail.outbox if m.to == [mentee.email] and "booked" in m.subject],
                      message="confirmation")
    assert when in booked[0].body  # the email speaks the mentee's local time too
    assert page.offsite == []


def test_booking_errors_are_in_the_users_words(stack, browser_page):
    page, base = browser_page, stack.url
    mentor = make_mentor(name="Ada Lovelace")
    log_in(page, base, make_user().email)
    page.goto(f"{base}/mentors/{mentor.pk}")
    type_start(page, timezone.now() + timedelta(minutes=70))
    page.fill("#id_title", "Career chat")
    page.get_by_test_id("book-and-pay").click()
    expect(page.get_by_test_id("error-scheduled_at")).to_have_text("Pick a time at least 2 hours from now.")

    type_start(page, timezone.now() + timedelta(days=120))
    page.get_by_test_id("book-and-pay").click()
    expect(page.get_by_test_id("error-scheduled_at")).to_have_text("Pick a time within the next 90 days.")
    page.fill("#id_title", "")
    page.fill("#id_scheduled_at", "")
    page.get_by_test_id("book-and-pay").click()
    expect(page.get_by_test_id("error-title")).to_have_text("Give the session a title.")
    expect(page.get_by_test_id("error-scheduled_at")).to_have_text("Pick a date and time.")
    assert "scheduled_at" not in page.locator("main").inner_text()
    assert not Checkout.objects.exists()


def test_a_mentor_on_their_own_profile_is_not_offered_the_booking_form(stack, browser_page):
    page, base = browser_page, stack.url
    mentor = make_mentor(name="Ada Lovelace")
    log_in(page, base, mentor.user.email)
    page.goto(f"{base}/mentors/{mentor.pk}")
    expect(page.get_by_test_id("own-profile")).to_contain_text("This is your own profile")
    expect(page.get_by_test_id("book-and-pay")).to_have_count(0)
    expect(page.get_by_test_id("slot-picker")).to_have_count(0)


def test_a_declined_card_keeps_the_card_number_on_the_payment_page(stack, browser_page):
    page, base = browser_page, stack.url
    mentor = make_mentor(name="Ada Lovelace")
    log_in(page, base, make_user().email)
    page.goto(f"{base}/mentors/{mentor.pk}")
    type_start(page, datetime.fromisoformat(future_slot(days=3)))
    book_form(page)
    pay(page, "4000 0000 0000 0002")
    expect(page.get_by_test_id("payment-error")).to_have_text("Your card was declined.")
    assert page.input_value("#cardnumber") == "4000 0000 0000 0002"
    assert page.input_value("#name") == "Mentee Example"


# --- Holds ----------------------------------------------------------------------------------


def test_a_hold_can_be_cancelled_from_the_return_page_and_my_sessions(stack, stripe_sandbox, browser_page, settings):
    settings.MAX_OPEN_HOLDS = 1
    page, base = browser_page, stack.url
    mentor = make_mentor(name="Ada Lovelace")
    mentee = make_user()
    log_in(page, base, mentee.email)
    page.goto(f"{base}/mentors/{mentor.pk}")
    type_start(page, datetime.fromisoformat(future_slot(days=3)))
    book_form(page)
    first = Checkout.objects.get(mentee=mentee)
    page.get_by_test_id("cancel").click()  # "Cancel and return" on Stripe's page
    page.wait_for_url(re.compile(r"\?canceled=true"))
    expect(page.get_by_test_id("canceled-notice")).to_contain_text("still yours")
    expect(page.get_by_test_id("cancel-hold")).to_be_visible()

    type_start(page, datetime.fromisoformat(future_slot(days=5)))
    page.fill("#id_title", "Another chat")
    page.get_by_test_id("book-and-pay").click()
    expect(page.get_by_test_id("form-error")).to_contain_text("You already have 1 bookings waiting for payment")
    expect(page.get_by_role("link", name="See the bookings waiting for payment")).to_be_visible()

    # The return page of an unpaid Checkout does not claim a payment was received.
    page.goto(f"{base}/sessions?success=true&session_id={first.stripe_checkout_session_id}")
    status = page.get_by_test_id("checkout-status-text")
    expect(status).to_contain_text("Not paid yet")
    assert "Payment received" not in status.inner_text()
    expect(page.get_by_test_id("holds")).to_contain_text("Career chat")
    page.get_by_test_id("open-actions").get_by_test_id("cancel-hold").click()
    expect(page.get_by_role("status").first).to_contain_text("Hold released")
    expect(page.get_by_test_id("holds")).to_have_count(0)
    assert Checkout.objects.get(pk=first.pk).status == "expired"
    assert stripe_sandbox.stripe_client().v1.checkout.sessions.retrieve(first.stripe_checkout_session_id).status \
        == "expired"

    page.goto(f"{base}/mentors/{mentor.pk}")  # the place is free again
    type_start(page, datetime.fromisoformat(future_slot(days=5)))
    book_form(page, "Another chat")
    assert page.offsite == []


def test_checkout_returns_to_the_address_i_booked_on_when_frontend_url_is_unset(stack, browser_page, settings):
    settings.FRONTEND_URL = ""
    page = browser_page
    base = stack.url.replace("localhost", "127.0.0.1")  # not the address any setting names
    mentor = make_mentor(name="Ada Lovelace")
    log_in(page, base, make_user().email)
    booked_through_the_pages(page, base, mentor.pk, datetime.fromisoformat(future_slot(days=3)), "4242 4242 4242 4242")
    assert page.url.startswith(f"{base}/sessions?success=true&session_id=cs_")


# --- After paying: disputes and refunds -----------------------------------------------------


def test_a_disputed_payment_is_marked_and_offers_no_cancel(stack, browser_page):
    page, base = browser_page, stack.url
    mentor = make_mentor(name="Ada Lovelace", hourly_rate=13000)
    mentee = make_user()
    log_in(page, base, mentee.email)
    session = booked_through_the_pages(page, base, mentor.pk, datetime.fromisoformat(future_slot(days=4)), DISPUTED_LATER)
    wait_for(lambda: Session.objects.filter(pk=session.pk, is_disputed=True).exists(), message="dispute recorded")

    page.goto(f"{base}/sessions")
    row = page.get_by_test_id("session-row").filter(has_text="Career chat")
    expect(row.get_by_test_id("payment-status")).to_have_text("Paid \u00b7 under dispute")
    expect(row.get_by_test_id("dispute-note")).to_contain_text("Payment under dispute")
    expect(row.get_by_role("link", name="Cancel")).to_have_count(0)
    page.goto(f"{base}/sessions/{session.pk}/cancel")
    expect(page.get_by_test_id("refund-policy")).to_contain_text("under dispute at the bank")
    expect(page.get_by_test_id("confirm-cancel")).to_have_count(0)
    assert "You will get" not in page.locator("main").inner_text()


def test_a_refund_that_fails_later_is_followed_live_explained_and_announced_when_retried(stack, stripe_sandbox,
                                                                                        browser_page, screenshot):
    page, base = browser_page, stack.url
    mentor = make_mentor(name="Grace Hopper", hourly_rate=5000, currency="eur")
    mentee = make_user(email="mia@example.test", name="Mia Mentee")
    log_in(page, base, mentee.email)
    session = booked_through_the_pages(page, base, mentor.pk, datetime.fromisoformat(future_slot(days=4)), FAILS_LATER)

    page.goto(f"{base}/sessions")
    page.get_by_test_id("session-row").filter(has_text="Career chat").get_by_role("link", name="Cancel").click()
    expect(page.get_by_test_id("cancel-summary")).to_contain_text("With Grace Hopper")
    page.fill("#reason", "My team moved the release; sorry!")
    stripe_sandbox.set_api_faults(latency_ms=2500, path_prefix="/v1/refunds")  # Stripe takes its time
    try:
        page.get_by_test_id("confirm-cancel").click()
        page.wait_for_url(f"{base}/sessions")
        expect(page.get_by_role("status").first).to_contain_text("A refund of 50.00 EUR is requested")
        refund_cell = page.get_by_test_id("session-row").filter(has_text="Career chat").get_by_test_id("refund-state")
        expect(refund_cell).to_have_text("Refund of 50.00 EUR requested; waiting for Stripe to confirm")
    finally:
        stripe_sandbox.set_api_faults(latency_ms=0)
    # No reload: the page follows the refund until Stripe confirms it.
    expect(refund_cell).to_have_text("Refunded 50.00 EUR", timeout=30_000)

    stripe_sandbox.advance_clock(31)  # the card's bank refuses the refund
    failed = wait_for(lambda: Refund.objects.filter(session=session, status="failed").first(), message="refund failed")
    page.reload()
    row = page.get_by_test_id("session-row").filter(has_text="Career chat")
    expect(row.get_by_test_id("refund-state")).to_contain_text(
        "Refund of 50.00 EUR did not go through: the card it was going back to is closed or has expired.")
    expect(row.get_by_test_id("refund-state")).to_contain_text("we will email you")
    expect(row.get_by_test_id("payment-status")).to_have_text("Paid")
    expect(row.get_by_test_id("cancel-reason")).to_contain_text("My team moved the release; sorry!")
    screenshot(page, "sessions-after-a-failed-refund", full_page=True)
    wait_for(lambda: [m for m in mail.outbox if m.to == [mentee.email] and "did not go through" in m.subject],
             message="the mentee is told the refund failed")

    staff = get_user_model().objects.create_superuser(email="staff@example.test", password="x-admin-pass-1", name="S")
    assert refunds_retry(refund_ids=[failed.pk], staff=staff) == 1
    wait_for(lambda: [m for m in mail.outbox if m.to == [mentee.email] and "Refund sent again" in m.subject],
             message="the mentee is told the retry went through")
    page.reload()
    expect(page.get_by_test_id("session-row").filter(has_text="Career chat").get_by_test_id("refund-state")) \
        .to_have_text("Refunded 50.00 EUR")  # the newest refund, not the failed one
    mentor_mail = [m for m in mail.outbox if m.to == [mentor.user.email] and "cancelled" in m.subject]
    assert "My team moved the release; sorry!" in mentor_mail[0].body  # the reason reaches the other party
    assert page.offsite == []


# --- Admin ------------------------------------------------------------------------------------


def test_the_admin_refund_asks_for_confirmation_and_a_reason_and_logs_it(stack, stripe_sandbox, browser_page, client,
                                                                         screenshot):
    page, base = browser_page, stack.url
    mentor = make_mentor(name="Ada Lovelace", hourly_rate=13000)
    mentee = make_user(email="mia@example.test", name="Mia Mentee")
    session = paid_session(client, stripe_sandbox, mentee, mentor, title="Career chat", scheduled_at=future_slot(days=6))
    get_user_model().objects.create_superuser(email="staff@example.test", password="x-admin-pass-1", name="Staff")

    page.goto(f"{base}/admin/login/?next=/admin/backend/session/")
    page.fill("#id_username", "staff@example.test")
    page.fill("#id_password", "x-admin-pass-1")
    page.locator("input[type=submit]").click()
    page.wait_for_url(re.compile(r"/admin/backend/session/$"))
    expect(page.locator("#result_list")).to_contain_text("130.00 USD")
    assert "13000" not in page.locator("#result_list").inner_text()

    page.locator(f"input[name=_selected_action][value='{session.pk}']").check()
    page.select_option("select[name=action]", "refund_sessions")
    page.get_by_role("button", name="Go").click()
    expect(page.locator("h1")).to_have_text("Refund the selected sessions?")
    expect(page.get_by_test_id("refund-amount")).to_have_text("130.00 USD")
    expect(page.get_by_test_id("refund-total")).to_have_text("130.00 USD")
    assert Session.objects.get(pk=session.pk).status == "scheduled"  # nothing happened yet
    screenshot(page, "admin-refund-confirmation", full_page=True)

    page.locator("#refund-reason").evaluate("el => el.removeAttribute('required')")  # the server checks it too
    page.get_by_test_id("confirm-refund").click()
    expect(page.get_by_test_id("reason-error")).to_contain_text("Give a reason")
    assert not Refund.objects.filter(session=session).exists()

    page.fill("#refund-reason", "The mentor fell ill; refunded in full as agreed by phone.")
    page.get_by_test_id("confirm-refund").click()
    page.wait_for_url(re.compile(r"/admin/backend/session/$"))
    expect(page.locator(".messagelist")).to_contain_text("1 refund(s) started")
    wait_for(lambda: Refund.objects.filter(session=session, status="succeeded").exists(), message="refunded")
    entry = LogEntry.objects.get(object_id=str(session.pk))
    assert "130.00 USD requested" in entry.get_change_message()
    assert "The mentor fell ill; refunded in full as agreed by phone." in entry.get_change_message()

    page.goto(f"{base}/admin/admin/logentry/")  # the README's link to the admin log
    expect(page.locator("#result_list")).to_contain_text("The mentor fell ill")
    told = wait_for(lambda: [m for m in mail.outbox if m.to == [mentee.email] and "cancelled" in m.subject],
                    message="the mentee is told")
    assert "Our support team cancelled it." in told[0].body and "The mentor fell ill" in told[0].body


# --- Phones -----------------------------------------------------------------------------------


def test_every_page_fits_a_390px_phone_and_tables_become_cards(stack, stripe_sandbox, phone_page, client, screenshot):
    page, base = phone_page, stack.url
    mentor = make_mentor(name="Ada Lovelace", hourly_rate=12000, headline="Compilers, careers and code review")
    every_day(mentor, time(0), time(23, 59))
    mentee = make_user(email="a.rather.long.address.for.a.phone@example.test", name="Mia Mentee")
    booked = paid_session(client, stripe_sandbox, mentee, mentor, title="From junior to senior: a plan for the year",
                          scheduled_at=future_slot(days=5))
    cancelled = make_session(mentor=mentor, mentee=mentee, title="Career chat", status="cancelled",
                             cancelled_by="mentee", cancel_reason="Plans changed")
    Refund.objects.create(session=cancelled, amount=cancelled.amount, currency="usd", status="failed",
                          stripe_refund_id="re_phone", failure_reason="expired_or_canceled_card")
    Checkout.objects.create(mentee=mentee, mentor=mentor, title="Waiting chat", scheduled_at=booked.scheduled_at
                            + timedelta(days=1), duration_minutes=60, ends_at=booked.ends_at + timedelta(days=1),
                            amount=12000, currency="usd", stripe_checkout_session_id="cs_test_phone_hold",
                            checkout_url=f"{stripe_sandbox.api_base}/c/pay/cs_test_phone_hold",
                            expires_at=timezone.now() + timedelta(minutes=25))

    def fits(path: str, wait_for_testid: str | None = None) -> None:
        page.goto(f"{base}{path}")
        if wait_for_testid:
            page.get_by_test_id(wait_for_testid).first.wait_for()
        width = page.evaluate("Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)")
        assert width <= 390, f"{path} is {width} px wide on a 390 px phone"

    for path in ("/mentors", "/login", "/register", "/mentors/999999"):
        fits(path)
    log_in(page, base, mentee.email)
    fits(f"/mentors/{mentor.pk}", "slot-time")
    fits(f"/mentors/{mentor.pk}?canceled=true")
    fits("/sessions", "session-row")
    row = page.get_by_test_id("session-row").filter(has_text="From junior to senior")
    screenshot(page, "sessions-on-a-phone", full_page=True)
    assert row.evaluate("el => getComputedStyle(el).display") == "block"  # a card, not a table row
    when = row.locator("td[data-label=When]").bounding_box()
    line = row.locator("td[data-label=When]").evaluate("el => parseFloat(getComputedStyle(el).lineHeight)")
    assert when["height"] <= 2 * line + 4, f"'When' takes {when['height']} px"
    fits(f"/sessions?success=true&session_id={booked.stripe_checkout_session_id}")
    fits(f"/sessions/{booked.pk}/cancel")
    fits(f"/sessions/{cancelled.pk}/cancel")

    get_user_model().objects.create_superuser(email="staff@example.test", password="x-admin-pass-1", name="Staff")
    page.goto(f"{base}/admin/login/?next=/admin/backend/session/")
    page.fill("#id_username", "staff@example.test")
    page.fill("#id_password", "x-admin-pass-1")
    page.locator("input[type=submit]").click()
    page.wait_for_url(re.compile(r"/admin/backend/session/$"))
    page.locator(f"input[name=_selected_action][value='{booked.pk}']").check()
    page.select_option("select[name=action]", "refund_sessions")
    page.get_by_role("button", name="Go").click()
    expect(page.get_by_test_id("refund-amount")).to_have_text("120.00 USD")
    width = page.evaluate("Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)")
    assert width <= 390, f"the admin refund confirmation is {width} px wide"
    assert page.offsite == []
