"""The payments audit (issue 9): real discrepancies made through the sandbox, reported
by `manage.py payments_audit` with a non-zero exit and one mail to the admins; a
settled state reports none."""
from datetime import datetime, timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from backend.models import Checkout, Mentor, Refund, Session, WebhookEvent
from backend.tasks import payments_audit_task
from tests.factories import future_slot, login, make_mentor, make_session, make_user
from tests.flows.conftest import charge_of, checkout, paid_session, wait_for
from worker import app as celery_app

pytestmark = pytest.mark.django_db(transaction=True)


def audit_mails() -> list:
    return [m for m in mail.outbox if "Payments audit" in m.subject]


def audit(capsys) -> tuple[int, str]:
    """Run the command as an operator would; (exit status, what it printed)."""
    try:
        call_command("payments_audit", "--days", "1")
        status = 0
    except SystemExit as exit:
        status = exit.code
    return status, capsys.readouterr().out


def test_a_settled_state_audits_clean(client, payments, capsys):
    mentor, mentee = make_mentor(hourly_rate=9000), make_user()
    kept = paid_session(client, payments, mentee, mentor)
    refunded = paid_session(client, payments, mentee, mentor, scheduled_at=future_slot(days=4))
    payments.refund_charge(charge_of(payments, refunded.stripe_payment_id), amount=1000)
    wait_for(lambda: Session.objects.get(pk=refunded.pk).refunded_amount == 1000, message="partial refund recorded")
    payments.wait_until_delivered()

    status, output = audit(capsys)

    assert status == 0, output
    assert "audited 2 checkouts, 2 sessions, 1 refunds" in output and "audit discrepancies: 0" in output
    assert not audit_mails()


def test_a_dashboard_refund_whose_webhooks_never_came_is_reported_and_mailed_once(client, payments, capsys):
    mentor, mentee = make_mentor(hourly_rate=13000), make_user()
    session = paid_session(client, payments, mentee, mentor)
    payments.wait_until_delivered()
    payments.pause()
    refund = payments.refund_charge(charge_of(payments, session.stripe_payment_id), amount=6500)

    status, output = audit(capsys)

    assert status == 1
    assert f"refunded_amount: session {session.pk} ({session.stripe_payment_id}): refunded 0.00 USD here, 65.00 USD at Stripe" in output
    assert f"Stripe refund {refund['id']} (succeeded, 65.00 USD) has no refund row here" in output
    assert "audit discrepancies: 2" in output
    assert [m.subject for m in audit_mails()] == ["[MyRoadmap] Payments audit: 2 discrepancies"]
    assert refund["id"] in audit_mails()[0].body and audit_mails()[0].to == ["admin@myroadmap.local"]

    # Once the events arrive, the ledger agrees again.
    payments.resume()
    wait_for(lambda: Session.objects.get(pk=session.pk).refunded_amount == 6500, message="refund recorded")
    payments.wait_until_delivered()
    assert audit(capsys)[0] == 0


def test_a_payment_whose_webhook_never_came_is_captured_without_a_session(client, payments, capsys):
    mentor, mentee = make_mentor(), make_user()
    payments.pause()
    cs_id = checkout(client, mentee, mentor)
    paid = payments.pay(cs_id, card="4242424242424242")

    status, output = audit(capsys)

    assert status == 1
    assert "captured_without_session: checkout " in output and f"({cs_id}): Stripe captured 120.00 USD " \
        f"(payment {paid['payment_intent']['id']}), refunded 0.00 USD, and we have no session" in output


def test_a_paid_session_stripe_does_not_know_is_reported(payments, capsys):
    session = make_session(mentor=make_mentor(), mentee=make_user(), stripe_payment_id="pi_not_at_stripe")

    status, output = audit(capsys)

    assert status == 1
    assert f"unknown_to_stripe: session {session.pk} (pi_not_at_stripe): paid here, but Stripe has no charge" in output


DAY = 24 * 3600
DECLINED = "4000000000000002"


def audit_between(capsys, since: datetime, until: datetime) -> tuple[int, str]:
    try:
        call_command("payments_audit", "--since", since.isoformat(), "--until", until.isoformat(), "--no-mail")
        status = 0
    except SystemExit as exit:
        status = exit.code
    return status, capsys.readouterr().out


# --- 1. A PaymentIntent with several charges ----------------------------------------------


def test_a_declined_card_then_a_good_one_on_the_same_checkout_audits_clean(client, payments, capsys):
    cs_id = checkout(client, make_user(), make_mentor())
    assert payments.pay(cs_id, card=DECLINED)["outcome"] == "declined"
    assert payments.pay(cs_id)["outcome"] == "succeeded"  # the same Checkout, the same PaymentIntent
    wait_for(lambda: Session.objects.filter(stripe_checkout_session_id=cs_id, payment_status="paid").exists())
    payments.wait_until_delivered()

    status, output = audit(capsys)

    assert status == 0, output
    assert "audit discrepancies: 0" in output


def test_a_payment_after_a_declined_card_that_no_session_records_is_reported(client, payments, capsys):
    payments.pause()  # its completion never reaches us
    cs_id = checkout(client, make_user(), make_mentor())
    payments.pay(cs_id, card=DECLINED)
    paid = payments.pay(cs_id)

    status, output = audit(capsys)

    assert status == 1
    assert f"captured_without_session: checkout {Checkout.objects.get().pk} ({cs_id}): Stripe captured 120.00 USD " \
        f"(payment {paid['payment_intent']['id']}), refunded 0.00 USD, and we have no session" in output
    payments.resume()


# --- 2. What changed at Stripe in the period, whenever the booking was made ------------------


def test_changes_at_stripe_days_after_the_booking_are_audited_in_the_period_they_happen(client, payments, capsys):
    """A Dashboard refund, a refund that fails, a debit that clears: each days after its
    booking, each with its events lost. The audit of the day they happen reports them, though
    every row of ours (and every Stripe object but the events) is days older than the period."""
    mentor, mentee = make_mentor(hourly_rate=9000), make_user()
    refunded_later = paid_session(client, payments, mentee, mentor, scheduled_at=future_slot(days=10, hour=9))
    cancelled = paid_session(client, payments, mentee, mentor, scheduled_at=future_slot(days=10, hour=12))
    assert client.post(f"/api/sessions/{cancelled.pk}/cancel", {}, content_type="application/json",
                       **login(client, mentee)).status_code == 200
    refund = wait_for(lambda: Refund.objects.filter(session=cancelled, status="succeeded").first(), message="refund")
    debit_cs = checkout(client, mentee, mentor, scheduled_at=future_slot(days=10, hour=15))
    payments.pay(debit_cs, method="bank_debit", outcome="succeeded", settle_after=3 * DAY)
    debit = wait_for(lambda: Session.objects.filter(stripe_checkout_session_id=debit_cs).first(), message="pending")
    payments.wait_until_delivered()
    wait_for(lambda: not WebhookEvent.objects.filter(status__in=["received", "processing"]).exists())
    booked_at = timezone.now()

    payments.pause()  # from here on, Stripe's events are lost to us
    payments.fail_refund(refund.stripe_refund_id, after=3 * DAY)  # the customer's bank returns it
    payments.advance_clock(3 * DAY)  # three days later at Stripe: the refund fails, the debit clears
    payments.refund_charge(charge_of(payments, refunded_later.stripe_payment_id), amount=3000)  # Dashboard
    assert payments.stripe_client().v1.refunds.retrieve(refund.stripe_refund_id).status == "failed"

    # The audit of that day: two days after the bookings, up to a day after the changes.
    status, output = audit_between(capsys, booked_at + timedelta(days=2), booked_at + timedelta(days=4))

    assert status == 1, output
    assert f"refunded_amount: session {refunded_later.pk} ({refunded_later.stripe_payment_id}): refunded 0.00 USD here, " \
        "30.00 USD at Stripe" in output
    assert f"refund_row: session {cancelled.pk} ({cancelled.stripe_payment_id}): refund {refund.pk} is succeeded " \
        f"90.00 USD here, Stripe's {refund.stripe_refund_id} is failed 90.00 USD" in output
    assert f"payment_status: session {debit.pk} ({debit.stripe_payment_id}): pending here, but Stripe's charge " \
        "succeeded" in output
    assert "audited 0 checkouts" in output  # none of them was booked in the period
    payments.resume()


# --- 3. A cancelled session whose refunds all failed ------------------------------------


def test_a_cancelled_session_whose_only_refund_failed_is_reported_not_refunded(client, payments, capsys):
    mentor, mentee = make_mentor(hourly_rate=9000), make_user()
    session = paid_session(client, payments, mentee, mentor, card="4000000000005126")
    assert client.post(f"/api/sessions/{session.pk}/cancel", {}, content_type="application/json",
                       **login(client, mentee)).status_code == 200
    wait_for(lambda: Refund.objects.filter(session=session, status="succeeded").exists(), message="refunded")
    payments.advance_clock(31)  # the card's bank refuses the refund
    failed = wait_for(lambda: Refund.objects.filter(session=session, status="failed").first(), message="failed")
    wait_for(lambda: Session.objects.filter(pk=session.pk, refunded_amount=0, payment_status="paid").exists())
    payments.wait_until_delivered()

    status, output = audit(capsys)

    assert status == 1, output
    assert f"not_refunded: session {session.pk} ({session.stripe_payment_id}): cancelled, 90.00 USD of 90.00 USD kept: no " \
        f"refund is on its way (refunds {failed.pk} failed)" in output
    assert "audit discrepancies: 1" in output  # the ledger agrees with Stripe: only the kept money is wrong


# --- 4. Lost disputes --------------------------------------------------------------------


def test_a_lost_dispute_lowers_the_mentors_earnings_and_the_audit_agrees(client, payments, capsys):
    mentor, mentee = make_mentor(hourly_rate=9000), make_user()
    kept = paid_session(client, payments, mentee, mentor, scheduled_at=future_slot(days=3))
    disputed = paid_session(client, payments, mentee, mentor, scheduled_at=future_slot(days=4))
    wait_for(lambda: Mentor.objects.get(pk=mentor.pk).total_earnings == 18000, message="both earned")
    dispute = payments.dispute_charge(charge_of(payments, disputed.stripe_payment_id))
    wait_for(lambda: Session.objects.get(pk=disputed.pk).is_disputed, message="flagged")

    payments.close_dispute(dispute["id"], "lost")

    wait_for(lambda: Mentor.objects.get(pk=mentor.pk).total_earnings == 9000, message="earnings lowered")
    assert Session.objects.get(pk=disputed.pk).dispute_lost_amount == 9000
    assert Session.objects.get(pk=kept.pk).dispute_lost_amount == 0
    wait_for(lambda: [m for m in mail.outbox if m.subject.endswith(f"Dispute lost on session {disputed.pk}")])
    payments.wait_until_delivered()
    status, output = audit(capsys)
    assert status == 0, output


def test_a_dispute_lost_without_its_events_is_reported(client, payments, capsys):
    session = paid_session(client, payments, make_user(), make_mentor())
    payments.wait_until_delivered()
    payments.pause()
    dispute = payments.dispute_charge(charge_of(payments, session.stripe_payment_id))
    payments.close_dispute(dispute["id"], "lost")

    status, output = audit(capsys)

    assert status == 1
    subject = f"dispute: session {session.pk} ({session.stripe_payment_id})"
    assert f"{subject}: Stripe has dispute {dispute['id']} (lost), not flagged here" in output
    assert f"{subject}: 0.00 USD lost in disputes here, 120.00 USD at Stripe" in output
    payments.resume()


def test_beat_runs_the_audit_daily():
    # Other tests flush every table; run the schedule's migration again as `migrate` would.
    call_command("migrate", "backend", "0008_mentor_schedules", verbosity=0)
    call_command("migrate", "backend", verbosity=0)
    job = PeriodicTask.objects.get(name="payments_audit")
    assert job.enabled and job.task == "payments_audit"
    assert (job.crontab.minute, job.crontab.hour, job.crontab.day_of_week) == ("30", "4", "*")
    assert payments_audit_task.name in celery_app.tasks  # the name beat sends is a registered task
