"""Two people in two time zones, in Chromium: a mentor in America/New_York sets weekly hours
around a daylight-saving change; a mentee in Asia/Kolkata registers, books and pays a slot
before the change, then moves it to one after it (the payment carries over: one charge at
the sandbox, both calendars' invites keep their UID with a higher SEQUENCE); the mentor
cancels and the mentee gets a full refund. Skipped, loudly, where /usr/bin/chromium is missing."""
import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.utils import timezone
from icalendar import Calendar

from backend.models import Refund, Session, User
from tests.factories import make_mentor
from tests.polling import wait_for
from tests.web.test_browser_flow import log_in, pay

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NEW_YORK, KOLKATA = ZoneInfo("America/New_York"), ZoneInfo("Asia/Kolkata")


def next_dst_change(tz: ZoneInfo, *, after: date) -> date:
    """The first day after `after` whose noon has another UTC offset than the day before's."""
    day = after
    while True:
        before = datetime.combine(day, time(12), tzinfo=tz).utcoffset()
        day += timedelta(days=1)
        if datetime.combine(day, time(12), tzinfo=tz).utcoffset() != before:
            return day


def nav(page):
    return page.get_by_role("navigation", name="Main")


def invites(subject: str) -> dict[str, object]:
    """Each recipient's calendar event from the emails with this subject."""
    found = {}
    for message in mail.outbox:
        if message.subject == subject:
            content = next(a.content for a in message.attachments if a.filename == "invite.ics")
            (found[message.to[0]],) = Calendar.from_ical(content).events
    return found


def test_two_time_zones_a_dst_change_a_move_without_a_second_charge_and_a_mentor_cancel(
        stack, stripe_sandbox, browser_in, settings):
    settings.BOOKING_MAX_DAYS_AHEAD = 400  # the next change may be months away
    base = stack.url
    mentor = make_mentor(name="Ada Lovelace", hourly_rate=12000)
    change = next_dst_change(NEW_YORK, after=timezone.now().date() + timedelta(days=3))
    before_day, after_day = change - timedelta(days=1), change + timedelta(days=1)
    before_slot = datetime.combine(before_day, time(9), tzinfo=NEW_YORK)
    after_slot = datetime.combine(after_day, time(9), tzinfo=NEW_YORK)

    # --- The mentor, in New York: their zone from the browser, then weekly hours ---------------
    ada = browser_in("America/New_York")
    log_in(ada, base, mentor.user.email)
    nav(ada).get_by_role("link", name="Account").click()
    ada.locator("[data-browser-zone]").click()
    ada.get_by_role("button", name="Save").click()
    ada.get_by_test_id("current-time-zone").filter(has_text="America/New_York").wait_for()
    assert User.objects.get(pk=mentor.user_id).time_zone == "America/New_York"

    nav(ada).get_by_role("link", name="Availability").click()
    for row, day in enumerate((before_day, after_day)):
        ada.select_option(f"#id_windows-{row}-weekday", str(day.weekday()))
        ada.fill(f"#id_windows-{row}-start_time", "09:00")
        ada.fill(f"#id_windows-{row}-end_time", "12:00")
    assert ada.locator("#id_time_zone").input_value() == "America/New_York"
    ada.get_by_test_id("save-hours").click()
    ada.get_by_text("Weekly hours saved").wait_for()
    ada.goto(f"{base}/mentor/availability?from={before_day.isoformat()}")
    preview = {day.get_attribute("data-date"): day.inner_text() for day in ada.get_by_test_id("preview-day").all()}
    # The same wall-clock hours on both sides of the change, under two abbreviations.
    before_zone, after_zone = before_slot.tzname(), after_slot.tzname()
    assert before_zone != after_zone
    assert f"09:00-12:00 {before_zone}" in preview[before_day.isoformat()]
    assert f"09:00-12:00 {after_zone}" in preview[after_day.isoformat()]
    assert change.isoformat() not in preview

    # --- The mentee, in Kolkata: registers (zone from the browser), books, pays ---------------
    kavya = browser_in("Asia/Kolkata")
    kavya.goto(f"{base}/register?next=/mentors/{mentor.pk}")
    kavya.fill("#id_name", "Kavya")
    kavya.fill("#id_email", "kavya@example.test")
    kavya.fill("#id_password", "correct-horse-battery-9")
    kavya.get_by_role("button", name="Register").click()
    kavya.wait_for_url(f"{base}/mentors/{mentor.pk}")
    mentee = User.objects.get(email="kavya@example.test")
    assert mentee.time_zone == "Asia/Kolkata"
    assert "a full refund" in kavya.get_by_test_id("cancellation-policy").inner_text()

    kavya.fill("#id_title", "Career chat")
    kavya.fill("#id_scheduled_at", before_slot.astimezone(KOLKATA).strftime("%Y-%m-%dT%H:%M"))
    kavya.select_option("#id_duration_minutes", "60")
    kavya.get_by_test_id("book-and-pay").click()
    kavya.wait_for_selector("#cardnumber")
    pay(kavya, "4242 4242 4242 4242")
    kavya.wait_for_url(re.compile(re.escape(f"{base}/sessions?success=true&session_id=cs_")))
    kavya.get_by_test_id("checkout-status-text").filter(has_text="Booked!").wait_for()
    session = Session.objects.get(mentee=mentee)
    assert (session.scheduled_at, session.payment_status) == (before_slot, "paid")
    wait_for(lambda: len(invites("Session booked: Career chat")) == 2, message="booking invites")

    # --- The mentee moves it past the change, seeing the mentor's 09:00 in Kolkata time -------
    kavya.get_by_test_id("session-row").filter(has_text="Career chat").get_by_role("link", name="Reschedule").click()
    kavya.get_by_test_id("reschedule-policy").wait_for()
    kavya.goto(f"{kavya.url}?from={after_day.isoformat()}")
    after_option = kavya.locator(f'#id_scheduled_at option[value="{after_slot.astimezone(UTC).isoformat()}"]')
    # 09:00 in New York is 19:30 IST in winter and 18:30 IST in summer: the mentee sees the right one.
    assert after_option.inner_text() == f"{after_slot.astimezone(KOLKATA):%H:%M} IST"
    assert after_slot.astimezone(KOLKATA).time() != before_slot.astimezone(KOLKATA).time()
    kavya.select_option("#id_scheduled_at", after_slot.astimezone(UTC).isoformat())
    kavya.get_by_test_id("confirm-reschedule").click()
    kavya.wait_for_url(f"{base}/sessions")
    assert "is moved" in kavya.get_by_role("status").first.inner_text()
    moved = Session.objects.get(pk=session.pk)
    assert (moved.scheduled_at, moved.ends_at, moved.reschedule_count) == (
        after_slot, after_slot + timedelta(hours=1), 1)

    wait_for(lambda: len(invites("Session moved: Career chat")) == 2, message="updated invites")
    booked, updated = invites("Session booked: Career chat"), invites("Session moved: Career chat")
    for address, zone_name in ((mentee.email, "Asia/Kolkata"), (mentor.user.email, "America/New_York")):
        assert str(updated[address]["uid"]) == str(booked[address]["uid"])
        assert updated[address]["sequence"] > booked[address]["sequence"]
        assert updated[address]["dtstart"].params["TZID"] == zone_name
        assert updated[address]["dtstart"].dt == after_slot
    stripe = stripe_sandbox.stripe_client()
    charges = stripe.v1.charges.list().data
    assert len(charges) == 1 and charges[0].amount == 12000  # no second charge for the move

    # --- The mentor cancels from their bookings: a full refund ---------------------------------
    nav(ada).get_by_role("link", name="My bookings").click()
    row = ada.get_by_test_id("booking-row").filter(has_text="Career chat")
    assert f"09:00-10:00 {after_zone}" in row.get_by_test_id("booking-when").inner_text()
    row.get_by_role("link", name="Cancel").click()
    assert "full refund" in ada.get_by_test_id("refund-policy").inner_text()
    ada.get_by_test_id("confirm-cancel").click()
    ada.wait_for_url(f"{base}/mentor/bookings")
    wait_for(lambda: Session.objects.get(pk=session.pk).payment_status == "refunded", message="refund confirmed")
    assert Refund.objects.get(session=session).amount == 12000
    assert stripe.v1.charges.retrieve(charges[0].id).amount_refunded == 12000
    kavya.reload()
    refunded_row = kavya.get_by_test_id("session-row").filter(has_text="Career chat")
    assert refunded_row.get_by_test_id("payment-status").get_attribute("data-state") == "refunded"
    assert ada.offsite == [] and kavya.offsite == []
