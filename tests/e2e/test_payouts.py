"""Issue 21's "Done when": mentors paid through Stripe Connect, on the whole stack.

PostgreSQL, Redis, a real Celery worker (pytest-celery's, on the suite's broker), a real
`celery beat` process sending `payouts_run` every 2 seconds from django-celery-beat's table,
the API on the live server and the Stripe sandbox delivering to both webhook endpoints. The
mentor onboards in Chromium on the sandbox's hosted page. Time passes through settings
(PAYOUT_DELAY_HOURS, read by the worker at every run), never through sleeps.
"""
import pytest
from django.core import mail

from backend.models import Payout, PayoutAccount, PayoutReversal, Session
from backend.services.payouts import mentor_share
from tests.factories import PASSWORD, book, future_slot, login, make_mentor, make_user
from tests.polling import wait_for
from tests.stack import CeleryProcess

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

RATE = 12000  # 60 minutes: 120.00 USD; the mentor's share at 15 % is 102.00
BEAT_EVERY_SECONDS = 2
TAKEN_PLACE = -24 * 30  # hours: every session booked in the coming days "took place"


@pytest.fixture
def stack(live_server, stripe_sandbox, celery_session_worker, settings):
    """The flows' stack plus a real beat process; payouts scheduled 48 h after each session."""
    settings.FRONTEND_URL = live_server.url
    settings.TASK_RETRY_BASE_SECONDS = 0.1
    settings.PAYOUT_DELAY_HOURS = 48
    settings.PLATFORM_FEE_PERCENT = 15
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    every, _ = IntervalSchedule.objects.get_or_create(every=BEAT_EVERY_SECONDS, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.update_or_create(name="payouts_run", defaults={"task": "payouts_run", "interval": every})
    with CeleryProcess("beat", name="payouts-beat") as beat:
        stripe_sandbox.beat = beat
        yield stripe_sandbox


def beat_sends(beat) -> int:
    """How many times the beat process has sent payouts_run so far."""
    return beat.log().count("Sending due task payouts_run")


def pay(client, sandbox, mentee, mentor, *, card="4242424242424242", days=3) -> Session:
    response = book(client, login(client, mentee), mentor, scheduled_at=future_slot(days=days))
    assert response.status_code == 200, response.content
    cs_id = response.json()["session_id"]
    assert sandbox.pay(cs_id, card=card)["outcome"] == "succeeded"
    return wait_for(lambda: Session.objects.filter(stripe_checkout_session_id=cs_id, payment_status="paid").first(),
                    timeout=30, message=f"session of {cs_id} paid")


def charge_of(sandbox, session) -> str:
    return sandbox.stripe_client().v1.payment_intents.retrieve(session.stripe_payment_id).latest_charge


def transfers_of(sandbox, session):
    return sandbox.stripe_client().v1.transfers.list(params={"transfer_group": f"session_{session.pk}"}).data


def payout_status(session, status: str, timeout: float = 30) -> Payout:
    return wait_for(lambda: Payout.objects.filter(session=session, status=status).first(), timeout=timeout,
                    message=f"session {session.pk}'s payout {status}")


def log_in(page, base_url: str, email: str) -> None:
    page.goto(f"{base_url}/login?next=/mentor/payouts")
    page.fill("#id_email", email)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base_url}/mentor/payouts")


def onboard_in_the_browser(page, base_url: str, button: str) -> None:
    """From our page to Stripe's hosted onboarding and back to our return_url."""
    page.get_by_test_id("connect-payouts").click()
    page.wait_for_selector('[data-testid="onboarding-account"]')
    page.get_by_test_id(button).click()
    page.wait_for_url(f"{base_url}/mentor/payouts?onboarding=return")


@pytest.mark.browser
def test_a_mentor_onboards_in_the_browser_and_is_paid_once_after_the_session_took_place(
        client, stack, chromium, settings, live_server):
    sandbox, base = stack, live_server.url
    mentor, mentee = make_mentor(name="Ada Lovelace", hourly_rate=RATE), make_user()
    context = chromium.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        # The mentor connects payouts in Chromium and leaves requirements due: not ready.
        log_in(page, base, mentor.user.email)
        assert page.get_by_test_id("payout-account").get_attribute("data-status") == "none"
        assert page.get_by_test_id("payouts-empty").is_visible()
        onboard_in_the_browser(page, base, "onboarding-leave-due")
        assert page.get_by_test_id("payout-account").get_attribute("data-status") == "pending"
        assert "external_account" in page.get_by_test_id("requirements-due").inner_text()
        account = PayoutAccount.objects.get(mentor=mentor)

        # The mentee books and pays; beat's runs schedule the payout, nothing is sent yet.
        session = pay(client, sandbox, mentee, mentor)
        payout_status(session, "scheduled")
        assert transfers_of(sandbox, session) == []

        # Time passes: the session took place. The account is not ready: it waits, never lost.
        settings.PAYOUT_DELAY_HOURS = TAKEN_PLACE
        payout_status(session, "waiting")
        page.reload()
        row = page.get_by_test_id("payout-row").filter(has_text=session.title)
        assert row.get_by_test_id("payout-status").inner_text() == "waiting for your payout account"
        assert transfers_of(sandbox, session) == []

        # The mentor finishes onboarding in the browser: the payout goes, once.
        onboard_in_the_browser(page, base, "onboarding-complete")
        assert page.get_by_test_id("payout-account").get_attribute("data-status") == "enabled"
        payout = payout_status(session, "paid")
        wait_for(lambda: Payout.objects.filter(status="paid").count() == 1, message="one paid payout")
        transfers = transfers_of(sandbox, session)
        assert [(t.amount, t.destination) for t in transfers] == [(mentor_share(12000), account.stripe_account_id)]
        assert transfers[0].source_transaction == charge_of(sandbox, session) and payout.stripe_transfer_id == transfers[0].id
        assert sandbox.account_balance(account.stripe_account_id) == 10200
        page.reload()
        assert page.get_by_test_id("payout-row").get_by_test_id("payout-status").inner_text() == "sent"
        assert "102.00 USD" in page.get_by_test_id("summary-paid-out").inner_text()
        wait_for(lambda: any(m.subject.startswith("Payout sent") for m in mail.outbox), message="payout email")

        # Beat keeps sending payouts_run: still exactly one transfer.
        sent = beat_sends(sandbox.beat)
        wait_for(lambda: beat_sends(sandbox.beat) >= sent + 2, message="two more runs from beat")
        assert len(sandbox.stripe_client().v1.transfers.list().data) == 1

        # A refund after the payout (the Dashboard, 30.00): the mentor's share of it is reversed.
        sandbox.refund_charge(charge_of(sandbox, session), amount=3000)
        payout = payout_status(session, "partially_reversed")
        reversal = PayoutReversal.objects.get(payout=payout)
        assert (reversal.amount, reversal.status) == (10200 - mentor_share(9000), "succeeded") == (2550, "succeeded")
        assert sandbox.account_balance(account.stripe_account_id) == 10200 - 2550
        page.reload()
        assert "sent, partly taken back" in page.get_by_test_id("payout-row").inner_text()
        assert len(sandbox.stripe_client().v1.transfers.list().data) == 1
    finally:
        context.close()


def test_beat_pays_the_shrunk_share_after_a_refund_and_holds_a_disputed_session(client, stack, settings):
    sandbox = stack
    mentor, mentee = make_mentor(hourly_rate=RATE), make_user()
    response = client.post("/api/mentors/me/payout-account", **login(client, mentor.user))
    assert response.status_code == 200, response.content
    account = PayoutAccount.objects.get(mentor=mentor)
    sandbox.onboard_account(account.stripe_account_id, "complete")
    wait_for(lambda: PayoutAccount.objects.get(pk=account.pk).payouts_enabled, message="account enabled")

    refunded = pay(client, sandbox, mentee, mentor, days=3)
    disputed = pay(client, sandbox, mentee, mentor, days=4, card="4000000000000259")  # disputed after paying
    # Before the session takes place: a partial refund (50.00) and a dispute.
    sandbox.refund_charge(charge_of(sandbox, refunded), amount=5000)
    wait_for(lambda: Session.objects.get(pk=refunded.pk).refunded_amount == 5000, message="refund recorded")
    payout_status(disputed, "held")

    settings.PAYOUT_DELAY_HOURS = TAKEN_PLACE  # time passes

    payout_status(refunded, "paid")
    assert [t.amount for t in transfers_of(sandbox, refunded)] == [mentor_share(7000)] == [5950]
    payout_status(disputed, "held")
    assert transfers_of(sandbox, disputed) == []
    # The dispute is won: the held payout goes.
    dispute = sandbox.stripe_client().v1.disputes.list(params={"payment_intent": disputed.stripe_payment_id}).data[0]
    sandbox.close_dispute(dispute.id, "won")
    payout_status(disputed, "paid")
    assert [t.amount for t in transfers_of(sandbox, disputed)] == [10200]
    assert sandbox.account_balance(account.stripe_account_id) == 5950 + 10200
    assert len(sandbox.stripe_client().v1.transfers.list().data) == 2
    stats = client.get("/api/auth/me", **login(client, mentor.user)).json()["mentor_stats"]
    assert (stats["paid_out"], stats["waiting"], stats["earned"]) == (16150, 0, 16150)
