"""Registration, checkout creation and cancel are counted per account and per client address
(REGISTER_RATE_LIMIT, CHECKOUT_RATE_LIMIT, CANCEL_RATE_LIMIT); past a limit the answer is 429
`rate_limited` with Retry-After. RATE_LIMIT_ENABLED=false turns every limit off.

Requests here aim at ids that don't exist (404): they count all the same, and need no Stripe.
Limits are per hour so that a window ending mid-test can't reset a count."""
import uuid

import pytest

from backend.models import Mentor
from tests.factories import PASSWORD, booking, login, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # many logins per test


def an_address() -> str:
    return f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"


def register(client, address):
    return client.post("/api/auth/register", {"email": f"new-{uuid.uuid4().hex[:10]}@example.test",
                                              "password": PASSWORD, "name": "New"},
                       content_type="application/json", REMOTE_ADDR=address)


def checkout(client, headers, address):
    body = booking(Mentor(id=999_999_999))  # no such mentor: 404
    return client.post("/api/payments/create-checkout-session", body, content_type="application/json",
                       REMOTE_ADDR=address, **headers)


def cancel(client, headers, address):
    return client.post("/api/sessions/999999999/cancel", {"reason": ""}, content_type="application/json",
                       REMOTE_ADDR=address, **headers)


def assert_limited(response):
    assert response.status_code == 429, response.content
    assert response.json()["code"] == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= 3600


def test_registrations_from_one_address_are_limited(client, settings):
    settings.REGISTER_RATE_LIMIT = "2/h"
    address = an_address()
    assert [register(client, address).status_code for _ in range(2)] == [201, 201]
    assert_limited(register(client, address))
    assert register(client, an_address()).status_code == 201


@pytest.mark.parametrize("operation,setting", [(checkout, "CHECKOUT_RATE_LIMIT"), (cancel, "CANCEL_RATE_LIMIT")])
def test_one_account_is_limited_whatever_address_it_comes_from(client, settings, operation, setting):
    setattr(settings, setting, "3/h")
    headers = login(client, make_user())
    assert [operation(client, headers, an_address()).status_code for _ in range(3)] == [404] * 3
    assert_limited(operation(client, headers, an_address()))
    # Someone else is not held back by it.
    assert operation(client, login(client, make_user()), an_address()).status_code == 404


@pytest.mark.parametrize("operation,setting", [(checkout, "CHECKOUT_RATE_LIMIT"), (cancel, "CANCEL_RATE_LIMIT")])
def test_one_address_is_limited_whatever_accounts_it_uses(client, settings, operation, setting):
    setattr(settings, setting, "3/h")
    address = an_address()
    assert [operation(client, login(client, make_user()), address).status_code for _ in range(3)] == [404] * 3
    assert_limited(operation(client, login(client, make_user()), address))


def test_with_rate_limits_off_nothing_is_refused(client, settings):
    settings.RATE_LIMIT_ENABLED = False
    for name in ("LOGIN_RATE_LIMIT", "REGISTER_RATE_LIMIT", "CHECKOUT_RATE_LIMIT", "CANCEL_RATE_LIMIT"):
        setattr(settings, name, "1/h")
    address, user = an_address(), make_user()
    headers = login(client, user)
    assert {register(client, address).status_code for _ in range(3)} == {201}
    assert {checkout(client, headers, address).status_code for _ in range(3)} == {404}
    assert {cancel(client, headers, address).status_code for _ in range(3)} == {404}
    wrong = [client.post("/api/auth/login", {"email": user.email, "password": "wrong"}, content_type="application/json",
                         REMOTE_ADDR=address).status_code for _ in range(3)]
    assert wrong == [401] * 3
