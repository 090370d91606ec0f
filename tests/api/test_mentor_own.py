"""A mentor's own side of the API: their profile and their bookings."""
from datetime import timedelta

import pytest

from backend.models import Mentor
from tests.factories import login, make_mentor, make_session, make_user

pytestmark = pytest.mark.django_db


def test_a_mentor_reads_and_edits_their_profile_and_prices_follow(client):
    mentor = make_mentor(name="Ada", hourly_rate=12000)
    headers = login(client, mentor.user)
    assert client.get("/api/mentors/me", **headers).json()["name"] == "Ada"
    changed = client.patch("/api/mentors/me", {"headline": "Engines", "bio": "I help with engines.", "hourly_rate": 9000,
                                               "currency": "EUR"}, content_type="application/json", **headers)
    assert changed.status_code == 200, changed.content
    body = changed.json()
    assert (body["name"], body["headline"], body["hourly_rate"], body["currency"]) == ("Ada", "Engines", 9000, "eur")
    assert client.get(f"/api/mentors/{mentor.pk}").json()["hourly_rate"] == 9000


@pytest.mark.parametrize("body, field", [
    ({"hourly_rate": 0}, "hourly_rate"),
    ({"hourly_rate": -5}, "hourly_rate"),
    ({"currency": "dollars"}, "currency"),
    ({"currency": "u$d"}, "currency"),
    ({"name": ""}, "name"),
    ({"name": "   "}, "name"),
])
def test_bad_profile_input_is_422_naming_the_field(client, body, field):
    mentor = make_mentor(hourly_rate=12000)
    response = client.patch("/api/mentors/me", body, content_type="application/json", **login(client, mentor.user))
    assert response.status_code == 422 and response.json()["field"] == field, response.content
    assert Mentor.objects.get(pk=mentor.pk).hourly_rate == 12000


def test_a_mentors_bookings_come_upcoming_soonest_first_and_past_latest_first(client):
    mentor = make_mentor()
    mentee = make_user(name="Mia")
    later = make_session(mentor=mentor, mentee=mentee, starts_in=timedelta(days=9))
    sooner = make_session(mentor=mentor, mentee=mentee, starts_in=timedelta(days=2))
    long_ago = make_session(mentor=mentor, mentee=mentee, starts_in=-timedelta(days=9), status="completed")
    recently = make_session(mentor=mentor, mentee=mentee, starts_in=-timedelta(days=2), status="completed")
    make_session(mentor=make_mentor(), mentee=mentee)  # another mentor's
    headers = login(client, mentor.user)

    upcoming = client.get("/api/mentors/me/bookings", **headers).json()
    assert [s["id"] for s in upcoming["items"]] == [sooner.pk, later.pk] and upcoming["count"] == 2
    assert upcoming["items"][0]["mentee"] == {"id": mentee.pk, "name": "Mia"}
    past = client.get("/api/mentors/me/bookings", {"when": "past"}, **headers).json()
    assert [s["id"] for s in past["items"]] == [recently.pk, long_ago.pk]
    first = client.get("/api/mentors/me/bookings", {"page_size": 1}, **headers).json()
    second = client.get("/api/mentors/me/bookings", {"page_size": 1, "cursor": first["next_cursor"]}, **headers).json()
    assert [s["id"] for s in first["items"] + second["items"]] == [sooner.pk, later.pk]
    assert client.get("/api/mentors/me/bookings", {"when": "someday"}, **headers).status_code == 422
