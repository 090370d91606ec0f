"""/mentor/payouts with Django's test client: what a mentor sees of their payout account and
payouts, and who else may look (the onboarding in Chromium is tests/e2e/test_payouts.py)."""
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from backend.models import Payout, PayoutAccount, PayoutReversal
from tests.factories import make_mentor, make_session, make_user

pytestmark = pytest.mark.django_db


def signed_in(user) -> Client:
    browser = Client()
    browser.force_login(user)
    return browser


def test_the_payouts_link_is_in_the_navigation_of_mentors_only():
    mentor, mentee = make_mentor(), make_user()

    assert 'href="/mentor/payouts"' in signed_in(mentor.user).get("/mentors").content.decode()
    assert 'href="/mentor/payouts"' not in signed_in(mentee).get("/mentors").content.decode()
    assert 'href="/mentor/payouts"' not in Client().get("/mentors").content.decode()


def test_only_a_signed_in_mentor_sees_the_page():
    assert Client().get("/mentor/payouts").url.startswith("/login?next=/mentor/payouts")
    assert signed_in(make_user()).get("/mentor/payouts").status_code == 403
    assert signed_in(make_user()).post("/mentor/payouts/onboarding").status_code == 403


def test_a_mentor_without_an_account_is_asked_to_connect_and_has_no_payouts_yet():
    page = signed_in(make_mentor().user).get("/mentor/payouts").content.decode()

    assert 'data-status="none"' in page and "You have not connected a payout account yet" in page
    assert "Connect payouts with Stripe" in page and 'data-testid="payouts-empty"' in page
    assert "48 hours after it ends" in page


@pytest.mark.parametrize("state,words", [
    ({"stripe_account_id": "acct_pending", "requirements_due": ["external_account"]},
     "Stripe needs a few more details"),
    ({"stripe_account_id": "acct_restricted", "disabled_reason": "rejected.fraud"}, "Stripe has paused payouts"),
    ({"stripe_account_id": "acct_enabled", "payouts_enabled": True, "charges_enabled": True}, "Payouts are on"),
])
def test_the_account_state_is_said_in_words_with_what_stripe_still_needs(state, words):
    mentor = make_mentor()
    PayoutAccount.objects.create(mentor=mentor, **state)

    page = signed_in(mentor.user).get("/mentor/payouts").content.decode()

    assert words in page
    assert ("external_account" in page) == ("requirements_due" in state)
    assert ("Continue onboarding with Stripe" in page) == (not state.get("payouts_enabled"))


def test_payouts_are_listed_with_their_status_in_words_and_the_money_is_summed():
    mentor, mentee = make_mentor(hourly_rate=12000), make_user()
    PayoutAccount.objects.create(mentor=mentor, stripe_account_id="acct_ok", payouts_enabled=True,
                                 bank_payout_failed_at=timezone.now(), bank_payout_failure_code="account_closed",
                                 bank_payout_failure_message="The bank account has been closed.")
    sent = make_session(mentor=mentor, mentee=mentee, title="Sent one", starts_in=timedelta(days=-3))
    coming = make_session(mentor=mentor, mentee=mentee, title="Coming one", starts_in=timedelta(days=3))
    paid = Payout.objects.create(session=sent, mentor=mentor, currency="usd", amount=10200, status="partially_reversed",
                                 stripe_transfer_id="tr_1", paid_at=timezone.now(), amount_reversed=2550)
    PayoutReversal.objects.create(payout=paid, amount=2550, status="succeeded", stripe_reversal_id="trr_1")
    Payout.objects.create(session=coming, mentor=mentor, currency="usd", amount=10200, status="scheduled",
                          payable_at=coming.ends_at + timedelta(hours=48))

    page = signed_in(mentor.user).get("/mentor/payouts").content.decode()

    assert page.count('data-testid="payout-row"') == 2
    assert "sent, partly taken back" in page and "scheduled" in page
    assert "102.00 USD (25.50 USD taken back)" in page
    assert 'data-testid="summary-paid-out">76.50 USD' in page and 'data-testid="summary-waiting">102.00 USD' in page
    assert 'data-testid="summary-earned">178.50 USD' in page
    assert "The bank account has been closed." in page


def test_connect_sends_the_mentor_to_stripes_onboarding(live_server, stripe_sandbox, settings):
    settings.FRONTEND_URL = live_server.url
    mentor = make_mentor()

    response = signed_in(mentor.user).post("/mentor/payouts/onboarding")

    account = PayoutAccount.objects.get(mentor=mentor)
    assert response.status_code == 302 and response.url.startswith(f"{stripe_sandbox.api_base}/setup/e/")
    assert account.stripe_account_id in response.url
    # Stripe's refresh_url (a used or expired link) gets a new link for the same account.
    again = signed_in(mentor.user).get("/mentor/payouts/onboarding/refresh")
    assert again.url != response.url and account.stripe_account_id in again.url
    assert PayoutAccount.objects.count() == 1
