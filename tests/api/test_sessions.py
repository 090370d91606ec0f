from datetime import timedelta

import pytest

from tests.factories import login, make_mentor, make_session, make_user

pytestmark = pytest.mark.django_db


def test_mentee_sees_only_their_sessions_newest_first(client):
    mentor = make_mentor()
    ana, bob = make_user(), make_user()
    older = make_session(mentor=mentor, mentee=ana, starts_in=timedelta(days=2))
    newer = make_session(mentor=mentor, mentee=ana, starts_in=timedelta(days=5))
    make_session(mentor=mentor, mentee=bob, starts_in=timedelta(days=8))

    body = client.get("/api/sessions", **login(client, ana)).json()
    assert body["count"] == 2
    assert [s["id"] for s in body["items"]] == [newer.id, older.id]


def test_session_json_carries_the_documented_fields(client):
    mentor = make_mentor(name="Ada", hourly_rate=9000, currency="gbp")
    ana = make_user()
    session = make_session(mentor=mentor, mentee=ana, duration_minutes=90, description="Career chat")

    body = client.get(f"/api/sessions/{session.id}", **login(client, ana)).json()
    assert body["mentor"] == {"id": mentor.id, "name": "Ada"}
    assert body["mentee_id"] == ana.id
    assert body["description"] == "Career chat"
    assert body["duration_minutes"] == 90
    assert body["amount"] == 13500 and body["currency"] == "gbp"
    assert body["status"] == "scheduled" and body["payment_status"] == "paid"
    assert body["stripe_payment_id"] == session.stripe_payment_id
    assert {"scheduled_at", "created_at", "title"} <= set(body)


def test_mentor_lists_sessions_they_give_with_role_mentor(client):
    mentor = make_mentor()
    given = make_session(mentor=mentor, mentee=make_user())
    headers = login(client, mentor.user)
    assert [s["id"] for s in client.get("/api/sessions?role=mentor", **headers).json()["items"]] == [given.id]
    assert client.get("/api/sessions", **headers).json()["count"] == 0
    assert client.get(f"/api/sessions/{given.id}", **headers).status_code == 200


def test_another_users_session_is_404(client):
    session = make_session(mentor=make_mentor(), mentee=make_user())
    response = client.get(f"/api/sessions/{session.id}", **login(client, make_user()))
    assert response.status_code == 404
    assert client.get("/api/sessions/987654", **login(client, make_user())).status_code == 404


def test_sessions_need_a_token(client):
    assert client.get("/api/sessions").status_code == 401


def test_unknown_role_is_422(client):
    response = client.get("/api/sessions?role=admin", **login(client, make_user()))
    assert response.status_code == 422
    assert response.json()["field"] == "role"


def test_a_cursor_continues_after_the_last_session_seen_even_when_new_ones_arrive(client):
    mentor, ana = make_mentor(), make_user()
    sessions = [make_session(mentor=mentor, mentee=ana, starts_in=timedelta(days=2 + i)) for i in range(5)]
    headers = login(client, ana)
    first = client.get("/api/sessions?page_size=2", **headers).json()
    assert [s["id"] for s in first["items"]] == [sessions[4].id, sessions[3].id]

    make_session(mentor=mentor, mentee=ana, starts_in=timedelta(days=30))  # newest: would shift page 2
    second = client.get(f"/api/sessions?page_size=2&cursor={first['next_cursor']}", **headers).json()
    third = client.get(f"/api/sessions?page_size=2&cursor={second['next_cursor']}", **headers).json()
    assert [s["id"] for s in second["items"]] == [sessions[2].id, sessions[1].id]
    assert [s["id"] for s in third["items"]] == [sessions[0].id]
    assert third["next_cursor"] is None
