"""Giving up a hold (DELETE /api/payments/checkout-sessions/{cs}), where Checkout sends the
mentee back when FRONTEND_URL is unset, and what the Checkout line item says: against the
sandbox over real HTTP."""
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.utils import timezone

from backend.models import Checkout, Session, User
from tests.factories import book, booking, future_slot, login, make_mentor, make_user

pytestmark = pytest.mark.django_db(transaction=True)


def cancel_hold(client, headers, cs_id):
    return client.delete(f"/api/payments/checkout-sessions/{cs_id}", **headers)


def test_the_mentee_cancels_a_hold_and_someone_else_can_book_the_slot(client, stripe_sandbox):
    mentor = make_mentor()
    mentee, other = make_user(), make_user()
    mine, theirs = login(client, mentee), login(client, other)
    slot = future_slot(days=4)
    cs_id = book(client, mine, mentor, scheduled_at=slot).json()["session_id"]
    assert book(client, theirs, mentor, scheduled_at=slot).status_code == 409  # held

    assert cancel_hold(client, theirs, cs_id).status_code == 404  # not theirs to cancel
    assert Client().delete(f"/api/payments/checkout-sessions/{cs_id}").status_code == 401
    response = cancel_hold(client, mine, cs_id)

    assert response.status_code == 200, response.content
    assert response.json()["state"] == "expired" and response.json()["checkout_url"] is None
    assert Checkout.objects.get(stripe_checkout_session_id=cs_id).status == "expired"
    assert stripe_sandbox.stripe_client().v1.checkout.sessions.retrieve(cs_id).status == "expired"
    assert book(client, theirs, mentor, scheduled_at=slot).status_code == 200  # the slot is free
    assert cancel_hold(client, mine, cs_id).json()["state"] == "expired"  # twice is harmless


def test_a_hold_paid_meanwhile_is_booked_not_cancelled(client, stripe_sandbox):
    headers = login(client, make_user())
    cs_id = book(client, headers, make_mentor()).json()["session_id"]
    stripe_sandbox.pause()  # the payment's webhook has not arrived when the mentee clicks "Cancel hold"
    try:
        assert stripe_sandbox.pay(cs_id)["outcome"] == "succeeded"
        response = cancel_hold(client, headers, cs_id)
    finally:
        stripe_sandbox.resume()
    assert response.status_code == 409, response.content
    assert response.json()["code"] == "checkout_complete"
    assert Session.objects.get(stripe_checkout_session_id=cs_id).payment_status == "paid"


def test_cancelling_a_hold_makes_room_under_max_open_holds(client, stripe_sandbox, settings):
    settings.MAX_OPEN_HOLDS = 1
    headers = login(client, make_user())
    first = book(client, headers, make_mentor(), scheduled_at=future_slot(days=3)).json()["session_id"]
    refused = book(client, headers, make_mentor(), scheduled_at=future_slot(days=5))
    assert refused.status_code == 409 and refused.json()["code"] == "too_many_open_holds"
    assert cancel_hold(client, headers, first).status_code == 200
    assert book(client, headers, make_mentor(), scheduled_at=future_slot(days=5)).status_code == 200


def test_without_frontend_url_checkout_returns_to_the_address_the_mentee_used(client, stripe_sandbox, settings):
    settings.FRONTEND_URL = ""
    settings.TRUSTED_PROXY = ["10.0.0.0/8"]
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "pay.example.com"]
    stripe = stripe_sandbox.stripe_client()
    mentor = make_mentor()

    def return_urls(**headers):
        body = booking(mentor, scheduled_at=future_slot(days=3 + Checkout.objects.count()))
        response = client.post("/api/payments/create-checkout-session", body, content_type="application/json",
                               **login(client, make_user()), **headers)
        assert response.status_code == 200, response.content
        session = stripe.v1.checkout.sessions.retrieve(response.json()["session_id"])
        return session.success_url, session.cancel_url

    success, cancel = return_urls()
    assert success == "http://testserver/sessions?success=true&session_id={CHECKOUT_SESSION_ID}"
    assert cancel == f"http://testserver/mentors/{mentor.pk}?canceled=true"

    proxied = {"REMOTE_ADDR": "10.1.2.3", "HTTP_X_FORWARDED_PROTO": "https", "HTTP_X_FORWARDED_HOST": "pay.example.com"}
    success, _ = return_urls(**proxied)
    assert success.startswith("https://pay.example.com/sessions?success=true")
    assert Checkout.objects.order_by("-pk").first().site_url == "https://pay.example.com"

    forged = {**proxied, "REMOTE_ADDR": "203.0.113.9"}  # not our proxy: its headers are the client's say
    success, _ = return_urls(**forged)
    assert success.startswith("http://testserver/sessions?success=true")

    settings.FRONTEND_URL = "https://app.example.com"  # set: it wins
    success, _ = return_urls(**proxied)
    assert success.startswith("https://app.example.com/sessions?success=true")


def test_the_checkout_line_item_says_what_when_and_how_long(client, stripe_sandbox):
    mentor = make_mentor(name="Ada Lovelace")
    mentee = make_user()
    User.objects.filter(pk=mentee.pk).update(time_zone="Europe/Berlin")
    start = (timezone.now() + timedelta(days=4)).astimezone(UTC).replace(hour=15, minute=0, second=0, microsecond=0)
    response = book(client, login(client, mentee), mentor, title="Career chat", scheduled_at=start.isoformat(),
                    duration_minutes=90)
    assert response.status_code == 200, response.content

    (item,) = stripe_sandbox.stripe_client().v1.checkout.sessions.line_items.list(response.json()["session_id"]).data
    berlin = start.astimezone(ZoneInfo("Europe/Berlin"))
    end = berlin + timedelta(minutes=90)
    when = f"{berlin:%a} {berlin.day} {berlin:%b %Y}, {berlin:%H:%M}\u2013{end:%H:%M} (Europe/Berlin)"
    assert item.description == f"Ada Lovelace: Career chat \u2014 {when}, 90 min"


def test_a_long_title_gives_way_to_the_date_in_the_line_item(client, stripe_sandbox):
    mentor = make_mentor(name="Ada Lovelace")
    start = datetime.fromisoformat(future_slot(days=4))
    response = book(client, login(client, make_user()), mentor, title="x" * 200, scheduled_at=start.isoformat())
    (item,) = stripe_sandbox.stripe_client().v1.checkout.sessions.line_items.list(response.json()["session_id"]).data
    assert len(item.description) <= 250 and item.description.endswith("(UTC), 60 min")
