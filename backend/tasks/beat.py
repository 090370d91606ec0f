"""Beat's payment safety nets; schedules live in django-celery-beat (migrations 0004, 0005,
editable in admin) and find these tasks by their registered names, which must not change."""
from celery import shared_task

from backend.services.reconciliation import checkout_holds_expire, followups_sweep, payments_reconcile, webhook_events_sweep


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
    """Every minute: free slots whose hold ran out."""
    return checkout_holds_expire()


@shared_task(name="followups_sweep")
def followups_sweep_task() -> dict:
    """Every minute: refunds, confirmations and stats whose queuing was lost."""
    return followups_sweep()
