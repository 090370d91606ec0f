"""No answer of the API, to anyone, carries a secret or another user's email: every endpoint
is called by every kind of caller (anonymous, two mentees, a mentor, staff), errors included,
with the sandbox's real key and webhook secret configured, and each body is searched."""
import re
from datetime import timedelta

import pytest
from django.conf import settings as django_settings

from backend.models import User
from tests.conftest import WEBHOOK_SECRET
from tests.factories import PASSWORD, booking, login, make_mentor, make_session, make_user
from tests.webhooks import signed, stripe_event

pytestmark = pytest.mark.django_db(transaction=True)

STRIPE_KEY_PATTERN = re.compile(rb"\b[sr]k_(test|live)_[A-Za-z0-9_]+")
WEBHOOK_SECRET_PATTERN = re.compile(rb"\bwhsec_[A-Za-z0-9_]+")
PASSWORD_HASH_PATTERN = re.compile(rb"(pbkdf2_sha256|argon2|bcrypt|md5)\$")


def every_call(world):
    """(description, method, path, body) for every operation, with ids that exist."""
    own, other = world["own_session"], world["other_session"]
    mentor_id = world["mentor"].id
    webhook_payload, webhook_header = signed(stripe_event("customer.created"), WEBHOOK_SECRET)
    return [
        ("register", "post", "/api/auth/register", {"email": "fresh@example.test", "password": PASSWORD, "name": "F"}),
        ("register again", "post", "/api/auth/register",
         {"email": world["users"]["mentee_b"].email, "password": PASSWORD, "name": "Copy"}),
        ("login wrong", "post", "/api/auth/login", {"email": world["users"]["mentee_b"].email, "password": "nope"}),
        ("refresh bad", "post", "/api/auth/refresh", {"refresh": "not-a-token"}),
        ("me", "get", "/api/auth/me", None),
        ("mentors", "get", "/api/mentors", None),
        ("mentor", "get", f"/api/mentors/{mentor_id}", None),
        ("mentor missing", "get", "/api/mentors/999999", None),
        ("sessions", "get", "/api/sessions", None),
        ("sessions as mentor", "get", "/api/sessions?role=mentor", None),
        ("own session", "get", f"/api/sessions/{own.id}", None),
        ("other's session", "get", f"/api/sessions/{other.id}", None),
        ("cancel other's", "post", f"/api/sessions/{other.id}/cancel", {"reason": "x"}),
        ("config", "get", "/api/payments/config", None),
        ("checkout", "post", "/api/payments/create-checkout-session", booking(world["mentor"])),
        ("checkout invalid", "post", "/api/payments/create-checkout-session", booking(world["mentor"], duration_minutes=7)),
        ("webhook", "post-raw", "/api/payments/webhook", (webhook_payload, webhook_header)),
        ("webhook forged", "post-raw", "/api/payments/webhook", (webhook_payload, "t=1,v1=00")),
        ("health", "get", "/api/health", None),
        ("live", "get", "/api/health/live", None),
        ("metrics", "get", "/metrics", None),
        ("openapi", "get", "/api/openapi.json", None),
        ("docs", "get", "/api/docs", None),
    ]


@pytest.fixture
def world(client, stripe_sandbox, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast; its hashes are looked for too
    mentor = make_mentor(name="Secret Keeper")
    users = {"mentee_a": make_user(name="A"), "mentee_b": make_user(name="B"), "mentor": mentor.user,
             "staff": make_user(name="Staff")}
    User.objects.filter(pk=users["staff"].pk).update(is_staff=True, is_superuser=True)
    return {
        "mentor": mentor,
        "users": users,
        "own_session": make_session(mentor=mentor, mentee=users["mentee_a"], starts_in=timedelta(days=20)),
        "other_session": make_session(mentor=mentor, mentee=users["mentee_b"], starts_in=timedelta(days=21)),
        "headers": {"anonymous": {}} | {name: login(client, user) for name, user in users.items()},
    }


def forbidden_values(world, actor):
    """Exact secret values configured right now, and every email but the caller's own."""
    secrets = [django_settings.STRIPE_SECRET_KEY, django_settings.SECRET_KEY, *django_settings.STRIPE_WEBHOOK_SECRETS]
    own = world["users"].get(actor)
    emails = [u.email for u in User.objects.all() if own is None or u.pk != own.pk]
    return [s for s in secrets if s] + emails + [u.password for u in User.objects.all()]


@pytest.mark.parametrize("actor", ["anonymous", "mentee_a", "mentee_b", "mentor", "staff"])
def test_no_answer_carries_secrets_or_other_users_emails(client, world, actor):
    assert django_settings.STRIPE_SECRET_KEY.startswith("sk_test_")  # the sandbox's, so there is one to leak
    headers = world["headers"][actor]
    checked = 0
    for description, method, path, body in every_call(world):
        forbidden = forbidden_values(world, actor)  # before the call: a sign-up may echo the caller's own email
        if method == "post-raw":
            payload, signature = body
            response = client.post(path, payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature)
        elif method == "post":
            response = client.post(path, body, content_type="application/json", **headers)
        else:
            response = client.get(path, **headers)
        assert response.status_code < 500, (description, response.content)
        content = response.content
        for value in forbidden:
            assert value.encode() not in content, f"{description} as {actor} leaks {value[:12]}..."
        for pattern in (STRIPE_KEY_PATTERN, WEBHOOK_SECRET_PATTERN, PASSWORD_HASH_PATTERN):
            assert not pattern.search(content), f"{description} as {actor}: {pattern.search(content).group()!r}"
        checked += 1
    assert checked == len(every_call(world))


def test_the_checkout_url_is_the_only_stripe_value_a_mentee_gets(client, world):
    response = client.post("/api/payments/create-checkout-session", booking(world["mentor"]),
                           content_type="application/json", **world["headers"]["mentee_a"])
    assert response.status_code == 200, response.content
    assert set(response.json()) == {"checkout_url", "session_id"}
    assert response.json()["session_id"].startswith("cs_")


CARD_NUMBER_PATTERN = re.compile(r"\b4(?:[ -]?\d){15}\b")


@pytest.fixture
def json_log_lines():
    """Every record of every logger, formatted as LOG_FORMAT=json prints it (with the ids and redaction)."""
    import io
    import logging

    from backend.observability.context import ContextFilter
    from backend.observability.logging import JsonLogFormatter, RedactingFilter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLogFormatter())
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactingFilter())
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield lambda: stream.getvalue().splitlines()
    root.removeHandler(handler)
    root.setLevel(previous_level)


def test_no_log_record_carries_a_secret_or_card_number(client, stripe_sandbox, celery_session_worker, settings,
                                                       json_log_lines, live_server):
    """A payment, a refund, a forged and a valid webhook, a failed login: every JSON log line of the
    web and the worker (one process here) is searched for keys, webhook secrets, hashes and card numbers."""
    from backend.models import Session
    from tests.polling import wait_for

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    mentor, mentee = make_mentor(), make_user()
    response = client.post("/api/payments/create-checkout-session", booking(mentor), content_type="application/json", **login(client, mentee))
    assert response.status_code == 200, response.content
    cs_id = response.json()["session_id"]
    assert stripe_sandbox.pay(cs_id, card="4242424242424242")["outcome"] == "succeeded"
    session = wait_for(lambda: Session.objects.filter(stripe_checkout_session_id=cs_id, payment_status="paid").first())
    client.post("/api/auth/login", {"email": mentee.email, "password": "wrong " + PASSWORD}, content_type="application/json")
    mentor_headers = login(client, mentor.user)
    assert client.post(f"/api/sessions/{session.pk}/cancel", {"reason": "ill"}, content_type="application/json",
                       **mentor_headers).status_code == 200
    wait_for(lambda: Session.objects.filter(pk=session.pk, payment_status="refunded").exists(), message="refunded")
    payload, _ = signed(stripe_event("customer.created"), WEBHOOK_SECRET)
    client.post("/api/payments/webhook", payload, content_type="application/json", HTTP_STRIPE_SIGNATURE="t=1,v1=00")

    lines = json_log_lines()
    assert any(cs_id in line for line in lines)  # the payment's story is in the logs...
    secrets = [settings.STRIPE_SECRET_KEY, *settings.STRIPE_WEBHOOK_SECRETS, settings.SECRET_KEY, PASSWORD]
    for line in lines:  # ...and nothing that must not be
        for secret in secrets:
            assert secret not in line, f"log leaks {secret[:10]}...: {line[:200]}"
        encoded = line.encode()
        for pattern in (STRIPE_KEY_PATTERN, WEBHOOK_SECRET_PATTERN, PASSWORD_HASH_PATTERN):
            assert not pattern.search(encoded), line[:300]
        assert not CARD_NUMBER_PATTERN.search(line), line[:300]
