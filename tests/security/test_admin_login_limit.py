"""The admin's login (staff can refund) is behind the same failed-login limit as the pages and
the API: one authentication backend counts failures for every way in. Attacked from outside,
over HTTP, against gunicorn, from a new address at every guess."""
import random
import re
import uuid

import httpx
import pytest

from backend.models import User
from tests.factories import PASSWORD
from tests.stack import ApiServer

pytestmark = pytest.mark.django_db(transaction=True)


def an_address() -> str:
    return f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"


def admin_login(api: ApiServer, email: str, password: str) -> httpx.Response:
    """The admin's login form as a browser posts it (CSRF cookie and token), from a new address."""
    with httpx.Client(base_url=api.url, headers={"X-Forwarded-For": an_address()}, timeout=30) as browser:
        form = browser.get("/admin/login/?next=/admin/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
        return browser.post("/admin/login/?next=/admin/", data={
            "csrfmiddlewaretoken": token, "username": email, "password": password, "next": "/admin/"})


def test_admin_brute_force_is_locked_even_for_the_right_password_and_so_is_the_api():
    staff = User.objects.create_superuser(email=f"staff-{uuid.uuid4().hex[:10]}@example.test", password=PASSWORD,
                                          name="Staff", id=random.randrange(10**8, 10**9))
    # The client comes through a trusted proxy (us) with an address of its own, so earlier runs
    # from 127.0.0.1 don't count against it.
    with ApiServer(env={"LOGIN_RATE_LIMIT": "4/h", "TRUSTED_PROXY": "127.0.0.1"}, workers=2) as api:
        guesses = [admin_login(api, staff.email, f"guess-{n}") for n in range(4)]
        right = admin_login(api, staff.email, PASSWORD)
        api_login = httpx.post(f"{api.url}/api/auth/login", json={"email": staff.email, "password": PASSWORD},
                               headers={"X-Forwarded-For": an_address()}, timeout=30)

    for guess in guesses:
        assert guess.status_code == 200 and "Please enter the correct email" in guess.text
    # Past the limit: refused with the reason, no session, even with the right password.
    assert right.status_code == 200, right.status_code
    assert "Too many failed logins; try again in" in right.text
    assert "sessionid" not in right.cookies
    assert api_login.status_code == 429 and api_login.json()["code"] == "rate_limited"


def test_the_admin_still_logs_in_below_the_limit():
    staff = User.objects.create_superuser(email=f"staff-{uuid.uuid4().hex[:10]}@example.test", password=PASSWORD,
                                          name="Staff", id=random.randrange(10**8, 10**9))
    with ApiServer(env={"LOGIN_RATE_LIMIT": "4/h", "TRUSTED_PROXY": "127.0.0.1"}, workers=1) as api:
        admin_login(api, staff.email, "one wrong guess")
        response = admin_login(api, staff.email, PASSWORD)
    assert response.status_code == 302 and response.headers["Location"] == "/admin/"
    assert "sessionid" in response.cookies
