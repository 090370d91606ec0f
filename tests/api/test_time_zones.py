"""Everyone's time zone (User.time_zone), and a mentor's schedule kept in local wall-clock time:
stable across daylight-saving changes, windows across midnight, blocked dates."""
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from backend.models import BlockedDate, Session, User, WeeklyAvailability
from tests.factories import PASSWORD, login, make_mentor, make_session, make_user

pytestmark = pytest.mark.django_db

NEW_YORK = ZoneInfo("America/New_York")
KOLKATA = ZoneInfo("Asia/Kolkata")


def post(client, path, body, **headers):
    return client.post(path, body, content_type="application/json", **headers)


def patch(client, path, body, **headers):
    return client.patch(path, body, content_type="application/json", **headers)


def next_dst_change(tz: ZoneInfo, *, after: date) -> date:
    """The first day after `after` whose noon has another UTC offset than the day before's."""
    day = after
    while True:
        before = datetime.combine(day, time(12), tzinfo=tz).utcoffset()
        day += timedelta(days=1)
        if datetime.combine(day, time(12), tzinfo=tz).utcoffset() != before:
            return day


def intervals(client, mentor, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    response = client.get(f"/api/mentors/{mentor.pk}/availability", {"from": start.isoformat(), "to": end.isoformat()})
    assert response.status_code == 200, response.content
    return [(datetime.fromisoformat(i["start"]), datetime.fromisoformat(i["end"])) for i in response.json()]


# --- The person's time zone ---------------------------------------------------------------


def test_register_takes_an_iana_time_zone_and_me_returns_and_changes_it(client):
    created = post(client, "/api/auth/register", {"email": "kavya@example.test", "password": PASSWORD, "name": "Kavya",
                                                   "time_zone": "Asia/Kolkata"})
    assert created.status_code == 201, created.content
    assert created.json()["time_zone"] == "Asia/Kolkata"
    headers = login(client, "kavya@example.test")
    assert client.get("/api/auth/me", **headers).json()["time_zone"] == "Asia/Kolkata"

    moved = patch(client, "/api/auth/me", {"time_zone": "America/New_York"}, **headers)
    assert moved.status_code == 200 and moved.json()["time_zone"] == "America/New_York"
    renamed = patch(client, "/api/auth/me", {"name": "Kavya R."}, **headers)
    assert renamed.json()["name"] == "Kavya R." and renamed.json()["time_zone"] == "America/New_York"
    assert User.objects.get(email="kavya@example.test").time_zone == "America/New_York"


@pytest.mark.parametrize("old, current", [("Asia/Calcutta", "Asia/Kolkata"), ("US/Eastern", "America/New_York")])
def test_an_old_name_a_browser_reports_is_stored_under_its_current_name(client, old, current):
    created = post(client, "/api/auth/register", {"email": "w@example.test", "password": PASSWORD, "name": "W",
                                                   "time_zone": old})
    assert created.status_code == 201 and created.json()["time_zone"] == current


def test_without_a_time_zone_an_account_reads_utc(client):
    created = post(client, "/api/auth/register", {"email": "u@example.test", "password": PASSWORD, "name": "U"})
    assert created.status_code == 201 and created.json()["time_zone"] == "UTC"


@pytest.mark.parametrize("bad", ["Mars/Olympus_Mons", "EST+5", "localtime", "europe/berlin ", "x" * 65])
def test_a_time_zone_that_is_not_an_iana_name_is_422_naming_time_zone(client, bad):
    registered = post(client, "/api/auth/register", {"email": "v@example.test", "password": PASSWORD, "name": "V",
                                                      "time_zone": bad})
    assert registered.status_code == 422 and registered.json()["field"] == "time_zone", registered.content
    assert not User.objects.filter(email="v@example.test").exists()
    user = make_user()
    changed = patch(client, "/api/auth/me", {"time_zone": bad}, **login(client, user))
    assert changed.status_code == 422 and changed.json()["field"] == "time_zone"
    assert User.objects.get(pk=user.pk).time_zone == "UTC"


def test_me_can_only_be_changed_with_a_token(client):
    assert patch(client, "/api/auth/me", {"time_zone": "Europe/Berlin"}).status_code == 401


# --- The schedule in local time -------------------------------------------------------------


def test_weekly_hours_stay_at_local_wall_clock_time_across_a_daylight_saving_change(client, settings):
    settings.BOOKING_MAX_DAYS_AHEAD = 400  # the next change may be months away
    mentor = make_mentor()
    User.objects.filter(pk=mentor.user_id).update(time_zone="America/New_York")
    every_day = [{"weekday": d, "start_time": "09:00", "end_time": "12:00"} for d in range(7)]
    saved = client.put("/api/mentors/me/schedule", {"windows": every_day}, content_type="application/json",
                       **login(client, mentor.user))
    assert saved.status_code == 200, saved.content
    assert {w["time_zone"] for w in saved.json()} == {"America/New_York"}

    change = next_dst_change(NEW_YORK, after=timezone.now().date() + timedelta(days=2))
    start = datetime.combine(change - timedelta(days=3), time.min, tzinfo=NEW_YORK)
    got = intervals(client, mentor, start, start + timedelta(days=6))
    assert len(got) == 6
    for free_start, free_end in got:  # 09:00-12:00 in New York on every day...
        local_start, local_end = free_start.astimezone(NEW_YORK), free_end.astimezone(NEW_YORK)
        assert (local_start.time(), local_end.time()) == (time(9), time(12))
    utc_hours = [free_start.astimezone(UTC).hour for free_start, _ in got]
    assert len(set(utc_hours)) == 2  # ...which is another hour in UTC after the change
    assert utc_hours[:3] == [utc_hours[0]] * 3 and utc_hours[3:] == [utc_hours[3]] * 3


def test_a_window_may_cross_midnight_and_a_blocked_date_takes_its_whole_local_day(client):
    mentor = make_mentor()
    User.objects.filter(pk=mentor.user_id).update(time_zone="Asia/Kolkata")
    friday = (timezone.now().astimezone(KOLKATA) + timedelta(days=8)).date()
    friday += timedelta(days=(4 - friday.weekday()) % 7)
    headers = login(client, mentor.user)
    saved = client.put("/api/mentors/me/schedule", {
        "windows": [{"weekday": 4, "start_time": "22:00", "end_time": "02:00"},
                    {"weekday": 5, "start_time": "02:00", "end_time": "03:00"},
                    {"weekday": 0, "start_time": "10:00", "end_time": "11:00"}],
        "blocked_dates": [(friday + timedelta(days=3)).isoformat()],  # the Monday after
    }, content_type="application/json", **headers)
    assert saved.status_code == 200, saved.content

    start = datetime.combine(friday, time.min, tzinfo=KOLKATA)
    got = intervals(client, mentor, start, start + timedelta(days=4))
    # Friday 22:00 to Saturday 03:00 local (two windows that touch are one), and Monday is blocked.
    assert got == [(datetime.combine(friday, time(22), tzinfo=KOLKATA),
                    datetime.combine(friday + timedelta(days=1), time(3), tzinfo=KOLKATA))]
    schedule = client.get("/api/mentors/me/schedule", **headers).json()
    assert schedule["time_zone"] == "Asia/Kolkata"
    assert schedule["blocked_dates"] == [(friday + timedelta(days=3)).isoformat()]
    assert {"weekday": 4, "start_time": "22:00:00", "end_time": "02:00:00"} in schedule["windows"]


def test_schedules_from_before_time_zones_keep_meaning_utc(client):
    mentor = make_mentor()
    WeeklyAvailability.objects.create(mentor=mentor, weekday=2, start_time="09:00", end_time="12:00")  # as stored before
    User.objects.filter(pk=mentor.user_id).update(time_zone="Asia/Kolkata")  # the mentor sets a zone later
    headers = login(client, mentor.user)
    assert client.get("/api/mentors/me/schedule", **headers).json()["time_zone"] == "UTC"
    wednesday = (timezone.now() + timedelta(days=8)).astimezone(UTC).date()
    wednesday += timedelta(days=(2 - wednesday.weekday()) % 7)
    start = datetime.combine(wednesday, time.min, tzinfo=UTC)
    assert intervals(client, mentor, start, start + timedelta(days=1)) == [
        (start + timedelta(hours=9), start + timedelta(hours=12))]

    # An old client resending its UTC windows keeps them in UTC; a new one names its zone.
    resent = client.put("/api/mentors/me/schedule", {"windows": [{"weekday": 2, "start_time": "09:00", "end_time": "12:00"}]},
                        content_type="application/json", **headers)
    assert resent.json()[0]["time_zone"] == "UTC"
    local = client.put("/api/mentors/me/schedule", {"windows": [{"weekday": 2, "start_time": "09:00", "end_time": "12:00"}],
                                                    "time_zone": "Asia/Kolkata"}, content_type="application/json", **headers)
    assert local.json()[0]["time_zone"] == "Asia/Kolkata"
    assert intervals(client, mentor, start, start + timedelta(days=1)) == [
        (start + timedelta(hours=3, minutes=30), start + timedelta(hours=6, minutes=30))]


def test_a_first_schedule_goes_into_the_mentors_own_zone(client):
    mentor = make_mentor()
    User.objects.filter(pk=mentor.user_id).update(time_zone="Europe/Berlin")
    saved = client.put("/api/mentors/me/schedule", {"windows": [{"weekday": 0, "start_time": "09:00", "end_time": "17:00"}]},
                       content_type="application/json", **login(client, mentor.user))
    assert saved.json()[0]["time_zone"] == "Europe/Berlin"
    assert client.get(f"/api/mentors/{mentor.pk}/schedule").json()[0]["time_zone"] == "Europe/Berlin"


def test_changing_the_schedule_never_removes_a_booked_session(client):
    mentor = make_mentor()
    session = make_session(mentor=mentor, mentee=make_user(), starts_in=timedelta(days=4))
    local_day = session.scheduled_at.astimezone(UTC).date()
    headers = login(client, mentor.user)
    changed = client.put("/api/mentors/me/schedule", {
        "windows": [{"weekday": (local_day.weekday() + 1) % 7, "start_time": "09:00", "end_time": "10:00"}],
        "blocked_dates": [local_day.isoformat()],
    }, content_type="application/json", **headers)
    assert changed.status_code == 200
    kept = Session.objects.get(pk=session.pk)
    assert (kept.status, kept.scheduled_at, kept.payment_status) == ("scheduled", session.scheduled_at, "paid")
    listed = client.get("/api/mentors/me/bookings", **headers).json()
    assert [item["id"] for item in listed["items"]] == [session.pk]
    assert BlockedDate.objects.filter(mentor=mentor, date=local_day).exists()


def test_schedule_endpoints_are_for_mentors(client):
    headers = login(client, make_user())
    assert client.get("/api/mentors/me/schedule", **headers).status_code == 403
    assert client.get("/api/mentors/me/bookings", **headers).status_code == 403
    assert client.get("/api/mentors/me", **headers).status_code == 403
    assert client.get("/api/mentors/me/schedule").status_code == 401
