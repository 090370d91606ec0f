"""The mentor's pages, the account page and the reschedule page, with Django's test client."""
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.utils import timezone

from backend.models import BlockedDate, Mentor, Session, User, WeeklyAvailability
from tests.factories import PASSWORD, make_mentor, make_session, make_user

pytestmark = pytest.mark.django_db

NEW_YORK = ZoneInfo("America/New_York")


def signed_in(user) -> Client:
    browser = Client()
    browser.force_login(user)
    return browser


def in_zone(user, name: str):
    User.objects.filter(pk=user.pk).update(time_zone=name)
    user.refresh_from_db()
    return user


def test_the_navigation_links_the_mentor_pages_for_mentors_only():
    mentor_nav = signed_in(make_mentor().user).get("/mentors").content.decode()
    for path in ("/mentor/bookings", "/mentor/availability", "/mentor/profile", "/account"):
        assert f'href="{path}"' in mentor_nav
    mentee_nav = signed_in(make_user()).get("/mentors").content.decode()
    assert 'href="/mentor/bookings"' not in mentee_nav and 'href="/account"' in mentee_nav


@pytest.mark.parametrize("path", ["/mentor/bookings", "/mentor/availability", "/mentor/profile"])
def test_mentor_pages_are_for_mentors(client, path):
    assert client.get(path)["Location"].startswith("/login?next=")
    refused = signed_in(make_user()).get(path)
    assert refused.status_code == 403 and "This page is for mentors" in refused.content.decode()


def test_bookings_list_upcoming_soonest_first_and_past_latest_first_in_the_mentors_zone():
    mentor = make_mentor(name="Ada")
    in_zone(mentor.user, "America/New_York")
    mentee = make_user(name="Mia Mentee")
    start = (timezone.now() + timedelta(days=3)).astimezone(UTC).replace(hour=15, minute=0, second=0, microsecond=0)
    later = make_session(mentor=mentor, mentee=mentee, title="Later chat", scheduled_at=start + timedelta(days=2),
                         ends_at=start + timedelta(days=2, hours=1))
    sooner = make_session(mentor=mentor, mentee=mentee, title="Sooner chat", scheduled_at=start,
                          ends_at=start + timedelta(hours=1))
    make_session(mentor=mentor, mentee=mentee, title="Old chat", starts_in=-timedelta(days=3), status="completed")
    browser = signed_in(mentor.user)

    html = browser.get("/mentor/bookings").content.decode()
    assert html.index("Sooner chat") < html.index("Later chat") and "Old chat" not in html
    local = sooner.scheduled_at.astimezone(NEW_YORK)
    assert f"{local:%H:%M}-" in html and "(America/New_York)" in html and "Mia Mentee" in html
    assert f"/sessions/{sooner.pk}/reschedule" in html and f"/sessions/{later.pk}/cancel" in html
    past = browser.get("/mentor/bookings", {"when": "past"}).content.decode()
    assert "Old chat" in past and "Sooner chat" not in past


def test_bookings_pages_are_paginated_and_say_what_to_do_when_empty():
    mentor = make_mentor()
    browser = signed_in(mentor.user)
    empty = browser.get("/mentor/bookings").content.decode()
    assert 'data-testid="empty-bookings"' in empty and "Set your availability" in empty
    WeeklyAvailability.objects.create(mentor=mentor, weekday=0, start_time="09:00", end_time="12:00")
    assert "weekly hours" in browser.get("/mentor/bookings").content.decode()
    assert "No past sessions yet" in browser.get("/mentor/bookings", {"when": "past"}).content.decode()

    for n in range(23):
        make_session(mentor=mentor, mentee=make_user(), starts_in=timedelta(days=2, hours=2 * n))
    first = browser.get("/mentor/bookings").content.decode()
    assert first.count('data-testid="booking-row"') == 20 and "Page 1 of 2" in first
    assert browser.get("/mentor/bookings", {"page": 2}).content.decode().count('data-testid="booking-row"') == 3


def hours_form(rows, time_zone="America/New_York", initial=0):
    data = {"action": "hours", "time_zone": time_zone, "windows-TOTAL_FORMS": str(len(rows)),
            "windows-INITIAL_FORMS": str(initial), "windows-MIN_NUM_FORMS": "0", "windows-MAX_NUM_FORMS": "50"}
    for index, row in enumerate(rows):
        for key, value in row.items():
            data[f"windows-{index}-{key}"] = value
    return data


def test_the_availability_page_saves_local_hours_and_days_off_and_keeps_booked_sessions():
    mentor = make_mentor()
    in_zone(mentor.user, "America/New_York")
    booked = make_session(mentor=mentor, mentee=make_user(name="Kept Mentee"), title="Kept chat",
                          starts_in=timedelta(days=4))
    browser = signed_in(mentor.user)
    page = browser.get("/mentor/availability").content.decode()
    assert 'value="America/New_York" selected' in page  # a first schedule goes into the mentor's zone

    saved = browser.post("/mentor/availability", hours_form([
        {"weekday": "0", "start_time": "09:00", "end_time": "12:00"},
        {"weekday": "4", "start_time": "22:00", "end_time": "02:00"},  # across midnight
        {"weekday": "", "start_time": "", "end_time": ""},  # an empty row is ignored
    ]), follow=True)
    assert "Weekly hours saved" in saved.content.decode()
    mentor = Mentor.objects.get(pk=mentor.pk)
    assert mentor.schedule_time_zone == "America/New_York"
    assert sorted((w.weekday, w.start_time, w.end_time) for w in mentor.weekly_availability.all()) == [
        (0, time(9), time(12)), (4, time(22), time(2))]

    day_off = booked.scheduled_at.astimezone(NEW_YORK).date()
    blocked = browser.post("/mentor/availability", {"action": "block", "date": day_off.isoformat()}, follow=True)
    assert "is blocked" in blocked.content.decode()
    assert list(BlockedDate.objects.filter(mentor=mentor).values_list("date", flat=True)) == [day_off]
    assert Session.objects.get(pk=booked.pk).status == "scheduled"  # a booked session is never removed
    preview = browser.get("/mentor/availability", {"from": day_off.isoformat()}).content.decode()
    assert "Kept chat" in preview and "Kept Mentee" in preview

    browser.post("/mentor/availability", {"action": "unblock", "date": day_off.isoformat()})
    assert not BlockedDate.objects.filter(mentor=mentor).exists()
    removed = browser.post("/mentor/availability", hours_form([
        {"weekday": "0", "start_time": "09:00", "end_time": "12:00", "DELETE": "on"},
        {"weekday": "4", "start_time": "22:00", "end_time": "02:00"},
    ], initial=2))
    assert removed.status_code == 302
    assert list(mentor.weekly_availability.values_list("weekday", flat=True)) == [4]


def test_a_bad_row_on_the_availability_page_is_shown_and_nothing_changes():
    mentor = make_mentor()
    WeeklyAvailability.objects.create(mentor=mentor, weekday=2, start_time="09:00", end_time="12:00")
    response = signed_in(mentor.user).post("/mentor/availability", hours_form([
        {"weekday": "1", "start_time": "25:00", "end_time": "12:00"}]))
    assert response.status_code == 422 and "Enter a valid time" in response.content.decode()
    assert list(mentor.weekly_availability.values_list("weekday", flat=True)) == [2]


def test_the_preview_shows_what_mentees_can_book_in_the_mentors_local_time():
    mentor = make_mentor()
    in_zone(mentor.user, "America/New_York")
    Mentor.objects.filter(pk=mentor.pk).update(schedule_time_zone="America/New_York")
    for weekday in range(7):
        WeeklyAvailability.objects.create(mentor=mentor, weekday=weekday, start_time="09:00", end_time="12:00")
    first_day = (timezone.now().astimezone(NEW_YORK) + timedelta(days=3)).date()
    BlockedDate.objects.create(mentor=mentor, date=first_day + timedelta(days=1))
    taken = datetime.combine(first_day + timedelta(days=2), time(10), tzinfo=NEW_YORK)
    make_session(mentor=mentor, mentee=make_user(), scheduled_at=taken, ends_at=taken + timedelta(hours=1))

    html = signed_in(mentor.user).get("/mentor/availability", {"from": first_day.isoformat()}).content.decode()
    days = html.split('data-testid="preview-day"')[1:]
    assert f'data-date="{first_day.isoformat()}"' in days[0] and "09:00-12:00 E" in days[0]
    assert f'data-date="{(first_day + timedelta(days=2)).isoformat()}"' in days[1]  # the day off is left out
    assert "09:00-10:00 E" in days[1] and "11:00-12:00 E" in days[1]  # the booked hour is taken out
    assert len(days) == 13


def test_the_profile_page_edits_name_rate_and_currency_in_major_units():
    mentor = make_mentor(name="Ada", hourly_rate=12000, currency="usd")
    browser = signed_in(mentor.user)
    page = browser.get("/mentor/profile").content.decode()
    assert 'value="120.00"' in page and "120.00 USD" in page

    saved = browser.post("/mentor/profile", {"name": "Ada L.", "headline": "Engines", "bio": "Hello",
                                             "hourly_rate": "95.50", "currency": "eur"})
    assert saved.status_code == 302
    mentor.refresh_from_db()
    assert (mentor.name, mentor.headline, mentor.hourly_rate, mentor.currency) == ("Ada L.", "Engines", 9550, "eur")
    yen = browser.post("/mentor/profile", {"name": "Ada", "hourly_rate": "12000", "currency": "jpy"})
    assert yen.status_code == 302 and Mentor.objects.get(pk=mentor.pk).hourly_rate == 12000
    for bad in ("12.5", "-3", "free", "0"):
        refused = browser.post("/mentor/profile", {"name": "Ada", "hourly_rate": bad, "currency": "jpy"})
        assert refused.status_code == 422 and 'data-testid="error-hourly_rate"' in refused.content.decode(), bad
    assert Mentor.objects.get(pk=mentor.pk).hourly_rate == 12000


def test_the_account_page_sets_the_time_zone_that_pages_use():
    user = make_user(name="Kavya")
    browser = signed_in(user)
    assert 'data-testid="current-time-zone">UTC<' in browser.get("/account").content.decode()
    saved = browser.post("/account", {"name": "Kavya", "time_zone": "Asia/Kolkata"}, follow=True)
    assert "Asia/Kolkata" in saved.content.decode()
    assert User.objects.get(pk=user.pk).time_zone == "Asia/Kolkata"
    refused = browser.post("/account", {"name": "Kavya", "time_zone": "Mars/Olympus_Mons"})
    assert refused.status_code == 422 and 'data-testid="error-time_zone"' in refused.content.decode()
    assert User.objects.get(pk=user.pk).time_zone == "Asia/Kolkata"


def test_registration_keeps_the_browsers_time_zone_and_falls_back_to_utc():
    assert Client().post("/register", {"name": "K", "email": "k@example.test", "password": PASSWORD,
                                       "time_zone": "Asia/Kolkata"}).status_code == 302
    assert User.objects.get(email="k@example.test").time_zone == "Asia/Kolkata"
    assert Client().post("/register", {"name": "L", "email": "l@example.test", "password": PASSWORD,
                                       "time_zone": "Nowhere/Else"}).status_code == 302
    assert User.objects.get(email="l@example.test").time_zone == "UTC"


def test_the_reschedule_page_offers_free_times_in_the_readers_zone_and_moves_the_session():
    mentor, mentee = make_mentor(name="Ada"), in_zone(make_user(), "Asia/Kolkata")
    start = (timezone.now() + timedelta(days=3)).astimezone(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
    session = make_session(mentor=mentor, mentee=mentee, title="Career chat", scheduled_at=start,
                           ends_at=start + timedelta(hours=1))
    WeeklyAvailability.objects.create(mentor=mentor, weekday=(start + timedelta(days=1)).weekday(),
                                      start_time="13:00", end_time="15:00")  # UTC: 18:30-20:30 in Kolkata
    browser = signed_in(mentee)

    page = browser.get(f"/sessions/{session.pk}/reschedule").content.decode()
    assert "The payment carries over" in page and "(Asia/Kolkata)" in page
    assert "18:30 IST" in page and "19:00 IST" in page and "19:30 IST" in page and "20:00 IST" not in page
    new_start = (start + timedelta(days=1)).replace(hour=13, minute=30)
    moved = browser.post(f"/sessions/{session.pk}/reschedule", {"scheduled_at": new_start.isoformat()})
    assert moved.status_code == 302 and moved["Location"] == "/sessions"
    assert Session.objects.get(pk=session.pk).scheduled_at == new_start

    taken = browser.post(f"/sessions/{session.pk}/reschedule", {"scheduled_at": (new_start + timedelta(hours=9)).isoformat()})
    assert taken.status_code == 422 and "not available at that time" in taken.content.decode()
    assert signed_in(make_user()).get(f"/sessions/{session.pk}/reschedule").status_code == 404


def test_the_reschedule_page_says_why_a_move_is_not_possible(settings):
    settings.RESCHEDULE_NOTICE_HOURS = 24
    mentor, mentee = make_mentor(), make_user()
    soon = make_session(mentor=mentor, mentee=mentee, starts_in=timedelta(hours=10))
    refused = signed_in(mentee).get(f"/sessions/{soon.pk}/reschedule").content.decode()
    assert 'data-testid="reschedule-refused"' in refused and "24 hours" in refused
    assert 'data-testid="confirm-reschedule"' not in refused
    as_mentor = signed_in(mentor.user).get(f"/sessions/{soon.pk}/reschedule").content.decode()
    assert "As the mentor you can always move it" in as_mentor and 'data-testid="reschedule-refused"' not in as_mentor


@pytest.mark.parametrize("value", ["garbage", "2026-13-45", "9999-12-31", "0001-01-01", ""])
def test_a_date_a_page_cannot_use_shows_the_default_weeks(value):
    mentor, mentee = make_mentor(), make_user()
    session = make_session(mentor=mentor, mentee=mentee, starts_in=timedelta(days=5))
    assert signed_in(mentor.user).get("/mentor/availability", {"from": value}).status_code == 200
    assert signed_in(mentee).get(f"/sessions/{session.pk}/reschedule", {"from": value}).status_code == 200
    unblock = signed_in(mentor.user).post("/mentor/availability", {"action": "unblock", "date": value})
    assert unblock.status_code == 302
