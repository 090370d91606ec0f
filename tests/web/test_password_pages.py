"""Password reset and change: Django's own views, in the site's templates. A reset goes by an
emailed link that works once; the new password logs out every session and API client."""
import re

import pytest
from django.test import Client

from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-brand-new-horse-42"


def api_tokens(client, user, password=PASSWORD) -> dict:
    return client.post("/api/auth/login", {"email": user.email, "password": password},
                       content_type="application/json").json()


def link_in(message) -> str:
    return re.search(r"http://testserver(/password-reset/\S+)", message.body).group(1)


def test_a_forgotten_password_is_reset_by_the_emailed_link_and_old_tokens_stop_working(client, mailoutbox):
    user = make_user()
    tokens = api_tokens(client, user)
    other_session = Client()
    other_session.force_login(user)

    form = client.get("/login").content.decode()
    assert 'href="/password-reset"' in form
    sent = client.post("/password-reset", {"email": user.email.upper()})
    assert sent.status_code == 302 and sent["Location"] == "/password-reset/sent"
    assert len(mailoutbox) == 1 and mailoutbox[0].to == [user.email]
    assert mailoutbox[0].subject == "Reset your MyRoadmap password"

    browser = Client()
    step = browser.get(link_in(mailoutbox[0]))  # Django hides the token from the address bar
    assert step.status_code == 302 and step["Location"].endswith("/set-password")
    page = browser.get(step["Location"])
    assert page.status_code == 200 and "Choose a new password" in page.content.decode()
    weak = browser.post(step["Location"], {"new_password1": "123", "new_password2": "123"})
    assert 'data-testid="error-new_password2"' in weak.content.decode()
    done = browser.post(step["Location"], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done.status_code == 302 and done["Location"] == "/password-reset/done"
    assert "Every session of your account is logged out" in browser.get("/password-reset/done").content.decode()

    # The new password works; the old one, the old refresh token and the other session don't.
    assert Client().post("/login", {"email": user.email, "password": NEW_PASSWORD}).status_code == 302
    assert "Invalid email or password" in Client().post("/login", {"email": user.email, "password": PASSWORD}).content.decode()
    refused = client.post("/api/auth/refresh", {"refresh": tokens["refresh"]}, content_type="application/json")
    assert refused.status_code == 401
    assert other_session.get("/sessions")["Location"].startswith("/login")
    # The link works once.
    assert "This link no longer works" in Client().get(link_in(mailoutbox[0]), follow=True).content.decode()


def test_a_reset_for_an_unknown_address_looks_the_same_and_sends_nothing(client, mailoutbox):
    response = client.post("/password-reset", {"email": "nobody@example.test"})
    assert response.status_code == 302 and response["Location"] == "/password-reset/sent"
    assert mailoutbox == []


def test_reset_emails_are_limited_per_address_and_recipient(client, settings, mailoutbox):
    settings.EMAIL_LINK_RATE_LIMIT = "2/h"
    user = make_user()
    for _ in range(2):
        assert client.post("/password-reset", {"email": user.email}, REMOTE_ADDR="10.9.8.7").status_code == 302
    refused = client.post("/password-reset", {"email": user.email}, REMOTE_ADDR="10.9.8.7")
    assert refused.status_code == 429 and "Too many requests" in refused.content.decode()
    # From another address, to the same inbox: still refused (the recipient's own count).
    assert client.post("/password-reset", {"email": user.email}, REMOTE_ADDR="10.9.8.8").status_code == 429
    assert len(mailoutbox) == 2


def test_a_signed_in_user_changes_their_password_with_the_old_one(mailoutbox):
    user = make_user()
    browser = Client()
    browser.force_login(user)
    assert 'href="/password-change"' in browser.get("/sessions").content.decode()
    wrong = browser.post("/password-change", {"old_password": "not-it", "new_password1": NEW_PASSWORD,
                                              "new_password2": NEW_PASSWORD})
    assert 'data-testid="error-old_password"' in wrong.content.decode()
    done = browser.post("/password-change", {"old_password": PASSWORD, "new_password1": NEW_PASSWORD,
                                             "new_password2": NEW_PASSWORD})
    assert done.status_code == 302 and done["Location"] == "/password-change/done"
    assert browser.get("/sessions").status_code == 200  # still logged in here
    assert Client().post("/login", {"email": user.email, "password": NEW_PASSWORD}).status_code == 302
    assert Client().get("/password-change")["Location"].startswith("/login")
