"""Flow 9: mentors connect a Stripe account and are paid one transfer per session that took
place; refunds before shrink it, refunds after reverse the mentor's share, disputes hold it.

The stack of the other flow tests (live API, the sandbox delivering to both webhook
endpoints, a real Celery worker). Time passes through PAYOUT_DELAY_HOURS: a negative delay
makes a session booked days ahead payable now. payouts_run is called here as beat calls it.
"""
import importlib
import io
import pkgutil
import threading
from datetime import timedelta

import pytest
from django.apps import apps
from django.core import mail
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask

from backend.models import Payout, PayoutAccount, PayoutReversal, Session, WebhookEvent
from backend.services.installation import installation
from backend.services.payouts import mentor_share, payouts_retry, payouts_run
from backend.tasks.payouts import payouts_run_task
from tests.conftest import CONNECT_WEBHOOK_SECRET, WEBHOOK_SECRET
from tests.factories import future_slot, login, make_mentor, make_user
from tests.flows.conftest import charge_of, paid_session, wait_for
from tests.webhooks import signed, stripe_event

pytestmark = pytest.mark.django_db(transaction=True)

RATE = 12000  # a 60-minute session: 120.00 USD, the mentor's share 102.00 at 15%


@pytest.fixture
def payouts(payments, settings):
    """The flows' stack, with every booked session "taken place" (payable now)."""
    settings.PAYOUT_DELAY_HOURS = -24 * 30
    settings.PLATFORM_FEE_PERCENT = 15
    return payments


def connected_mentor(client, sandbox, outcome: str | None = "complete", **fields):
    """A mentor with a payout account made through the API and onboarded at Stripe (or not)."""
    mentor = make_mentor(hourly_rate=RATE, **fields)
    response = client.post("/api/mentors/me/payout-account", **login(client, mentor.user))
    assert response.status_code == 200, response.content
    account = PayoutAccount.objects.get(mentor=mentor)
    if outcome:
        sandbox.onboard_account(account.stripe_account_id, outcome)
    if outcome == "complete":
        wait_for(lambda: PayoutAccount.objects.get(pk=account.pk).payouts_enabled, message="account enabled")
    return mentor


def transfers_of(sandbox, session):
    return sandbox.stripe_client().v1.transfers.list(params={"transfer_group": f"session_{session.pk}"}).data


def payout_of(session) -> Payout:
    return Payout.objects.get(session=session)


def run_payouts(session, status: str) -> Payout:
    """payouts_run as beat runs it, then the payout's status. A run the worker started meanwhile
    (an account became ready) may hold the payout at that moment: wait for what either makes."""
    payouts_run()
    return wait_for(lambda: Payout.objects.filter(session=session, status=status).first(),
                    message=f"session {session.pk}'s payout {status}")


def me(client, user) -> dict:
    return client.get("/api/auth/me", **login(client, user)).json()


# ---- The payout account -----------------------------------------------------------------


def test_a_mentor_gets_one_account_and_a_fresh_onboarding_link_each_time(client, payouts):
    mentor, mentee = make_mentor(), make_user()
    headers = login(client, mentor.user)
    assert client.get("/api/mentors/me/payout-account", **headers).json()["status"] == "none"

    first = client.post("/api/mentors/me/payout-account", **headers).json()["onboarding_url"]
    second = client.post("/api/mentors/me/payout-account", **headers).json()["onboarding_url"]

    assert first != second and first.startswith(payouts.api_base + "/setup/")
    account = PayoutAccount.objects.get(mentor=mentor)
    assert account.stripe_account_id in first and account.stripe_account_id in second
    stripe_account = payouts.stripe_client().v1.accounts.retrieve(account.stripe_account_id)
    assert stripe_account.metadata["mentor_id"] == str(mentor.pk) and stripe_account.email == mentor.user.email
    state = client.get("/api/mentors/me/payout-account", **headers).json()
    assert (state["status"], state["payouts_enabled"], state["charges_enabled"]) == ("pending", False, False)
    assert "external_account" in state["requirements_due"]
    for method in (client.get, client.post):
        assert method("/api/mentors/me/payout-account", **login(client, mentee)).status_code == 403
        assert method("/api/mentors/me/payout-account").status_code == 401
    assert client.get("/api/mentors/me/payouts", **login(client, mentee)).status_code == 403


def test_onboarding_completed_at_stripe_enables_the_account_through_the_connect_webhook(client, payouts):
    mentor = connected_mentor(client, payouts, outcome=None)
    account = PayoutAccount.objects.get(mentor=mentor)

    payouts.onboard_account(account.stripe_account_id, "complete")

    event = wait_for(lambda: WebhookEvent.objects.filter(type="account.updated", status="processed").first(),
                     message="account.updated processed")
    assert event.payload["account"] == account.stripe_account_id
    state = client.get("/api/mentors/me/payout-account", **login(client, mentor.user)).json()
    assert (state["status"], state["payouts_enabled"], state["charges_enabled"], state["requirements_due"]) == (
        "enabled", True, True, [])


def test_requirements_left_due_keep_the_account_pending_and_say_what_is_missing(client, payouts):
    mentor = connected_mentor(client, payouts, outcome="requirements_due")
    wait_for(lambda: PayoutAccount.objects.get(mentor=mentor).details_submitted, message="account.updated mirrored")

    state = client.get("/api/mentors/me/payout-account", **login(client, mentor.user)).json()

    assert state["status"] == "pending"
    assert state["requirements_due"] == ["external_account", "individual.verification.document"]


def test_an_account_stripe_disables_or_the_mentor_disconnects_is_restricted(client, payouts):
    disabled, disconnected = connected_mentor(client, payouts), connected_mentor(client, payouts)

    payouts.disable_account(PayoutAccount.objects.get(mentor=disabled).stripe_account_id, "rejected.fraud")
    payouts.deauthorize_account(PayoutAccount.objects.get(mentor=disconnected).stripe_account_id)

    wait_for(lambda: not PayoutAccount.objects.get(mentor=disabled).payouts_enabled, message="disabled mirrored")
    wait_for(lambda: PayoutAccount.objects.get(mentor=disconnected).deauthorized_at, message="deauthorized")
    state = client.get("/api/mentors/me/payout-account", **login(client, disabled.user)).json()
    assert (state["status"], state["disabled_reason"]) == ("restricted", "rejected.fraud")
    assert client.get("/api/mentors/me/payout-account", **login(client, disconnected.user)).json()["status"] == \
        "restricted"
    again = client.post("/api/mentors/me/payout-account", **login(client, disconnected.user))
    assert (again.status_code, again.json()["code"]) == (409, "payout_account_disconnected")
    wait_for(lambda: any("disconnected" in m.subject for m in mail.outbox), message="admins told")


def test_connect_events_are_verified_with_their_own_secret_and_unknown_accounts_are_ignored(client, payouts, settings):
    event = stripe_event("account.updated", data_object={"id": "acct_someone_else", "object": "account"})
    event["account"] = "acct_someone_else"
    body, signature = signed(event, CONNECT_WEBHOOK_SECRET)
    _, platform_signature = signed(event, WEBHOOK_SECRET)

    refused = client.post("/api/payments/connect-webhook", body, content_type="application/json",
                          HTTP_STRIPE_SIGNATURE=platform_signature)
    stored = client.post("/api/payments/connect-webhook", body, content_type="application/json",
                         HTTP_STRIPE_SIGNATURE=signature)
    again = client.post("/api/payments/connect-webhook", body, content_type="application/json",
                        HTTP_STRIPE_SIGNATURE=signature)

    assert refused.status_code == 400 and refused.json()["code"] == "webhook_rejected"
    assert (stored.status_code, stored.json()) == (200, {"received": True, "duplicate": False})
    assert (again.status_code, again.json()) == (200, {"received": True, "duplicate": True})
    row = wait_for(lambda: WebhookEvent.objects.filter(stripe_event_id=event["id"], status="ignored").first(),
                   message="the unknown account's event ignored")
    assert "not one of ours" in row.last_error
    # A rotation: the new secret and the old one both verify.
    settings.STRIPE_CONNECT_WEBHOOK_SECRETS = ["whsec_new_connect", CONNECT_WEBHOOK_SECRET]
    rotated = stripe_event("payout.failed", data_object={"id": "po_1", "object": "payout"})
    rotated["account"] = "acct_someone_else"
    body, signature = signed(rotated, "whsec_new_connect")
    assert client.post("/api/payments/connect-webhook", body, content_type="application/json",
                       HTTP_STRIPE_SIGNATURE=signature).status_code == 200


# ---- Paying ------------------------------------------------------------------------------


def test_a_session_that_took_place_is_paid_out_once_even_when_two_runs_race(client, payouts):
    mentor, mentee = connected_mentor(client, payouts), make_user()
    session = paid_session(client, payouts, mentee, mentor)

    results = []
    runs = [threading.Thread(target=lambda: results.append(payouts_run())) for _ in range(2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    run_payouts(session, "paid")  # a third, later: nothing left to do

    transfers = transfers_of(payouts, session)
    assert [t.amount for t in transfers] == [mentor_share(12000)] == [10200]
    account = PayoutAccount.objects.get(mentor=mentor)
    payout = payout_of(session)
    transfer = transfers[0]
    assert (transfer.destination, transfer.source_transaction, transfer.currency) == (
        account.stripe_account_id, charge_of(payouts, session.stripe_payment_id), "usd")
    assert transfer.metadata["payout_id"] == str(payout.pk)
    assert (payout.status, payout.stripe_transfer_id, payout.amount, payout.fee) == ("paid", transfer.id, 10200, 1800)
    assert payouts.account_balance(account.stripe_account_id) == 10200
    assert sum(r["paid"] for r in results) <= 1 and len(results) == 2
    wait_for(lambda: any(m.subject.startswith("Payout sent") and mentor.user.email in m.to for m in mail.outbox),
             message="the payout email")
    assert "102.00 USD" in next(m.body for m in mail.outbox if m.subject.startswith("Payout sent"))
    listed = client.get("/api/mentors/me/payouts", **login(client, mentor.user)).json()
    assert listed["items"] == [{
        "session_id": session.pk, "session_title": session.title, "amount": 10200, "currency": "usd",
        "status": "paid", "amount_reversed": 0, "transfer_id": transfer.id,
        "payable_at": listed["items"][0]["payable_at"], "paid_at": listed["items"][0]["paid_at"]}]
    stats = me(client, mentor.user)["mentor_stats"]
    assert (stats["earned"], stats["paid_out"], stats["waiting"], stats["reversed"], stats["debt"]) == (
        10200, 10200, 0, 0, 0)


def test_a_session_not_yet_taken_place_is_scheduled_and_follows_its_end(client, payouts, settings):
    settings.PAYOUT_DELAY_HOURS = 48
    mentor, mentee = connected_mentor(client, payouts), make_user()
    session = paid_session(client, payouts, mentee, mentor)

    payout = run_payouts(session, "scheduled")

    assert (payout.amount, payout.payable_at) == (10200, session.ends_at + timedelta(hours=48))
    assert transfers_of(payouts, session) == []
    # The session moves (a reschedule): the payout follows its new end at the next run.
    earlier = timedelta(days=1)
    Session.objects.filter(pk=session.pk).update(scheduled_at=session.scheduled_at - earlier,
                                                 ends_at=session.ends_at - earlier)
    payouts_run()
    wait_for(lambda: payout_of(session).payable_at == session.ends_at - earlier + timedelta(hours=48),
             message="payable_at follows the new end")
    stats = me(client, mentor.user)["mentor_stats"]
    assert (stats["earned"], stats["waiting"], stats["paid_out"]) == (10200, 10200, 0)


def test_a_payout_waits_for_an_account_not_ready_and_goes_when_stripe_enables_it(client, payouts):
    mentor, mentee = connected_mentor(client, payouts, outcome="requirements_due"), make_user()
    session = paid_session(client, payouts, mentee, mentor)
    wait_for(lambda: PayoutAccount.objects.get(mentor=mentor).details_submitted, message="account.updated")

    run_payouts(session, "waiting")
    assert transfers_of(payouts, session) == []
    listed = client.get("/api/mentors/me/payouts", **login(client, mentor.user)).json()["items"]
    assert [p["status"] for p in listed] == ["waiting"]

    # The mentor finishes onboarding: account.updated sends what waits, without waiting for beat.
    payouts.onboard_account(PayoutAccount.objects.get(mentor=mentor).stripe_account_id, "complete")

    wait_for(lambda: payout_of(session).status == "paid", message="the waiting payout sent")
    assert [t.amount for t in transfers_of(payouts, session)] == [10200]


def test_a_mentor_without_any_account_has_payouts_waiting_never_lost(client, payouts):
    mentor, mentee = make_mentor(hourly_rate=RATE), make_user()
    session = paid_session(client, payouts, mentee, mentor)

    run_payouts(session, "waiting")

    stats = me(client, mentor.user)["mentor_stats"]
    assert (stats["waiting"], stats["paid_out"]) == (10200, 0)


# ---- Refunds and disputes ---------------------------------------------------------------


def test_a_refund_before_the_payout_shrinks_it(client, payouts):
    mentor, mentee = connected_mentor(client, payouts), make_user()
    session = paid_session(client, payouts, mentee, mentor)
    payouts.refund_charge(charge_of(payouts, session.stripe_payment_id), amount=2000)
    wait_for(lambda: Session.objects.get(pk=session.pk).refunded_amount == 2000, message="partial refund recorded")

    run_payouts(session, "paid")

    assert [t.amount for t in transfers_of(payouts, session)] == [mentor_share(10000)] == [8500]
    assert (payout_of(session).amount, payout_of(session).fee) == (8500, 1500)


def test_a_full_refund_before_the_payout_means_no_transfer(client, payouts):
    mentor, mentee = connected_mentor(client, payouts), make_user()
    session = paid_session(client, payouts, mentee, mentor)
    payouts.refund_charge(charge_of(payouts, session.stripe_payment_id))
    wait_for(lambda: Session.objects.get(pk=session.pk).payment_status == "refunded", message="refunded")

    payouts_run()

    assert transfers_of(payouts, session) == []
    assert Payout.objects.filter(session=session).values_list("status", "amount").first() in (None, ("cancelled", 0))


def test_a_refund_after_the_payout_reverses_the_mentors_share_of_it(client, payouts):
    mentor, mentee = connected_mentor(client, payouts), make_user()
    session = paid_session(client, payouts, mentee, mentor)
    run_payouts(session, "paid")
    transfer = transfers_of(payouts, session)[0]

    payouts.refund_charge(charge_of(payouts, session.stripe_payment_id), amount=3000)

    payout = wait_for(lambda: Payout.objects.filter(session=session, status="partially_reversed").first(),
                      message="the reversal")
    reversal = PayoutReversal.objects.get(payout=payout)
    # The mentor keeps the share of the 90.00 kept (76.50); 102.00 - 76.50 = 25.50 goes back.
    assert (reversal.amount, reversal.status) == (10200 - mentor_share(9000), "succeeded") == (2550, "succeeded")
    stripe_reversals = payouts.stripe_client().v1.transfers.reversals.list(transfer.id).data
    assert [(r.id, r.amount, r.metadata["reversal_id"]) for r in stripe_reversals] == [
        (reversal.stripe_reversal_id, 2550, str(reversal.pk))]
    assert payout.amount_reversed == 2550
    wait_for(lambda: any(m.subject.startswith("Payout taken back") for m in mail.outbox), message="reversal email")
    stats = me(client, mentor.user)["mentor_stats"]
    assert (stats["earned"], stats["paid_out"], stats["reversed"]) == (7650, 7650, 2550)
    # A second refund of the rest reverses the rest: nothing is left with the mentor.
    payouts.refund_charge(charge_of(payouts, session.stripe_payment_id))
    wait_for(lambda: payout_of(session).status == "reversed", message="fully reversed")
    assert payout_of(session).amount_reversed == 10200
    assert payouts.account_balance(PayoutAccount.objects.get(mentor=mentor).stripe_account_id) == 0


def test_a_reversal_the_mentors_balance_cannot_cover_becomes_a_debt_netted_off_the_next_payout(client, payouts):
    mentor, mentee = connected_mentor(client, payouts), make_user()
    account = PayoutAccount.objects.get(mentor=mentor)
    first = paid_session(client, payouts, mentee, mentor)
    run_payouts(first, "paid")
    payouts.pay_out_balance(account.stripe_account_id, "paid")  # the mentor's money went to their bank

    payouts.refund_charge(charge_of(payouts, first.stripe_payment_id), amount=4000)

    reversal = wait_for(lambda: PayoutReversal.objects.filter(payout__session=first, status="failed").first(),
                        message="the refused reversal")
    assert (reversal.amount, reversal.failure_code) == (10200 - mentor_share(8000), "balance_insufficient") == (
        3400, "balance_insufficient")
    wait_for(lambda: [m for m in mail.outbox if "owes 3400" in m.subject], message="admins alerted")
    assert me(client, mentor.user)["mentor_stats"]["debt"] == 3400

    second = paid_session(client, payouts, mentee, mentor, scheduled_at=future_slot(days=4))
    run_payouts(second, "paid")

    assert [t.amount for t in transfers_of(payouts, second)] == [10200 - 3400]
    payout = payout_of(second)
    assert (payout.amount, payout.debt_recovered) == (6800, 3400)
    stats = me(client, mentor.user)["mentor_stats"]
    assert stats["debt"] == 0 and stats["paid_out"] == 10200 + 6800
    assert len([m for m in mail.outbox if "owes" in m.subject]) == 1  # alerted once


def test_an_open_dispute_holds_the_payout_and_won_it_goes(client, payouts):
    mentor, mentee = connected_mentor(client, payouts), make_user()
    session = paid_session(client, payouts, mentee, mentor)
    dispute = payouts.dispute_charge(charge_of(payouts, session.stripe_payment_id))
    wait_for(lambda: Payout.objects.filter(session=session, status="held").exists(), message="held")

    run_payouts(session, "held")
    assert transfers_of(payouts, session) == []

    payouts.close_dispute(dispute["id"], "won")

    wait_for(lambda: payout_of(session).status == "paid", message="paid once won")
    assert [t.amount for t in transfers_of(payouts, session)] == [10200]


def test_a_lost_dispute_means_no_payout_and_after_a_payout_a_reversal(client, payouts):
    ready, not_ready, mentee = connected_mentor(client, payouts), make_mentor(hourly_rate=RATE), make_user()
    paid = paid_session(client, payouts, mentee, ready)
    unpaid = paid_session(client, payouts, mentee, not_ready, scheduled_at=future_slot(days=4))
    run_payouts(paid, "paid")
    assert payout_of(unpaid).status == "waiting"
    disputes = [payouts.dispute_charge(charge_of(payouts, s.stripe_payment_id)) for s in (paid, unpaid)]
    wait_for(lambda: payout_of(unpaid).status == "held" and payout_of(paid).dispute == "open", message="disputes")

    for dispute in disputes:
        payouts.close_dispute(dispute["id"], "lost")

    wait_for(lambda: payout_of(paid).status == "reversed", message="the paid one reversed")
    wait_for(lambda: payout_of(unpaid).dispute == "lost", message="the unpaid one's dispute lost")
    assert run_payouts(unpaid, "cancelled").amount == 0
    assert payout_of(paid).amount_reversed == 10200
    assert PayoutReversal.objects.get(payout__session=paid).reason.startswith("the mentee's bank decided")


# ---- Failures and crashes ---------------------------------------------------------------


def test_a_transfer_stripe_refuses_fails_for_an_admin_who_retries_it(client, payouts, settings):
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    mentor, mentee = connected_mentor(client, payouts), make_user()
    session = paid_session(client, payouts, mentee, mentor)
    payouts.set_api_faults(path_prefix="/v1/transfers", error_status=400, error_count=1)

    payout = run_payouts(session, "failed")

    assert "refused" in payout.last_error and transfers_of(payouts, session) == []
    wait_for(lambda: any(f"Payout {payout.pk}" in m.subject for m in mail.outbox), message="admin alert")
    payouts_retry(payout_ids=[payout.pk])
    run_payouts(session, "paid")
    assert len(transfers_of(payouts, session)) == 1


def test_a_refund_landing_while_the_transfer_is_on_its_way_is_taken_into_account(client, payouts, settings):
    """The amount is decided, Stripe is away, a Dashboard refund lands meanwhile: Stripe refuses
    the old amount (the charge holds less now); the next run decides again and pays the share."""
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    mentor, mentee = connected_mentor(client, payouts), make_user()
    session = paid_session(client, payouts, mentee, mentor)
    payouts.set_api_faults(path_prefix="/v1/transfers", error_status=503, error_count=1000)
    payouts_run()
    wait_for(lambda: payout_of(session).sending_since is not None, message="the amount decided")
    assert payout_of(session).amount == 10200

    payouts.refund_charge(charge_of(payouts, session.stripe_payment_id), amount=4000)
    wait_for(lambda: Session.objects.get(pk=session.pk).refunded_amount == 4000, message="refund recorded")
    payouts.set_api_faults()
    payouts_run()  # refused: 102.00 is more than the charge holds now
    payout = run_payouts(session, "paid")

    assert [t.amount for t in transfers_of(payouts, session)] == [mentor_share(8000)] == [6800]
    assert payout.refusals == 1 and not PayoutReversal.objects.filter(payout=payout).exists()


def test_a_runner_that_never_hears_stripes_answer_still_makes_one_transfer(client, payouts, settings):
    """Stripe makes the transfer, its answer never arrives (a worker killed between the Transfer
    call and the commit looks the same to Stripe): the payout stays frozen and the next run
    gets the same transfer back, not a second one."""
    mentor, mentee = connected_mentor(client, payouts), make_user()
    session = paid_session(client, payouts, mentee, mentor)
    settings.STRIPE_TIMEOUT_SECONDS, settings.STRIPE_MAX_NETWORK_RETRIES = 1.0, 0
    payouts.set_api_faults(path_prefix="/v1/transfers", latency_ms=2500, latency_phase="after")

    payouts_run()

    wait_for(lambda: len(transfers_of(payouts, session)) == 1, message="the transfer made at Stripe")
    payout = payout_of(session)
    assert payout.sending_since is not None and payout.stripe_transfer_id is None and payout.status == "scheduled"
    payouts.set_api_faults()
    run_payouts(session, "paid")
    payouts_run()
    transfers = transfers_of(payouts, session)
    assert len(transfers) == 1 and payout_of(session).stripe_transfer_id == transfers[0].id


def test_payouts_run_command_and_schedule_exist(client, payouts):
    mentor, mentee = connected_mentor(client, payouts), make_user()
    session = paid_session(client, payouts, mentee, mentor)
    out = io.StringIO()

    call_command("payouts_run", "--mentor", str(mentor.pk), stdout=out)

    assert "payouts_run: created" in out.getvalue()
    wait_for(lambda: payout_of(session).status == "paid", message="paid")
    assert len(transfers_of(payouts, session)) == 1


def test_beat_runs_payouts_every_minute_by_its_migration():
    import backend.migrations

    # Transactional tests flush the migration's rows, so its function is run again here.
    name = next(m.name for m in pkgutil.iter_modules(backend.migrations.__path__) if m.name.endswith("beat_payouts_run"))
    importlib.import_module(f"backend.migrations.{name}").schedule(apps, None)
    job = PeriodicTask.objects.get(name="payouts_run")
    assert (job.task, job.enabled, job.interval.every, job.interval.period) == ("payouts_run", True, 1, "minutes")
    assert payouts_run_task.name == "payouts_run"


def test_payments_audit_checks_payouts_against_stripes_transfers(client, payouts):
    mentor, mentee = connected_mentor(client, payouts), make_user()
    session = paid_session(client, payouts, mentee, mentor)
    run_payouts(session, "paid")
    payouts.refund_charge(charge_of(payouts, session.stripe_payment_id), amount=1000)
    wait_for(lambda: payout_of(session).status == "partially_reversed", message="reversed")
    out = io.StringIO()
    call_command("payments_audit", "--no-mail", stdout=out)
    assert "audit discrepancies: 0" in out.getvalue(), out.getvalue()

    # A second transfer for the same payout, made behind our back: doubled.
    payout = payout_of(session)
    account = PayoutAccount.objects.get(mentor=mentor).stripe_account_id
    payouts.stripe_client().v1.transfers.create(params={
        "amount": 100, "currency": "usd", "destination": account,
        "metadata": {"install_id": installation().install_id, "payout_id": str(payout.pk)}})
    out = io.StringIO()
    with pytest.raises(SystemExit):
        call_command("payments_audit", "--no-mail", stdout=out)
    assert "transfer_doubled: payout" in out.getvalue()
