"""POST /api/payments/create-checkout-session against the sandbox over real HTTP."""
import threading
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from backend.models import Checkout
from backend.services.reconciliation import checkout_holds_expire
from tests.factories import book, booking, future_slot, login, make_mentor, make_session, make_user

pytestmark = pytest.mark.django_db(transaction=True)


def test_valid_booking_returns_a_checkout_url_and_holds_the_slot(client, stripe_sandbox):
    mentor = make_mentor(name="Ada", hourly_rate=12000, currency="eur")
    mentee = make_user(email="mentee@example.test")
    response = book(client, login(client, mentee), mentor, duration_minutes=90)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["session_id"].startswith("cs_")
    assert body["checkout_url"].startswith(stripe_sandbox.api_base)

    hold = Checkout.objects.get()
    assert hold.status == "open" and hold.stripe_checkout_session_id == body["session_id"]
    assert hold.amount == 18000 and hold.currency == "eur"
    assert timedelta(minutes=30) < hold.expires_at - timezone.now() <= timedelta(minutes=31)

    stripe_session = stripe_sandbox.stripe_client().v1.checkout.sessions.retrieve(body["session_id"])
    assert stripe_session.amount_total == 18000 and stripe_session.currency == "eur"
    assert stripe_session.client_reference_id == str(hold.id)
    assert stripe_session.metadata["checkout_id"] == str(hold.id)
    assert stripe_session.customer_email == "mentee@example.test"
    assert stripe_session.expires_at == int(hold.expires_at.timestamp())
    assert stripe_session.mode == "payment" and stripe_session.status == "open"
    assert "{CHECKOUT_SESSION_ID}" in stripe_session.success_url
    assert stripe_session.cancel_url.endswith(f"/mentors/{mentor.id}?canceled=true")


@pytest.mark.parametrize("duration,rate,expected", [(30, 12000, 6000), (45, 7500, 5625), (45, 12345, 9259), (120, 9000, 18000)])
def test_amount_is_rate_times_duration(client, stripe_sandbox, duration, rate, expected):
    mentor = make_mentor(hourly_rate=rate)
    response = book(client, login(client, make_user()), mentor, duration_minutes=duration)
    assert response.status_code == 200, response.content
    assert Checkout.objects.get().amount == expected


@pytest.mark.parametrize("field", ["amount", "currency", "price"])
def test_client_cannot_send_a_price(client, stripe_sandbox, field):
    mentor = make_mentor()
    response = book(client, login(client, make_user()), mentor, **{field: 1})
    assert response.status_code == 422
    assert response.json()["field"] == field
    assert not Checkout.objects.exists()


def _past():
    return (timezone.now() - timedelta(hours=1)).isoformat()


@pytest.mark.parametrize(
    "overrides,status,field",
    [
        ({"mentor_id": 999999}, 404, "mentor_id"),
        ({"scheduled_at": "past"}, 422, "scheduled_at"),
        ({"scheduled_at": "soon"}, 422, "scheduled_at"),
        ({"scheduled_at": future_slot(days=200)}, 422, "scheduled_at"),
        ({"scheduled_at": "2030-01-01T10:00:00"}, 422, "scheduled_at"),
        ({"scheduled_at": "tomorrow"}, 422, "scheduled_at"),
        ({"duration_minutes": 50}, 422, "duration_minutes"),
        ({"duration_minutes": -30}, 422, "duration_minutes"),
        ({"title": ""}, 422, "title"),
        ({"title": "   "}, 422, "title"),
        ({"title": "x" * 201}, 422, "title"),
        ({"description": "x" * 2001}, 422, "description"),
        ({"mentor_id": "abc"}, 422, "mentor_id"),
    ],
    ids=["unknown-mentor", "past", "within-lead-time", "too-far", "naive", "not-a-date", "odd-duration", "negative-duration",
         "empty-title", "blank-title", "long-title", "long-description", "bad-mentor-id"],
)
def test_invalid_bookings_get_a_4xx_naming_the_field(client, stripe_sandbox, overrides, status, field):
    mentor = make_mentor()
    if overrides.get("scheduled_at") == "past":
        overrides = {"scheduled_at": _past()}
    if overrides.get("scheduled_at") == "soon":  # inside BOOKING_MIN_LEAD_MINUTES (120)
        overrides = {"scheduled_at": (timezone.now() + timedelta(minutes=90)).isoformat()}
    response = book(client, login(client, make_user()), mentor, **overrides)
    assert response.status_code == status, response.content
    body = response.json()
    assert body["field"] == field
    assert body["detail"] and body["code"]
    assert not Checkout.objects.exists()


def test_inactive_mentor_is_404(client, stripe_sandbox):
    mentor = make_mentor(is_active=False)
    response = book(client, login(client, make_user()), mentor)
    assert response.status_code == 404


def test_booking_yourself_is_400(client, stripe_sandbox):
    mentor = make_mentor()
    response = book(client, login(client, mentor.user), mentor)
    assert response.status_code == 400
    assert response.json()["field"] == "mentor_id"


def test_booking_needs_a_token(client, stripe_sandbox):
    response = client.post("/api/payments/create-checkout-session", booking(make_mentor()), content_type="application/json")
    assert response.status_code == 401


def test_overlapping_slot_is_409(client, stripe_sandbox):
    mentor = make_mentor()
    start = future_slot(days=4, hour=10)
    assert book(client, login(client, make_user()), mentor, scheduled_at=start).status_code == 200
    overlapping = (timezone.datetime.fromisoformat(start) + timedelta(minutes=30)).isoformat()
    response = book(client, login(client, make_user()), mentor, scheduled_at=overlapping)
    assert response.status_code == 409
    assert response.json()["code"] == "slot_unavailable"
    # Back to back is fine.
    after = (timezone.datetime.fromisoformat(start) + timedelta(minutes=60)).isoformat()
    assert book(client, login(client, make_user()), mentor, scheduled_at=after).status_code == 200


def test_slot_of_a_scheduled_session_is_409(client, stripe_sandbox):
    mentor = make_mentor()
    session = make_session(mentor=mentor, mentee=make_user(), starts_in=timedelta(days=5))
    response = book(client, login(client, make_user()), mentor, scheduled_at=session.scheduled_at.isoformat())
    assert response.status_code == 409


def test_mentee_cannot_double_book_themselves_across_mentors(client, stripe_sandbox):
    headers = login(client, mentee := make_user())
    start = future_slot(days=6)
    assert book(client, headers, make_mentor(), scheduled_at=start).status_code == 200
    response = book(client, headers, make_mentor(), scheduled_at=start)
    assert response.status_code == 409
    assert "You already have" in response.json()["detail"]


def test_an_expired_hold_frees_the_slot(client, stripe_sandbox):
    mentor = make_mentor()
    start = future_slot(days=7)
    assert book(client, login(client, make_user()), mentor, scheduled_at=start).status_code == 200
    assert book(client, login(client, make_user()), mentor, scheduled_at=start).status_code == 409
    Checkout.objects.update(expires_at=timezone.now() - timedelta(seconds=1))  # the hold's time is up...
    # ...but its Checkout may have been paid, the event still on its way: it blocks until
    # Stripe confirms the expiry (here checkout_holds_expire, as beat runs it every minute).
    assert book(client, login(client, make_user()), mentor, scheduled_at=start).status_code == 409
    assert checkout_holds_expire() == 1
    assert book(client, login(client, make_user()), mentor, scheduled_at=start).status_code == 200


def test_concurrent_requests_for_one_slot_book_it_once(live_server, stripe_sandbox, client):
    mentor = make_mentor()
    mentees = [make_user() for _ in range(6)]
    headers = [login(client, m)["HTTP_AUTHORIZATION"] for m in mentees]
    body = booking(mentor, scheduled_at=future_slot(days=8))
    barrier = threading.Barrier(len(headers))
    statuses = []

    def attempt(authorization):
        barrier.wait()
        response = httpx.post(f"{live_server.url}/api/payments/create-checkout-session", json=body,
                              headers={"Authorization": authorization}, timeout=30)
        statuses.append(response.status_code)

    threads = [threading.Thread(target=attempt, args=(h,)) for h in headers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] + [409] * (len(headers) - 1)
    assert Checkout.objects.filter(status="open").count() == 1


def test_stripe_outage_is_503_and_leaves_no_hold(client, stripe_sandbox, settings):
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # nothing listens: Stripe is "down"
    mentor = make_mentor()
    start = future_slot(days=9)
    headers = login(client, make_user())
    response = book(client, headers, mentor, scheduled_at=start)
    assert response.status_code == 503
    assert "Stripe" in response.json()["detail"]
    assert not Checkout.objects.filter(status="open").exists()

    settings.STRIPE_API_BASE = stripe_sandbox.api_base  # Stripe is back: the slot is free
    assert book(client, headers, mentor, scheduled_at=start).status_code == 200


def test_stripe_refusing_the_key_is_502_not_500(client, stripe_sandbox, settings):
    settings.STRIPE_SECRET_KEY = "sk_live_not_accepted_by_the_sandbox"
    response = book(client, login(client, make_user()), make_mentor())
    assert response.status_code == 502
    assert "sk_live" not in response.content.decode()
    assert not Checkout.objects.filter(status="open").exists()
