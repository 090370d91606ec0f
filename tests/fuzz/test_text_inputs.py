"""Inputs that PostgreSQL cannot store, or that overflow it, are bad input (422), never a 500.
schemathesis may or may not draw these in a given run; this table always does."""
import pytest

from tests.factories import PASSWORD, booking, login, make_mentor, make_session, make_user

pytestmark = pytest.mark.django_db

NUL, LONE_SURROGATE = "a\x00b", "\ud800"


def register(client, **overrides):
    body = {"email": "new@example.test", "password": PASSWORD, "name": "New"} | overrides
    return client.post("/api/auth/register", body, content_type="application/json")


def log_in(client, **overrides):
    body = {"email": "new@example.test", "password": PASSWORD} | overrides
    return client.post("/api/auth/login", body, content_type="application/json")


def refresh(client, **overrides):
    return client.post("/api/auth/refresh", {"refresh": "x"} | overrides, content_type="application/json")


def mentors(client, **query):
    return client.get("/api/mentors", query)


def checkout(client, **overrides):
    headers, mentor = login(client, make_user()), make_mentor()
    return client.post("/api/payments/create-checkout-session", booking(mentor, **overrides),
                       content_type="application/json", **headers)


def cancel(client, **body):
    mentee, mentor = make_user(), make_mentor()
    session = make_session(mentor=mentor, mentee=mentee)
    return client.post(f"/api/sessions/{session.id}/cancel", body, content_type="application/json",
                       **login(client, mentee))


CASES = {
    "register name with NUL": (register, {"name": NUL}, "name"),
    "register email with NUL": (register, {"email": "a\x00@example.test"}, "email"),
    "register password with NUL": (register, {"password": PASSWORD + "\x00"}, "password"),
    "register name with a lone surrogate": (register, {"name": LONE_SURROGATE}, "name"),
    "register name over 150 characters": (register, {"name": "n" * 151}, "name"),
    "register email over 254 characters": (register, {"email": "a" * 64 + "@" + "b" * 190 + ".test"}, "email"),
    "login email with NUL": (log_in, {"email": NUL}, "email"),
    "login password with a lone surrogate": (log_in, {"password": LONE_SURROGATE}, "password"),
    "refresh token with NUL": (refresh, {"refresh": NUL}, "refresh"),
    "mentor search with NUL": (mentors, {"q": NUL}, "q"),
    "mentor expertise with NUL": (mentors, {"expertise": NUL}, "expertise"),
    "mentor page past bigint": (mentors, {"page": "9" * 30}, "page"),
    "checkout title with NUL": (checkout, {"title": NUL}, "title"),
    "checkout description with a lone surrogate": (checkout, {"description": LONE_SURROGATE}, "description"),
    "cancel reason with NUL": (cancel, {"reason": NUL}, "reason"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_unstorable_text_is_422_naming_the_field(client, case):
    call, arguments, field = CASES[case]
    response = call(client, **arguments)
    assert response.status_code == 422, response.content
    assert response.json()["code"] == "validation_error"
    assert response.json()["field"] == field


def test_a_session_list_page_past_bigint_is_422(client):
    response = client.get("/api/sessions", {"page": "9" * 30}, **login(client, make_user()))
    assert response.status_code == 422
    assert response.json()["field"] == "page"
