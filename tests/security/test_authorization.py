"""Who may read and cancel what, over every endpoint, for five callers: anonymous, two
mentees, a mentor and a staff user (staff get no extra reach through the API; they use
/admin/). A session is visible to its mentee and its mentor, and to nobody else: anyone
else gets the same 404 as for an id that doesn't exist, so existence doesn't leak."""
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Permission

from backend.models import Refund, Session, User, WebhookEvent
from tests.factories import PASSWORD, login, make_mentor, make_session, make_user

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
    # A mentor's earnings reach that mentor and nobody else (the catalogue shows none).
    assert (response.json()["mentor_stats"] is not None) == (actor == "mentor")


# --- Refreshing a token ------------------------------------------------------------------------

def refresh(client, token):
    return client.post("/api/auth/refresh", {"refresh": token}, content_type="application/json")


def test_a_refresh_token_works_while_its_user_is_active_and_keeps_the_password(client, world):
    tokens = client.post("/api/auth/login", {"email": world.users["mentee_a"].email, "password": PASSWORD},
                         content_type="application/json").json()
    assert refresh(client, tokens["refresh"]).status_code == 200


@pytest.mark.parametrize("change", ["deactivated", "deleted", "password_changed"])
def test_a_refresh_token_stops_working_when_its_user_is(client, world, change):
    user = make_user(name="Leaving")
    tokens = client.post("/api/auth/login", {"email": user.email, "password": PASSWORD},
                         content_type="application/json").json()
    if change == "deactivated":
        User.objects.filter(pk=user.pk).update(is_active=False)
    elif change == "deleted":
        user.delete()
    else:
        user.set_password("another-horse-battery-10")
        user.save()
    response = refresh(client, tokens["refresh"])
    assert response.status_code == 401, response.content
    assert response.json()["code"] == "token_not_valid"


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


# --- Admin money actions ------------------------------------------------------------------------
# Staff who may only look, staff given exactly one money permission, and a superuser. A money
# action runs only with its permission, and each run is in the admin log: who, when, what.

ADMIN_ACTORS = {
    "viewer": ["view_session", "view_refund", "view_webhookevent", "view_checkout"],
    "refunder": ["view_session", "view_refund", "refund_session"],
    "retrier": ["view_webhookevent", "retry_webhook_event"],
    "superuser": None,
}


def admin_client(client, actor: str):
    staff = make_user(name=f"Staff {actor}")
    staff.is_staff, staff.is_superuser = True, ADMIN_ACTORS[actor] is None
    staff.save()
    staff.user_permissions.set(Permission.objects.filter(codename__in=ADMIN_ACTORS[actor] or []))
    client.force_login(staff)
    return staff


def logged(staff, obj) -> list[str]:
    return list(LogEntry.objects.filter(user=staff, object_id=str(obj.pk), action_flag=CHANGE)
                .values_list("change_message", flat=True))


#              actor -> may run it
REFUND_ACTION = {"viewer": False, "refunder": True, "retrier": False, "superuser": True}
RETRY_EVENT_ACTION = {"viewer": False, "refunder": False, "retrier": True, "superuser": True}
RETRY_REFUND_ACTION = {"viewer": False, "refunder": True, "retrier": False, "superuser": True}


@pytest.mark.parametrize("actor", REFUND_ACTION)
def test_only_staff_with_refund_session_refund_from_the_admin(client, world, actor):
    staff = admin_client(client, actor)
    target = world.sessions["of_a"]
    client.post("/admin/backend/session/", {"action": "refund_sessions", "_selected_action": [target.pk]})
    refunds = Refund.objects.filter(session=target)
    assert refunds.exists() == REFUND_ACTION[actor]
    assert logged(staff, target) == ([f"Refund {refunds.get().pk} of {target.amount} {target.currency} requested"]
                                     if REFUND_ACTION[actor] else [])


@pytest.mark.parametrize("actor", RETRY_EVENT_ACTION)
def test_only_staff_with_retry_webhook_event_retry_events(client, world, actor):
    staff = admin_client(client, actor)
    event = WebhookEvent.objects.create(stripe_event_id="evt_admin_matrix", type="checkout.session.completed",
                                        payload={}, status=WebhookEvent.Status.FAILED, last_error="boom")
    client.post("/admin/backend/webhookevent/", {"action": "retry_selected", "_selected_action": [event.pk]})
    event.refresh_from_db()
    assert (event.status != WebhookEvent.Status.FAILED) == RETRY_EVENT_ACTION[actor]
    assert logged(staff, event) == (["Retry asked (status was failed)"] if RETRY_EVENT_ACTION[actor] else [])


@pytest.mark.parametrize("actor", RETRY_REFUND_ACTION)
def test_only_staff_with_refund_session_retry_refunds(client, world, actor):
    staff = admin_client(client, actor)
    target = world.sessions["of_a"]
    refund = Refund.objects.create(session=target, amount=target.amount, currency=target.currency,
                                   status=Refund.Status.FAILED, last_error="Stripe down")
    client.post("/admin/backend/refund/", {"action": "retry_selected", "_selected_action": [refund.pk]})
    # A retry is a new refund (new row, new idempotency key); the failed one stays for the record.
    assert Refund.objects.filter(retry_of=refund).exists() == RETRY_REFUND_ACTION[actor]
    refund.refresh_from_db()
    assert refund.status == Refund.Status.FAILED
    assert logged(staff, refund) == (["Retry asked (status was failed)"] if RETRY_REFUND_ACTION[actor] else [])


@pytest.mark.parametrize("model", ["session", "refund", "checkout", "webhookevent"])
def test_not_even_a_superuser_adds_or_deletes_ledger_rows_in_the_admin(client, world, model):
    admin_client(client, "superuser")
    assert client.get(f"/admin/backend/{model}/add/").status_code == 403
    assert "delete_selected" not in client.get(f"/admin/backend/{model}/").content.decode()


def test_money_fields_are_read_only_in_the_admin(client, world):
    admin_client(client, "superuser")
    target = world.sessions["of_a"]
    form = client.get(f"/admin/backend/session/{target.pk}/change/").content.decode()
    for field in ("amount", "currency", "payment_status", "refunded_amount", "stripe_payment_id",
                  "stripe_checkout_session_id"):
        assert f'name="{field}"' not in form, field
    assert 'name="title"' in form  # the booking's text stays editable
    # A forged POST changes no money field either.
    client.post(f"/admin/backend/session/{target.pk}/change/", {
        "title": "Edited", "description": "", "mentor": target.mentor_id, "mentee": target.mentee_id,
        "scheduled_at_0": target.scheduled_at.date().isoformat(), "scheduled_at_1": "15:00:00",
        "ends_at_0": target.ends_at.date().isoformat(), "ends_at_1": "16:00:00", "duration_minutes": 60,
        "status": "scheduled", "amount": 1, "payment_status": "refunded", "stripe_payment_id": "pi_forged"})
    target.refresh_from_db()
    assert (target.amount, target.payment_status, target.stripe_payment_id) != (1, "refunded", "pi_forged")
    assert target.payment_status == Session.PaymentStatus.PAID


def test_refunds_and_checkouts_show_their_money_fields_read_only(client, world):
    admin_client(client, "superuser")
    target = world.sessions["of_a"]
    refund = Refund.objects.create(session=target, amount=target.amount, currency=target.currency,
                                   stripe_refund_id="re_admin_matrix")
    form = client.get(f"/admin/backend/refund/{refund.pk}/change/").content.decode()
    for field in ("amount", "currency", "status", "stripe_refund_id", "session"):
        assert f'name="{field}"' not in form, field


def test_webhook_events_are_view_only_even_for_a_superuser(client, world):
    admin_client(client, "superuser")
    event = WebhookEvent.objects.create(stripe_event_id="evt_view_only", type="charge.refunded", payload={})
    page = client.get(f"/admin/backend/webhookevent/{event.pk}/change/")
    assert page.status_code == 200 and 'name="status"' not in page.content.decode()
    client.post(f"/admin/backend/webhookevent/{event.pk}/change/", {"status": "processed"})
    client.post(f"/admin/backend/webhookevent/{event.pk}/delete/", {"post": "yes"})
    event.refresh_from_db()
    assert event.status == WebhookEvent.Status.RECEIVED
