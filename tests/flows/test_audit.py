"""The payments audit (issue 9): real discrepancies made through the sandbox, reported
by `manage.py payments_audit` with a non-zero exit and one mail to the admins; a
settled state reports none."""
import pytest
from django.core import mail
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask

from backend.models import Session
from backend.tasks import payments_audit_task
from tests.factories import future_slot, make_mentor, make_session, make_user
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
    assert f"refunded_amount: session {session.pk} ({session.stripe_payment_id}): refunded 0 here, 6500 at Stripe" in output
    assert f"Stripe refund {refund['id']} (succeeded, 6500) has no refund row here" in output
    assert "audit discrepancies: 2" in output
    assert [m.subject for m in audit_mails()] == ["[Django] Payments audit: 2 discrepancies"]
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
    assert "captured_without_session: checkout " in output and f"({cs_id}): Stripe captured 12000 usd " \
        f"(payment {paid['payment_intent']['id']}), refunded 0, and we have no session" in output


def test_a_paid_session_stripe_does_not_know_is_reported(payments, capsys):
    session = make_session(mentor=make_mentor(), mentee=make_user(), stripe_payment_id="pi_not_at_stripe")

    status, output = audit(capsys)

    assert status == 1
    assert f"unknown_to_stripe: session {session.pk} (pi_not_at_stripe): paid here, but Stripe has no charge" in output


def test_beat_runs_the_audit_daily():
    # Other tests flush every table; run the schedule's migration again as `migrate` would.
    call_command("migrate", "backend", "0008_mentor_schedules", verbosity=0)
    call_command("migrate", "backend", verbosity=0)
    job = PeriodicTask.objects.get(name="payments_audit")
    assert job.enabled and job.task == "payments_audit"
    assert (job.crontab.minute, job.crontab.hour, job.crontab.day_of_week) == ("30", "4", "*")
    assert payments_audit_task.name in celery_app.tasks  # the name beat sends is a registered task
