"""Accounts are free, so one person could hold a mentor's whole calendar with many: open holds
are limited per client address too (an IPv6 /64 counts as one client), and with
REQUIRE_EMAIL_VERIFICATION (off by default) a first booking needs the link mailed to the
address. Against the sandbox over real HTTP."""
import re

import pytest

from backend.models import Checkout
from tests.factories import PASSWORD, booking, future_slot, login, make_mentor, make_session, make_user

pytestmark = pytest.mark.django_db(transaction=True)


def book_from(client, address: str, *, days: int, user=None):
    headers = login(client, user or make_user())
    return client.post("/api/payments/create-checkout-session", booking(make_mentor(), scheduled_at=future_slot(days=days)),
                       content_type="application/json", REMOTE_ADDR=address, **headers)


def test_open_holds_are_limited_per_ipv6_64_whatever_the_accounts(client, stripe_sandbox, settings):
    settings.MAX_OPEN_HOLDS_PER_ADDRESS = 2
    # Three accounts from three addresses of one /64: the third hold is refused.
    assert book_from(client, "2001:db8:1:2::a", days=3).status_code == 200
    assert book_from(client, "2001:db8:1:2:ffff::b", days=4).status_code == 200
    third = book_from(client, "2001:db8:1:2::c", days=5)
    assert third.status_code == 409 and third.json()["code"] == "too_many_open_holds"
    # Another /64, and an IPv4 client, still book.
    assert book_from(client, "2001:db8:1:3::a", days=5).status_code == 200
    assert book_from(client, "192.0.2.10", days=6).status_code == 200
    assert set(Checkout.objects.values_list("client_network", flat=True)) == {
        "2001:db8:1:2::/64", "2001:db8:1:3::/64", "192.0.2.10"}
    # A hold that ends frees its place.
    first = Checkout.objects.filter(client_network="2001:db8:1:2::/64").order_by("pk").first()
    Checkout.objects.filter(pk=first.pk).update(status="expired")
    assert book_from(client, "2001:db8:1:2::d", days=7).status_code == 200


def test_ipv4_addresses_are_counted_one_by_one_and_rate_limits_off_lifts_it(client, stripe_sandbox, settings):
    settings.MAX_OPEN_HOLDS_PER_ADDRESS = 1
    assert book_from(client, "198.51.100.7", days=3).status_code == 200
    assert book_from(client, "198.51.100.7", days=4).status_code == 409
    assert book_from(client, "198.51.100.8", days=4).status_code == 200
    settings.RATE_LIMIT_ENABLED = False  # a load test from one address
    assert book_from(client, "198.51.100.7", days=5).status_code == 200


def test_with_verification_required_a_first_booking_needs_the_mailed_link(client, stripe_sandbox, settings,
                                                                          mailoutbox):
    settings.REQUIRE_EMAIL_VERIFICATION = True
    registered = client.post("/api/auth/register", {"email": "new-mentee@example.test", "password": PASSWORD,
                                                    "name": "New"}, content_type="application/json")
    assert registered.status_code == 201 and registered.json()["email_verified"] is False
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["new-mentee@example.test"]
    link = re.search(r"http://testserver(/verify-email/\S+)", mailoutbox[0].body).group(1)

    headers = login(client, "new-mentee@example.test")
    body = booking(make_mentor())
    refused = client.post("/api/payments/create-checkout-session", body, content_type="application/json", **headers)
    assert refused.status_code == 403, refused.content
    assert refused.json()["code"] == "email_not_verified" and refused.json()["field"] == "email"
    assert not Checkout.objects.exists()

    assert "is confirmed: you can book" in client.get(link).content.decode()
    assert client.get("/api/auth/me", **headers).json()["email_verified"] is True
    booked = client.post("/api/payments/create-checkout-session", body, content_type="application/json", **headers)
    assert booked.status_code == 200, booked.content
    assert client.get(link).status_code == 400  # the link works once


def test_mentees_who_booked_before_and_everyone_with_the_setting_off_are_not_asked(client, stripe_sandbox, settings):
    settings.REQUIRE_EMAIL_VERIFICATION = True
    regular = make_user()
    make_session(mentor=make_mentor(), mentee=regular)  # paid for a session already
    assert book_from(client, "192.0.2.20", days=4, user=regular).status_code == 200
    settings.REQUIRE_EMAIL_VERIFICATION = False
    assert book_from(client, "192.0.2.21", days=5).status_code == 200


def test_a_new_link_is_sent_on_request_within_limits(client, settings, mailoutbox):
    settings.REQUIRE_EMAIL_VERIFICATION = True
    settings.EMAIL_LINK_RATE_LIMIT = "2/h"
    user = make_user()
    headers = login(client, user)
    answers = [client.post("/api/auth/verify-email", content_type="application/json", **headers) for _ in range(3)]
    assert [a.status_code for a in answers] == [202, 202, 429]
    assert answers[0].json() == {"sent": True} and len(mailoutbox) == 2


def test_the_booking_page_offers_the_link_again(stripe_sandbox, settings, mailoutbox):
    from django.test import Client

    settings.REQUIRE_EMAIL_VERIFICATION = True
    browser = Client()
    browser.force_login(make_user())
    mentor = make_mentor()
    form = {"title": "Chat", "scheduled_at": future_slot(days=3)[:16], "duration_minutes": "60", "timezone": "UTC"}
    page = browser.post(f"/mentors/{mentor.pk}", form)
    assert page.status_code == 403 and 'data-testid="verify-email"' in page.content.decode()
    sent = browser.post("/verify-email", {"next": f"/mentors/{mentor.pk}"}, follow=True)
    assert sent.redirect_chain[-1][0] == f"/mentors/{mentor.pk}"
    assert "We emailed a verification link" in sent.content.decode() and len(mailoutbox) == 1
