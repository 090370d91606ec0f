from datetime import timedelta

import pytest
from ninja_jwt.tokens import AccessToken

from tests.factories import PASSWORD, login, make_user

pytestmark = pytest.mark.django_db


def post(client, path, body, **headers):
    return client.post(path, body, content_type="application/json", **headers)


def test_register_login_me(client):
    response = post(client, "/api/auth/register", {"email": "Ana@Example.test", "password": PASSWORD, "name": "Ana"})
    assert response.status_code == 201
    assert response.json()["email"] == "ana@example.test"
    assert "password" not in response.json()

    tokens = post(client, "/api/auth/login", {"email": "ana@example.test", "password": PASSWORD}).json()
    assert set(tokens) == {"access", "refresh"}

    me = client.get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert me.status_code == 200
    assert me.json() == {"id": response.json()["id"], "email": "ana@example.test", "name": "Ana", "mentor_id": None,
                         "mentor_stats": None}


def test_refresh_gives_a_working_access_token(client):
    user = make_user()
    tokens = post(client, "/api/auth/login", {"email": user.email, "password": PASSWORD}).json()
    refreshed = post(client, "/api/auth/refresh", {"refresh": tokens["refresh"]})
    assert refreshed.status_code == 200
    assert client.get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {refreshed.json()['access']}").status_code == 200


def test_refresh_with_an_access_token_is_401(client):
    user = make_user()
    tokens = post(client, "/api/auth/login", {"email": user.email, "password": PASSWORD}).json()
    response = post(client, "/api/auth/refresh", {"refresh": tokens["access"]})
    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"


def test_wrong_password_is_401_json(client):
    user = make_user()
    response = post(client, "/api/auth/login", {"email": user.email, "password": "not-it"})
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid email or password", "code": "invalid_credentials"}


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer not-a-jwt", "Token abc", "Bearer "],
    ids=["missing", "malformed", "wrong-scheme", "empty"],
)
def test_missing_or_bad_token_is_401_json(client, authorization):
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    response = client.get("/api/auth/me", **headers)
    assert response.status_code == 401
    body = response.json()
    assert body["detail"] and body["code"]


def test_expired_token_is_401(client):
    user = make_user()
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=-timedelta(seconds=1))
    response = client.get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"


def test_weak_password_is_422_naming_the_field(client):
    response = post(client, "/api/auth/register", {"email": "weak@example.test", "password": "12345678", "name": "W"})
    assert response.status_code == 422
    body = response.json()
    assert body["field"] == "password"
    assert "password" in body["detail"].lower()


def test_missing_field_is_422_naming_it(client):
    response = post(client, "/api/auth/register", {"email": "x@example.test", "password": PASSWORD})
    assert response.status_code == 422
    assert response.json()["field"] == "name"


def test_duplicate_email_is_409(client):
    make_user(email="taken@example.test")
    response = post(client, "/api/auth/register", {"email": "TAKEN@example.test", "password": PASSWORD, "name": "T"})
    assert response.status_code == 409
    assert response.json()["field"] == "email"


def test_invalid_email_is_rejected(client):
    response = post(client, "/api/auth/register", {"email": "not-an-email", "password": PASSWORD, "name": "N"})
    assert response.status_code in (400, 422)
    assert response.json()["field"] == "email"


def test_mentor_can_log_in_and_sees_their_mentor_id(client):
    from tests.factories import make_mentor

    mentor = make_mentor(name="Grace")
    me = client.get("/api/auth/me", **login(client, mentor.user)).json()
    assert me["mentor_id"] == mentor.id
