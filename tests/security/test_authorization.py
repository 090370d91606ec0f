"""Who may read and cancel what, over every endpoint, for five callers: anonymous, two
mentees, a mentor and a staff user (staff get no extra reach through the API; they use
/admin/). A session is visible to its mentee and its mentor, and to nobody else: anyone
else gets the same 404 as for an id that doesn't exist, so existence doesn't leak."""
from dataclasses import dataclass
from datetime import timedelta

import pytest

from backend.models import Refund, Session, User
from tests.factories import login, make_mentor, make_session, make_user

pytestmark = pytest.mark.django_db

ACTORS = ["anonymous", "mentee_a", "mentee_b", "mentor", "staff"]


@dataclass
class World:
    headers: dict[str, dict]
    users: dict[str, User | None]
    sessions: dict[str, Session]
    mentor_id: int


@pytest.fixture
def world(client, settings) -> World:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # five logins per test
    mentee_a, mentee_b = make_user(name="Mentee A"), make_user(name="Mentee B")
    mentor = make_mentor(name="The Mentor")
    staff = make_user(name="Staff")
    User.objects.filter(pk=staff.pk).update(is_staff=True, is_superuser=True)
    users = {"anonymous": None, "mentee_a": mentee_a, "mentee_b": mentee_b, "mentor": mentor.user, "staff": staff}
    return World(
        headers={name: (login(client, user) if user else {}) for name, user in users.items()},
        users=users,
        sessions={"of_a": make_session(mentor=mentor, mentee=mentee_a), "of_b": make_session(mentor=mentor, mentee=mentee_b, starts_in=timedelta(days=4))},
        mentor_id=mentor.id,
    )


# --- Reading one session --------------------------------------------------------------------

#               actor        session -> expected status
READ_ONE = {
    "anonymous": {"of_a": 401, "of_b": 401},
    "mentee_a":  {"of_a": 200, "of_b": 404},
    "mentee_b":  {"of_a": 404, "of_b": 200},
    "mentor":    {"of_a": 200, "of_b": 200},
    "staff":     {"of_a": 404, "of_b": 404},
}


@pytest.mark.parametrize("actor,session", [(a, s) for a, row in READ_ONE.items() for s in row])
def test_get_session_only_for_its_mentee_and_mentor(client, world, actor, session):
    target = world.sessions[session]
    response = client.get(f"/api/sessions/{target.id}", **world.headers[actor])
    assert response.status_code == READ_ONE[actor][session], response.content
    if response.status_code == 404:
        assert response.json() == client.get("/api/sessions/999999999", **world.headers[actor]).json() | {
            "detail": f"Session {target.id} not found"}


# --- Listing ----------------------------------------------------------------------------------

#               actor        role -> sessions listed (None: 401)
LISTED = {
    "anonymous": {"mentee": None, "mentor": None},
    "mentee_a":  {"mentee": {"of_a"}, "mentor": set()},
    "mentee_b":  {"mentee": {"of_b"}, "mentor": set()},
    "mentor":    {"mentee": set(), "mentor": {"of_a", "of_b"}},
    "staff":     {"mentee": set(), "mentor": set()},
}


@pytest.mark.parametrize("actor,role", [(a, r) for a, row in LISTED.items() for r in row])
def test_session_lists_hold_only_the_callers_own(client, world, actor, role):
    response = client.get("/api/sessions", {"role": role}, **world.headers[actor])
    expected = LISTED[actor][role]
    if expected is None:
        assert response.status_code == 401
        return
    assert response.status_code == 200
    ids = {item["id"] for item in response.json()["items"]}
    assert ids == {world.sessions[name].id for name in expected}


# --- Cancelling -------------------------------------------------------------------------------

#               actor        session -> expected status
CANCEL = {
    "anonymous": {"of_a": 401, "of_b": 401},
    "mentee_a":  {"of_a": 200, "of_b": 404},
    "mentee_b":  {"of_a": 404, "of_b": 200},
    "mentor":    {"of_a": 200, "of_b": 200},
    "staff":     {"of_a": 404, "of_b": 404},
}


@pytest.mark.parametrize("actor,session", [(a, s) for a, row in CANCEL.items() for s in row])
def test_only_its_mentee_or_mentor_cancels_a_session(client, world, actor, session):
    target = world.sessions[session]
    response = client.post(f"/api/sessions/{target.id}/cancel", {"reason": "test"}, content_type="application/json",
                           **world.headers[actor])
    assert response.status_code == CANCEL[actor][session], response.content
    target.refresh_from_db()
    if response.status_code == 200:
        assert target.status == Session.Status.CANCELLED
        assert Refund.objects.filter(session=target).count() == 1
    else:
        assert target.status == Session.Status.SCHEDULED
        assert not Refund.objects.filter(session=target).exists()


# --- Who am I ----------------------------------------------------------------------------------

@pytest.mark.parametrize("actor", ACTORS)
def test_me_is_the_caller_and_nobody_else(client, world, actor):
    response = client.get("/api/auth/me", **world.headers[actor])
    user = world.users[actor]
    if user is None:
        assert response.status_code == 401
        return
    assert response.status_code == 200
    assert response.json()["id"] == user.id
    assert response.json()["email"] == user.email
    assert response.json()["mentor_id"] == (world.mentor_id if actor == "mentor" else None)


# --- Public and private endpoints ----------------------------------------------------------

PUBLIC = ["/api/mentors", "/api/mentors/{mentor_id}", "/api/mentors/{mentor_id}/availability",
          "/api/mentors/{mentor_id}/schedule", "/api/payments/config", "/api/health", "/api/health/live",
          "/api/openapi.json", "/api/docs"]
BEARER_ONLY = [("get", "/api/auth/me"), ("get", "/api/sessions"), ("get", "/api/sessions/{session_id}"),
               ("post", "/api/sessions/{session_id}/cancel"), ("post", "/api/payments/create-checkout-session"),
               ("get", "/api/payments/checkout-sessions/{cs_id}"), ("put", "/api/mentors/me/schedule")]


@pytest.mark.parametrize("path", PUBLIC)
def test_public_endpoints_answer_anonymous_callers(client, world, path):
    response = client.get(path.format(mentor_id=world.mentor_id))
    assert response.status_code == 200


@pytest.mark.parametrize("method,path", BEARER_ONLY)
@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token", "Basic dXNlcjpwYXNz"])
def test_private_endpoints_refuse_callers_without_a_valid_token(client, world, method, path, authorization):
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    url = path.format(session_id=world.sessions["of_a"].id, cs_id=world.sessions["of_a"].stripe_checkout_session_id)
    response = getattr(client, method)(url, {}, content_type="application/json", **headers)
    assert response.status_code == 401
    assert set(response.json()) >= {"detail", "code"}
    assert world.sessions["of_a"].__class__.objects.get(pk=world.sessions["of_a"].pk).status == Session.Status.SCHEDULED


def test_every_operation_in_the_openapi_is_covered_by_this_matrix(client):
    covered = {("get", p) for p in PUBLIC if p.startswith("/api/") and p not in ("/api/openapi.json", "/api/docs")}
    covered |= set(BEARER_ONLY)
    covered |= {("post", "/api/auth/register"), ("post", "/api/auth/login"), ("post", "/api/auth/refresh"),
                ("post", "/api/payments/webhook"),  # public by design: tests/api and test_secrets.py
                ("get", "/api/health/ready")}  # public, 200 or 503 by the stack's state: tests/ops
    operations = {(method, path) for path, ops in client.get("/api/openapi.json").json()["paths"].items()
                  for method in ops}
    assert operations == covered
