"""Screenshots of the mentor's pages, the account page and the reschedule and cancel pages, as a
newcomer sees them, in Chromium. `make screenshots` writes them to docs/screenshots/ (README shows
them); in `make test` they go to a temporary directory, so the pages are still rendered and checked."""
import os
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from backend.models import BlockedDate, Mentor, Session, SessionReschedule, User, WeeklyAvailability
from tests.factories import make_mentor, make_session, make_user
from tests.web.test_browser_flow import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NEW_YORK = ZoneInfo("America/New_York")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def in_new_york(days: int, hour: int) -> datetime:
    day = (timezone.now().astimezone(NEW_YORK) + timedelta(days=days)).date()
    return datetime.combine(day, time(hour), tzinfo=NEW_YORK)


def booked(mentor, mentee, title: str, start: datetime, **fields) -> Session:
    return make_session(mentor=mentor, mentee=mentee, title=title, scheduled_at=start,
                        ends_at=start + timedelta(hours=1), **fields)


def a_mentors_week():
    """Ada in New York with weekly hours, a day off and bookings; Kavya in Kolkata, her mentee."""
    mentor = make_mentor(name="Ada Lovelace", hourly_rate=12000, headline="Analytical engines and clean Python")
    Mentor.objects.filter(pk=mentor.pk).update(schedule_time_zone="America/New_York",
                                               bio="Ten years of Python at scale; I help juniors become seniors.")
    User.objects.filter(pk=mentor.user_id).update(time_zone="America/New_York")
    for weekday in range(5):
        WeeklyAvailability.objects.create(mentor=mentor, weekday=weekday, start_time="09:00", end_time="12:00")
        WeeklyAvailability.objects.create(mentor=mentor, weekday=weekday, start_time="14:00", end_time="17:00")
    WeeklyAvailability.objects.create(mentor=mentor, weekday=4, start_time="22:00", end_time="01:00")
    BlockedDate.objects.create(mentor=mentor, date=in_new_york(9, 0).date())
    kavya = make_user(name="Kavya Rao", email="kavya@example.test")
    User.objects.filter(pk=kavya.pk).update(time_zone="Asia/Kolkata")
    sam, lee = make_user(name="Sam Okafor"), make_user(name="Lee Chen")
    career = booked(mentor, kavya, "Career chat: junior to senior", in_new_york(4, 9), cancellation_policy=[
        {"min_hours_before": 24, "refund_percent": 100}, {"min_hours_before": 2, "refund_percent": 50}])
    moved = booked(mentor, sam, "Code review of my Django app", in_new_york(5, 14), reschedule_count=1)
    SessionReschedule.objects.create(session=moved, previous_scheduled_at=in_new_york(3, 14),
                                     previous_ends_at=in_new_york(3, 15), scheduled_at=moved.scheduled_at,
                                     ends_at=moved.ends_at, requested_by=sam, by_mentor=False)
    booked(mentor, lee, "System design mock interview", in_new_york(6, 10))
    booked(mentor, lee, "Salary negotiation", in_new_york(7, 15), status="cancelled", payment_status="refunded",
           refunded_amount=12000)
    booked(mentor, sam, "First steps in Python", in_new_york(-6, 9), status="completed")
    return mentor, kavya, career


def test_screenshots_of_the_new_pages(live_server, browser_in, tmp_path):
    out = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    mentor, kavya, career = a_mentors_week()
    newcomer = make_mentor(name="Grace Hopper")
    shots = []

    def shoot(page, path: str, name: str):
        page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("networkidle")
        page.screenshot(path=out / name, full_page=True)
        shots.append(name)

    ada = browser_in("America/New_York", viewport={"width": 1280, "height": 800})
    log_in(ada, live_server.url, mentor.user.email)
    shoot(ada, "/mentor/bookings", "mentor-bookings.png")
    shoot(ada, "/mentor/bookings?when=past", "mentor-bookings-past.png")
    shoot(ada, "/mentor/availability", "mentor-availability.png")
    shoot(ada, "/mentor/profile", "mentor-profile.png")
    shoot(ada, f"/sessions/{career.pk}/reschedule", "reschedule-as-mentor.png")

    grace = browser_in("Europe/London", viewport={"width": 1280, "height": 800})
    log_in(grace, live_server.url, newcomer.user.email)
    shoot(grace, "/mentor/bookings", "mentor-bookings-empty.png")

    mentee = browser_in("Asia/Kolkata", viewport={"width": 1280, "height": 800})
    log_in(mentee, live_server.url, kavya.email)
    shoot(mentee, "/account", "account-time-zone.png")
    shoot(mentee, f"/sessions/{career.pk}/reschedule", "reschedule.png")
    shoot(mentee, f"/sessions/{career.pk}/cancel", "cancel-policy.png")
    assert "a full refund" in mentee.get_by_test_id("refund-policy").inner_text()

    for name in shots:
        content = (out / name).read_bytes()
        assert content.startswith(PNG_MAGIC) and len(content) > 10_000, name
    assert ada.offsite == [] and mentee.offsite == [] and grace.offsite == []
