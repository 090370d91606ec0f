"""GET /api/mentors/{id}/availability and the weekly schedule a mentor sets."""
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from backend.models import Checkout, WeeklyAvailability
from tests.factories import book, login, make_mentor, make_session, make_user

pytestmark = pytest.mark.django_db


def next_weekday(weekday: int, *, hour: int = 0, weeks: int = 1) -> datetime:
    """A date at least a week ahead (beyond any booking lead time) on `weekday`, at `hour` UTC."""
    day = (timezone.now() + timedelta(weeks=weeks)).astimezone(UTC).replace(hour=hour, minute=0, second=0, microsecond=0)
    return day + timedelta(days=(weekday - day.weekday()) % 7)


def availability(client, mentor, start: datetime, end: datetime):
    return client.get(f"/api/mentors/{mentor.pk}/availability", {"from": start.isoformat(), "to": end.isoformat()})


def test_without_a_schedule_the_whole_range_is_free_minus_sessions_and_live_holds(client):
    mentor = make_mentor()
    day = next_weekday(2)
    session = make_session(mentor=mentor, mentee=make_user(), scheduled_at=day + timedelta(hours=10),
                           ends_at=day + timedelta(hours=11))
    hold_start = day + timedelta(hours=14)
    Checkout.objects.create(mentee=make_user(), mentor=mentor, title="t", scheduled_at=hold_start, duration_minutes=30,
                            ends_at=hold_start + timedelta(minutes=30), amount=100, currency="usd",
                            expires_at=timezone.now() + timedelta(minutes=20))
    released = day + timedelta(hours=16)  # a hold Stripe confirmed expired frees its slot
    Checkout.objects.create(mentee=make_user(), mentor=mentor, title="t", scheduled_at=released, duration_minutes=30,
                            ends_at=released + timedelta(minutes=30), amount=100, currency="usd",
                            expires_at=timezone.now() - timedelta(minutes=1), status="expired")

    response = availability(client, mentor, day, day + timedelta(days=1))
    assert response.status_code == 200, response.content
    got = [(datetime.fromisoformat(i["start"]), datetime.fromisoformat(i["end"])) for i in response.json()]
    assert got == [
        (day, session.scheduled_at),
        (session.ends_at, hold_start),
        (hold_start + timedelta(minutes=30), day + timedelta(days=1)),
    ]
    assert response.json()[0]["start"].endswith(("+00:00", "Z"))


def test_dates_are_accepted_and_bad_ranges_name_the_field(client):
    mentor = make_mentor()
    day = next_weekday(0).date()
    ok = client.get(f"/api/mentors/{mentor.pk}/availability", {"from": day.isoformat(), "to": (day + timedelta(days=2)).isoformat()})
    assert ok.status_code == 200 and len(ok.json()) == 1
    backwards = client.get(f"/api/mentors/{mentor.pk}/availability", {"from": "2030-01-02", "to": "2030-01-01"})
    assert backwards.status_code == 422 and backwards.json()["field"] == "to"
    garbage = client.get(f"/api/mentors/{mentor.pk}/availability", {"from": "next tuesday"})
    assert garbage.status_code == 422 and garbage.json()["field"] == "from"
    assert client.get("/api/mentors/999999/availability").status_code == 404


def test_a_mentor_sets_a_weekly_schedule_and_availability_follows_it(client):
    mentor = make_mentor()
    headers = login(client, mentor.user)
    response = client.put("/api/mentors/me/schedule", {"windows": [
        {"weekday": 1, "start_time": "09:00", "end_time": "12:00"},
        {"weekday": 3, "start_time": "14:00", "end_time": "18:00"},
    ]}, content_type="application/json", **headers)
    assert response.status_code == 200, response.content
    assert client.get(f"/api/mentors/{mentor.pk}/schedule").json()[0] == {
        "weekday": 1, "start_time": "09:00:00", "end_time": "12:00:00"}

    monday = next_weekday(0)
    got = availability(client, mentor, monday, monday + timedelta(days=7)).json()
    assert [(i["start"][:16], i["end"][:16]) for i in got] == [
        ((monday + timedelta(days=1, hours=9)).isoformat()[:16], (monday + timedelta(days=1, hours=12)).isoformat()[:16]),
        ((monday + timedelta(days=3, hours=14)).isoformat()[:16], (monday + timedelta(days=3, hours=18)).isoformat()[:16]),
    ]


def test_schedule_input_is_checked(client):
    mentor = make_mentor()
    headers = login(client, mentor.user)
    backwards = client.put("/api/mentors/me/schedule", {"windows": [{"weekday": 1, "start_time": "12:00", "end_time": "09:00"}]},
                           content_type="application/json", **headers)
    assert backwards.status_code == 422 and backwards.json()["field"] == "windows.0.end_time"
    not_a_mentor = client.put("/api/mentors/me/schedule", {"windows": []}, content_type="application/json",
                              **login(client, make_user()))
    assert not_a_mentor.status_code == 403
    assert client.put("/api/mentors/me/schedule", {"windows": []}, content_type="application/json").status_code == 401


@pytest.mark.django_db(transaction=True)
def test_with_a_schedule_bookings_outside_it_are_409(client, stripe_sandbox):
    mentor = make_mentor()
    WeeklyAvailability.objects.create(mentor=mentor, weekday=1, start_time="09:00", end_time="12:00")
    tuesday = next_weekday(1)
    headers = login(client, make_user())

    outside = book(client, headers, mentor, scheduled_at=(tuesday + timedelta(hours=11, minutes=30)).isoformat())
    assert outside.status_code == 409
    assert outside.json()["code"] == "outside_schedule" and outside.json()["field"] == "scheduled_at"
    inside = book(client, headers, mentor, scheduled_at=(tuesday + timedelta(hours=11)).isoformat())
    assert inside.status_code == 200, inside.content
