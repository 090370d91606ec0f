"""What the pages say about money and states, with Django's test client: words for every
state, the newest refund, the other party's name, the price before paying."""
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from backend.models import Checkout, Refund, Session
from tests.factories import make_mentor, make_session, make_user

pytestmark = pytest.mark.django_db


def signed_in(user) -> Client:
    browser = Client()
    browser.force_login(user)
    return browser


def sessions_page_queries(browser) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert browser.get("/sessions").status_code == 200
    return len(queries)


def test_the_refund_column_shows_the_newest_refund_in_words_with_no_query_per_row():
    mentor, mentee = make_mentor(name="Ada", hourly_rate=5000, currency="eur"), make_user(name="Mia")
    session = make_session(mentor=mentor, mentee=mentee, title="Career chat", status="cancelled",
                           cancelled_by="mentee", cancel_reason="plans changed")
    failed = Refund.objects.create(session=session, amount=5000, currency="eur", status="failed",
                                   stripe_refund_id="re_1", failure_reason="expired_or_canceled_card")
    browser = signed_in(mentee)
    html = browser.get("/sessions").content.decode()
    assert "Refund of 50.00 EUR did not go through: the card it was going back to is closed or has expired." in html
    assert "our team will send it again or contact you" in html
    assert "failed:" not in html and "requested:" not in html

    Refund.objects.create(session=session, amount=5000, currency="eur", status="requested", retry_of=failed)
    html = browser.get("/sessions").content.decode()
    assert "Refund of 50.00 EUR requested; waiting for Stripe to confirm" in html  # the retry, not the failure
    assert 'data-live="refund"' in html  # the page follows it until Stripe confirms

    few = sessions_page_queries(browser)
    for _ in range(5):
        other = make_session(mentor=make_mentor(), mentee=mentee, status="cancelled", cancelled_by="mentor")
        Refund.objects.create(session=other, amount=other.amount, currency="usd", status="succeeded",
                              stripe_refund_id=f"re_{other.pk}")
    assert sessions_page_queries(browser) == few  # five more rows, not one query more
    html = browser.get("/sessions").content.decode()
    assert html.count("Refunded 120.00 USD") == 5 and html.count('data-state="cancelled">Cancelled') == 6


@pytest.mark.parametrize("fields, payment, status", [
    ({}, "Paid", "Scheduled"),
    ({"refunded_amount": 3000}, "Paid, 30.00 USD refunded", "Scheduled"),
    ({"is_disputed": True}, "Paid \u00b7 under dispute", "Scheduled"),
    ({"payment_status": "pending"}, "Waiting for your bank", "Scheduled"),
    ({"payment_status": "refunded", "status": "cancelled"}, "Refunded in full", "Cancelled"),
    ({"status": "completed"}, "Paid", "Took place"),
])
def test_every_state_is_in_words(fields, payment, status):
    mentee = make_user()
    make_session(mentor=make_mentor(), mentee=mentee, **fields)
    html = signed_in(mentee).get("/sessions").content.decode()
    assert f'data-testid="payment-status" data-state="{fields.get("payment_status", "paid")}">{payment}<' in html
    assert f'>{status}' in html


def test_a_disputed_payment_offers_no_cancel():
    mentee = make_user()
    session = make_session(mentor=make_mentor(), mentee=mentee, is_disputed=True)
    browser = signed_in(mentee)
    html = browser.get("/sessions").content.decode()
    assert "Payment under dispute" in html and f"/sessions/{session.pk}/cancel" not in html
    page = browser.get(f"/sessions/{session.pk}/cancel").content.decode()
    assert "under dispute at the bank" in page and 'data-testid="confirm-cancel"' not in page
    refused = browser.post(f"/sessions/{session.pk}/cancel", {"reason": "x"}, follow=True).content.decode()
    assert "under dispute" in refused
    assert Session.objects.get(pk=session.pk).status == "scheduled"


def test_the_cancel_page_names_the_other_party_and_the_flash_the_real_refund():
    mentor, mentee = make_mentor(name="Ada Lovelace", hourly_rate=13000), make_user(name="Mia Mentee")
    session = make_session(mentor=mentor, mentee=mentee, starts_in=timedelta(days=5))
    as_mentor, as_mentee = signed_in(mentor.user), signed_in(mentee)
    assert "With Mia Mentee," in as_mentor.get(f"/sessions/{session.pk}/cancel").content.decode()
    assert "With Ada Lovelace," in as_mentee.get(f"/sessions/{session.pk}/cancel").content.decode()

    done = as_mentee.post(f"/sessions/{session.pk}/cancel", {"reason": "plans changed"}, follow=True).content.decode()
    assert "A refund of 130.00 USD is requested; this page shows when Stripe confirms it" in done
    assert "on its way" not in done

    refunded = make_session(mentor=mentor, mentee=mentee, starts_in=timedelta(days=6), refunded_amount=13000,
                            payment_status="refunded")  # refunded in full at Stripe already
    nothing = as_mentor.post(f"/sessions/{refunded.pk}/cancel", {"reason": ""}, follow=True).content.decode()
    assert "is cancelled. Nothing was left to refund." in nothing
    mentor_view = as_mentor.get("/sessions").content.decode()
    assert "plans changed" in mentor_view  # the mentee's reason, shown to the mentor


def checkout_for(session, **fields) -> Checkout:
    return Checkout.objects.create(
        mentee=session.mentee, mentor=session.mentor, title=session.title, scheduled_at=session.scheduled_at,
        duration_minutes=session.duration_minutes, ends_at=session.ends_at, amount=session.amount, currency="usd",
        stripe_checkout_session_id=session.stripe_checkout_session_id, status="complete",
        expires_at=timezone.now(), **fields)


@pytest.mark.parametrize("fields, refund, text, wrong", [
    ({"status": "cancelled"}, "succeeded",  # paid, never booked: the slot went to someone else
     "That slot was taken before your payment completed", "has since been cancelled"),
    ({"status": "cancelled", "cancelled_by": "mentee"}, "requested",
     "This session was booked and has since been cancelled. Refund of 120.00 USD requested", "slot was taken"),
    ({"refunded_amount": 2000}, "succeeded",  # a partial refund from the Dashboard: still booked
     "Booked! Your session is paid and confirmed", "slot was taken"),
])
def test_the_return_page_says_what_really_became_of_the_payment(fields, refund, text, wrong):
    mentee = make_user()
    session = make_session(mentor=make_mentor(), mentee=mentee, **fields)
    checkout_for(session)
    Refund.objects.create(session=session, amount=fields.get("refunded_amount", session.amount), currency="usd",
                          status=refund, stripe_refund_id=None if refund == "requested" else "re_x")
    page = signed_in(mentee).get("/sessions", {"success": "true", "session_id": session.stripe_checkout_session_id})
    html = page.content.decode()
    assert text in html and wrong not in html
    assert "Payment received" not in html


def test_the_booking_page_shows_each_durations_price_before_paying():
    mentor = make_mentor(hourly_rate=12000)
    html = signed_in(make_user()).get(f"/mentors/{mentor.pk}").content.decode()
    assert ">60 minutes \u00b7 120.00 USD<" in html and ">90 minutes \u00b7 180.00 USD<" in html
    assert 'Price: <strong class="price-amount">120.00 USD</strong>' in html
    assert 'data-testid="slot-picker"' in html and f"/api/mentors/{mentor.pk}/slots" in html


def test_a_mentor_is_not_offered_a_booking_with_themselves():
    mentor = make_mentor()
    browser = signed_in(mentor.user)
    html = browser.get(f"/mentors/{mentor.pk}").content.decode()
    assert "This is your own profile" in html and 'data-testid="book-and-pay"' not in html
    posted = browser.post(f"/mentors/{mentor.pk}", {"title": "x", "scheduled_at": "2030-01-01T10:00",
                                                    "duration_minutes": "60"})
    assert posted.status_code == 200 and not Checkout.objects.exists()


def test_holds_waiting_for_payment_are_listed_with_a_cancel_button():
    mentee, mentor = make_user(), make_mentor(name="Ada")
    start = timezone.now() + timedelta(days=3)
    Checkout.objects.create(mentee=mentee, mentor=mentor, title="Career chat", scheduled_at=start, duration_minutes=60,
                            ends_at=start + timedelta(hours=1), amount=12000, currency="usd",
                            stripe_checkout_session_id="cs_test_hold", checkout_url="http://127.0.0.1:9/c/pay/cs_test_hold",
                            expires_at=timezone.now() + timedelta(minutes=20))
    html = signed_in(mentee).get("/sessions").content.decode()
    assert "Waiting for payment" in html and "Career chat" in html and "120.00 USD" in html
    assert 'action="/holds/cs_test_hold/cancel"' in html and 'data-testid="cancel-hold"' in html
