"""Beat's operations jobs; schedules from migration 0009 (editable in admin)."""
from celery import shared_task

from backend.services.operations import alerts_check, webhook_events_prune


@shared_task(name="operations_alerts_check")
def operations_alerts_check_task() -> list[str]:
    """Every 5 minutes: webhook silence, event backlog, beat stopped; admins mailed once an hour per condition."""
    return alerts_check()


@shared_task(name="webhook_events_prune")
def webhook_events_prune_task() -> int:
    """Daily: processed and ignored events past WEBHOOK_EVENT_RETENTION_DAYS, in batches."""
    return webhook_events_prune()
