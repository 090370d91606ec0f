"""GET /api/mentors/{id}/slots: the booking page's picker, computed on the server from the
mentor's free intervals, on the viewer's clock."""
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from backend.models import WeeklyAvailability
from tests.factories import make_mentor, make_session, make_user

pytestmark = pytest.mark.django_db


def every_day(mentor, start: time, end: time) -> None:
    """A weekly schedule of one window (UTC) each day."""
    for weekday in range(7):
        WeeklyAvailability.objects.create(mentor=mentor, weekday=weekday, start_time=start, end_time=end)


def starts_on(body: dict, day) -> list[str]:
    return next((d["starts"] for d in body["days"] if d["day"] == day.isoformat()), [])


def test_slots_are_the_free_start_times_with_the_price(client):
    mentor = make_mentor(hourly_rate=12000)
    every_day(mentor, time(9), time(12))
    day = (timezone.now() + timedelta(days=3)).astimezone(UTC).date()
    booked_at = datetime.combine(day, time(10), tzinfo=UTC)
    make_session(mentor=mentor, mentee=make_user(), scheduled_at=booked_at, ends_at=booked_at + timedelta(hours=1))

    response = client.get(f"/api/mentors/{mentor.pk}/slots", {"duration_minutes": 60, "days": 7, "time_zone": "UTC"})

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["price"] == {"amount": 12000, "currency": "usd", "text": "120.00 USD"}
    assert body["grid_minutes"] == 30 and body["time_zone"] == "UTC"
    # 09:00-12:00 less the 10:00-11:00 session: an hour fits at 09:00 and 11:00 only.
    assert starts_on(body, day) == [f"{day}T09:00:00Z", f"{day}T11:00:00Z"]
    untouched = day + timedelta(days=1)
    assert starts_on(body, untouched) == [f"{untouched}T{h}:00Z" for h in ("09:00", "09:30", "10:00", "10:30", "11:00")]


def test_slots_sit_on_the_viewers_half_hours_and_days(client):
    mentor = make_mentor()
    every_day(mentor, time(9), time(12))  # 14:45-17:45 in Kathmandu (UTC+5:45)
    day = (timezone.now() + timedelta(days=3)).astimezone(UTC).date()

    body = client.get(f"/api/mentors/{mentor.pk}/slots",
                      {"duration_minutes": 60, "days": 7, "time_zone": "Asia/Kathmandu"}).json()

    kathmandu = ZoneInfo("Asia/Kathmandu")
    local = [datetime.fromisoformat(s) for s in starts_on(body, day)]
    assert [s.strftime("%H:%M") for s in local] == ["15:00", "15:30", "16:00", "16:30"]
    assert all(s.utcoffset() == timedelta(hours=5, minutes=45) for s in local)
    assert all(s.astimezone(kathmandu).date() == day for s in local)


def test_a_45_minute_session_gets_a_quarter_hour_grid(client):
    mentor = make_mentor(hourly_rate=8000)
    every_day(mentor, time(9), time(10, 30))
    day = (timezone.now() + timedelta(days=3)).astimezone(UTC).date()
    body = client.get(f"/api/mentors/{mentor.pk}/slots", {"duration_minutes": 45, "time_zone": "UTC"}).json()
    assert body["grid_minutes"] == 15 and body["price"]["text"] == "60.00 USD"
    assert [s[11:16] for s in starts_on(body, day)] == ["09:00", "09:15", "09:30", "09:45"]


@pytest.mark.parametrize("query, field", [
    ({"duration_minutes": 50}, "duration_minutes"),
    ({"days": 0}, "days"),
    ({"days": 400}, "days"),
    ({"time_zone": "Mars/Olympus_Mons"}, "time_zone"),
    ({"duration_minutes": "an hour"}, "duration_minutes"),
])
def test_bad_slot_queries_name_the_field(client, query, field):
    mentor = make_mentor()
    response = client.get(f"/api/mentors/{mentor.pk}/slots", query)
    assert response.status_code == 422, response.content
    assert response.json()["field"] == field


def test_an_inactive_mentor_has_no_slots(client):
    mentor = make_mentor(is_active=False)
    assert client.get(f"/api/mentors/{mentor.pk}/slots").status_code == 404
