"""POST /api/auth/login counts failed attempts per account and, separately, per client address
in the shared cache (django-ratelimit); past LOGIN_RATE_LIMIT it answers 429 in the API's
error shape, with Retry-After. The client address comes from X-Forwarded-For only behind a
TRUSTED_PROXY."""
import uuid

import httpx
import pytest

from tests.factories import PASSWORD, make_user
from tests.stack import ApiServer

pytestmark = pytest.mark.django_db


def attempt(client, email, password, address, **headers):
    return client.post("/api/auth/login", {"email": email, "password": password},
                       content_type="application/json", REMOTE_ADDR=address, **headers)


def an_address() -> str:
    # A fresh address per test: the counters live in Redis and outlast the test database.
    return f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"


# The tests' limits are per hour: a per-minute window ending mid-test would reset the count.


def a_victim():
    return make_user(email=f"victim-{uuid.uuid4().hex[:10]}@example.test")


def test_after_the_limit_of_failed_logins_the_answer_is_429_rate_limited(client, settings):
    settings.LOGIN_RATE_LIMIT = "5/h"
    victim, attacker = a_victim(), an_address()

    answers = [attempt(client, victim.email, f"guess-{n}", attacker).status_code for n in range(5)]
    assert answers == [401] * 5

    blocked = attempt(client, victim.email, "guess-6", attacker)
    assert blocked.status_code == 429
    assert blocked.json() == {"detail": "Too many failed logins; try again later", "code": "rate_limited"}
    assert 1 <= int(blocked["Retry-After"]) <= 3600


def test_once_limited_even_the_right_password_is_refused(client, settings):
    settings.LOGIN_RATE_LIMIT = "3/h"
    victim, attacker = a_victim(), an_address()
    for n in range(3):
        attempt(client, victim.email, f"guess-{n}", attacker)
    assert attempt(client, victim.email, PASSWORD, attacker).status_code == 429


def test_the_email_is_counted_case_insensitively(client, settings):
    settings.LOGIN_RATE_LIMIT = "3/h"
    victim, attacker = a_victim(), an_address()
    for spelling in (victim.email, victim.email.upper(), f"  {victim.email.title()} "):
        assert attempt(client, spelling, "guess", attacker).status_code == 401
    assert attempt(client, victim.email, "guess", attacker).status_code == 429


def test_another_user_from_another_address_still_logs_in(client, settings):
    settings.LOGIN_RATE_LIMIT = "3/h"
    victim, attacker = a_victim(), an_address()
    for n in range(4):
        attempt(client, victim.email, f"guess-{n}", attacker)
    assert attempt(client, victim.email, PASSWORD, attacker).status_code == 429

    bystander = a_victim()
    response = attempt(client, bystander.email, PASSWORD, an_address())
    assert response.status_code == 200
    assert set(response.json()) == {"access", "refresh"}


def test_guesses_at_one_account_from_many_addresses_run_out(client, settings):
    settings.LOGIN_RATE_LIMIT = "3/h"
    victim = a_victim()
    assert [attempt(client, victim.email, f"guess-{n}", an_address()).status_code for n in range(3)] == [401] * 3
    assert attempt(client, victim.email, "guess-4", an_address()).status_code == 429
    # Until the window ends, the account is closed to every address, the owner's too.
    assert attempt(client, victim.email, PASSWORD, an_address()).status_code == 429


def test_one_address_spraying_many_accounts_runs_out(client, settings):
    settings.LOGIN_RATE_LIMIT = "3/h"
    attacker = an_address()
    assert [attempt(client, a_victim().email, "guess", attacker).status_code for _ in range(3)] == [401] * 3
    assert attempt(client, a_victim().email, "guess", attacker).status_code == 429
    # Everyone else still logs in.
    assert attempt(client, a_victim().email, PASSWORD, an_address()).status_code == 200


def test_without_a_trusted_proxy_x_forwarded_for_is_ignored(client, settings):
    settings.LOGIN_RATE_LIMIT = "3/h"
    settings.TRUSTED_PROXY = []
    attacker = an_address()
    for n in range(3):
        attempt(client, a_victim().email, "guess", attacker, HTTP_X_FORWARDED_FOR=an_address())
    # A forged header per request doesn't make the attacker new each time.
    assert attempt(client, a_victim().email, "guess", attacker, HTTP_X_FORWARDED_FOR=an_address()).status_code == 429


def test_behind_a_trusted_proxy_each_client_is_counted_by_its_forwarded_address(client, settings):
    settings.LOGIN_RATE_LIMIT = "3/h"
    proxy = an_address()
    settings.TRUSTED_PROXY = [proxy]
    attacker, bystander = an_address(), an_address()
    # A client may prepend anything; the proxy appends the address it saw: the last one counts.
    for n in range(3):
        attempt(client, a_victim().email, "guess", proxy, HTTP_X_FORWARDED_FOR=f"{an_address()}, {attacker}")
    assert attempt(client, a_victim().email, "guess", proxy, HTTP_X_FORWARDED_FOR=attacker).status_code == 429
    # Another client behind the same proxy is not locked out with the attacker.
    assert attempt(client, a_victim().email, PASSWORD, proxy, HTTP_X_FORWARDED_FOR=bystander).status_code == 200


def test_successful_logins_are_not_counted(client, settings):
    settings.LOGIN_RATE_LIMIT = "3/h"
    user, address = a_victim(), an_address()
    assert [attempt(client, user.email, PASSWORD, address).status_code for _ in range(6)] == [200] * 6


def test_the_counters_live_in_the_shared_redis_cache(settings):
    # Several gunicorn workers must see one count: a per-process cache would multiply the limit.
    assert settings.CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    assert settings.CACHES["default"]["LOCATION"].startswith("redis://")


@pytest.mark.django_db(transaction=True)
def test_the_limit_holds_across_several_gunicorn_workers():
    victim, address = a_victim(), an_address()
    # The server's counters outlive this test: the client comes through a trusted proxy (us)
    # with an address of its own, so earlier runs from 127.0.0.1 don't count against it.
    with ApiServer(env={"LOGIN_RATE_LIMIT": "4/h", "TRUSTED_PROXY": "127.0.0.1"}, workers=3) as api:
        def attempt_over_a_new_connection(password):
            return httpx.post(f"{api.url}/api/auth/login", json={"email": victim.email, "password": password},
                              headers={"X-Forwarded-For": address}, timeout=30)

        answers = [attempt_over_a_new_connection(f"guess-{n}").status_code for n in range(4)]
        blocked = attempt_over_a_new_connection(PASSWORD)
    assert answers == [401] * 4
    assert blocked.status_code == 429, blocked.text
    assert blocked.json()["code"] == "rate_limited"
