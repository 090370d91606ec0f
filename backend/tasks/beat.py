"""Beat's payment safety nets and the daily audit; schedules live in django-celery-beat
(migrations 0004, 0005, 0009, editable in admin) and find these tasks by their registered
names, which must not change."""
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from backend.services.audit import payments_audit, payments_audit_alert
from backend.services.reconciliation import (
    checkout_holds_expire,
    followups_sweep,
    payments_reconcile,
    webhook_events_sweep,
)


@shared_task(name="payments_reconcile")
def payments_reconcile_task() -> dict:
    """Every 10 minutes: what Stripe has that our webhook missed."""
    return payments_reconcile()


@shared_task(name="webhook_events_sweep")
def webhook_events_sweep_task() -> int:
    """Every minute: queue stored events nobody is processing."""
    return webhook_events_sweep()


@shared_task(name="checkout_holds_expire")
def checkout_holds_expire_task() -> int:
    """Every minute: holds past their time, settled by what Stripe says of each Checkout
    (expired: the slot is free; complete: booked through the webhook's path)."""
    return checkout_holds_expire()


@shared_task(name="followups_sweep")
def followups_sweep_task() -> dict:
    """Every minute: refunds, confirmations and stats whose queuing was lost."""
    return followups_sweep()


# The daily audit looks back two days (each booking is audited twice, so one missed run
# misses nothing) and stops an hour ago, so payments still settling are not reported.
AUDIT_PERIOD = timedelta(days=2)
AUDIT_SETTLE = timedelta(hours=1)


@shared_task(name="payments_audit", soft_time_limit=30 * 60, time_limit=31 * 60)
def payments_audit_task() -> int:
    """Daily: our ledger against Stripe's; the admins get one mail listing any discrepancy."""
    until = timezone.now() - AUDIT_SETTLE
    report = payments_audit(since=until - AUDIT_PERIOD, until=until)
    payments_audit_alert(report)
    return len(report.discrepancies)
