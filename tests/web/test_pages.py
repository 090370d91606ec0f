"""The server-rendered pages with Django's test client: what a visitor sees and can submit."""
import re
import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from backend.models import Checkout, Session
from tests.factories import PASSWORD, make_mentor, make_session, make_user

pytestmark = pytest.mark.django_db

EXTERNAL = re.compile(r"""(?:src|href|action)=["'](?:https?:)?//(?!127\.0\.0\.1|localhost|testserver)""")


def signed_in(user) -> Client:
    browser = Client()
    browser.force_login(user)
    return browser


def test_catalogue_searches_filters_and_pages(client):
    for n in range(14):
        make_mentor(name=f"Mentor {n:02d}", expertise=["python"] if n % 2 else ["career"], headline="Helps")
    make_mentor(name="Grace Hopper", headline="Compilers", hourly_rate=15000)

    first = client.get("/mentors")
    assert first.status_code == 200
    html = first.content.decode()
    assert html.count('data-testid="mentor-card"') == 12 and "Page 1 of 2" in html
    assert "Book Session" in html

    found = client.get("/mentors", {"q": "compil"}).content.decode()
    assert "Grace Hopper" in found and "150.00 USD" in found and found.count('data-testid="mentor-card"') == 1
    python = client.get("/mentors", {"expertise": "python"}).content.decode()
    assert python.count('data-testid="mentor-card"') == 7


def test_pages_and_docs_load_nothing_from_another_host(client):
    mentor = make_mentor()
    for path in ("/mentors", f"/mentors/{mentor.pk}", "/login", "/register", "/api/docs"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert not EXTERNAL.search(response.content.decode()), path
    assert "/static/ninja/swagger-ui-bundle.js" in client.get("/api/docs").content.decode()
    sessions = signed_in(make_user()).get("/sessions")
    assert sessions.status_code == 200 and not EXTERNAL.search(sessions.content.decode())


def test_booking_form_shows_each_error_next_to_its_field(client):
    mentor = make_mentor()
    browser = signed_in(make_user())
    past = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    response = browser.post(f"/mentors/{mentor.pk}", {"title": "", "scheduled_at": "soon", "duration_minutes": "7"})
    assert response.status_code == 422
    html = response.content.decode()
    assert 'data-testid="error-title"' in html and 'data-testid="error-scheduled_at"' in html
    assert 'data-testid="error-duration_minutes"' in html

    response = browser.post(f"/mentors/{mentor.pk}", {"title": "Chat", "scheduled_at": past, "duration_minutes": "60",
                                                      "timezone": "Europe/Berlin"})
    assert response.status_code == 422
    assert re.search(r'data-testid="error-scheduled_at">scheduled_at must be in the future', response.content.decode())
    assert not Checkout.objects.exists()


def test_booking_needs_a_login_and_a_csrf_token(client):
    mentor = make_mentor()
    form = {"title": "Chat", "scheduled_at": "2030-01-01T10:00", "duration_minutes": "60"}
    anonymous = client.post(f"/mentors/{mentor.pk}", form)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login?next=")

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(make_user())
    assert strict.post(f"/mentors/{mentor.pk}", form).status_code == 403
    assert strict.post("/login", {"email": "a@b.test", "password": "x"}).status_code == 403
    assert not Checkout.objects.exists()


def test_register_log_out_and_log_in_again(client):
    registered = client.post("/register", {"name": "New Mentee", "email": "new@example.test", "password": PASSWORD})
    assert registered.status_code == 302 and registered["Location"] == "/sessions"
    assert "new@example.test" in client.get("/sessions").content.decode()
    weak = Client().post("/register", {"name": "X", "email": "weak@example.test", "password": "123"})
    assert 'data-testid="error-password"' in weak.content.decode()

    assert client.post("/logout").status_code == 302
    assert client.get("/sessions")["Location"].startswith("/login")
    wrong = client.post("/login", {"email": "new@example.test", "password": "wrong-password"})
    assert "Invalid email or password" in wrong.content.decode()
    again = client.post("/login", {"email": "new@example.test", "password": PASSWORD, "next": "/mentors"})
    assert again.status_code == 302 and again["Location"] == "/mentors"
    evil = client.post("/login", {"email": "new@example.test", "password": PASSWORD, "next": "//evil.example"})
    assert evil["Location"] == "/sessions"


def test_sessions_page_lists_both_roles_with_payment_and_refund_state_and_an_ics():
    mentor = make_mentor(name="Ada")
    mentee = make_user(name="Mia")
    booked = make_session(mentor=mentor, mentee=mentee, title="Career chat")
    html = signed_in(mentee).get("/sessions").content.decode()
    assert "Career chat" in html and "Ada" in html and "paid" in html and f"/sessions/{booked.pk}/cancel" in html
    as_mentor = signed_in(mentor.user).get("/sessions").content.decode()
    assert "As mentor" in as_mentor and "Mia" in as_mentor

    ics = signed_in(mentee).get(f"/sessions/{booked.pk}.ics")
    assert ics["Content-Type"].startswith("text/calendar") and b"SUMMARY:Career chat" in ics.content
    assert signed_in(make_user()).get(f"/sessions/{booked.pk}.ics").status_code == 404


def test_cancel_page_states_the_refund_policy_before_confirming():
    mentor = make_mentor()
    mentee = make_user()
    soon = make_session(mentor=mentor, mentee=mentee, starts_in=timedelta(hours=5))
    later = make_session(mentor=mentor, mentee=mentee, starts_in=timedelta(days=5))
    browser = signed_in(mentee)

    policy = browser.get(f"/sessions/{later.pk}/cancel").content.decode()
    assert "full refund" in policy and "24 hours" in policy and 'data-testid="confirm-cancel"' in policy
    too_late = browser.get(f"/sessions/{soon.pk}/cancel").content.decode()
    assert "can't be cancelled here" in too_late and 'data-testid="confirm-cancel"' not in too_late
    assert "can't be cancelled" not in signed_in(mentor.user).get(f"/sessions/{soon.pk}/cancel").content.decode()
    Session.objects.filter(pk=later.pk).update(payment_status="pending")
    refused = browser.post(f"/sessions/{later.pk}/cancel", follow=True).content.decode()
    assert "still clearing" in refused
    assert Session.objects.get(pk=later.pk).status == "scheduled"


def test_canceled_checkout_says_whether_the_hold_is_still_yours():
    mentor = make_mentor()
    mentee = make_user()
    start = timezone.now() + timedelta(days=3)
    hold = Checkout.objects.create(mentee=mentee, mentor=mentor, title="t", scheduled_at=start, duration_minutes=60,
                                   ends_at=start + timedelta(hours=1), amount=100, currency="usd",
                                   stripe_checkout_session_id="cs_test_hold", checkout_url="http://127.0.0.1:9/pay/cs_test_hold",
                                   expires_at=timezone.now() + timedelta(minutes=20))
    browser = signed_in(mentee)
    resume = browser.get(f"/mentors/{mentor.pk}?canceled=true").content.decode()
    assert "still yours" in resume and hold.checkout_url in resume
    Checkout.objects.filter(pk=hold.pk).update(status="expired")
    released = browser.get(f"/mentors/{mentor.pk}?canceled=true").content.decode()
    assert "hold was released" in released


@pytest.mark.parametrize("payment_status, refunded, text", [
    ("paid", False, "Booked!"),
    ("pending", False, "pending until your bank confirms"),
    ("paid", True, "refunded in full"),
])
def test_return_page_says_what_became_of_the_payment(payment_status, refunded, text):
    mentor, mentee = make_mentor(), make_user()
    session = make_session(mentor=mentor, mentee=mentee, payment_status=payment_status,
                           status="cancelled" if refunded else "scheduled")
    Checkout.objects.create(mentee=mentee, mentor=mentor, title=session.title, scheduled_at=session.scheduled_at,
                            duration_minutes=60, ends_at=session.ends_at, amount=session.amount, currency="usd",
                            stripe_checkout_session_id=session.stripe_checkout_session_id, status="complete",
                            expires_at=timezone.now())
    if refunded:  # the slot was lost after the hold lapsed: refunded automatically
        session.refunds.create(amount=session.amount, currency="usd", reason="slot no longer available")
    page = signed_in(mentee).get("/sessions", {"success": "true", "session_id": session.stripe_checkout_session_id})
    assert text in page.content.decode()
    assert "not find that payment" in signed_in(make_user()).get(
        "/sessions", {"success": "true", "session_id": session.stripe_checkout_session_id}).content.decode()


def test_page_login_counts_failures_like_the_api(settings):
    settings.LOGIN_RATE_LIMIT = "2/m"
    user = make_user(email=f"guess-{uuid.uuid4().hex[:8]}@example.test")
    browser = Client()
    for _ in range(2):
        assert "Invalid email or password" in browser.post("/login", {"email": user.email, "password": "nope"}).content.decode()
    refused = browser.post("/login", {"email": user.email, "password": PASSWORD})
    assert refused.status_code == 200 and "Too many failed logins" in refused.content.decode()
    assert "_auth_user_id" not in browser.session


def test_the_booking_and_cancel_pages_count_against_the_same_limits_as_the_api(settings):
    settings.CHECKOUT_RATE_LIMIT = "1/h"
    settings.CANCEL_RATE_LIMIT = "1/h"
    user = make_user()
    browser = signed_in(user)
    mentor = make_mentor()
    past = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    form = {"title": "Chat", "scheduled_at": past, "duration_minutes": "60", "timezone": "UTC"}

    first = browser.post(f"/mentors/{mentor.pk}", form)
    assert "must be in the future" in first.content.decode()
    second = browser.post(f"/mentors/{mentor.pk}", form)
    assert "Too many requests" in second.content.decode()
    assert not Checkout.objects.exists()

    soon = make_session(mentor=mentor, mentee=user, starts_in=timedelta(hours=3))  # inside the refund cutoff
    first_cancel = browser.post(f"/sessions/{soon.pk}/cancel", {"reason": ""}, follow=True).content.decode()
    assert "Too many requests" not in first_cancel  # refused by the policy, and counted
    refused = browser.post(f"/sessions/{soon.pk}/cancel", {"reason": ""}, follow=True).content.decode()
    assert "Too many requests" in refused
    assert Session.objects.get(pk=soon.pk).status == "scheduled"
