"""Celery tasks: thin wrappers that load by id, call a service and declare retries.

Every task module is imported here so `app.autodiscover_tasks(["backend"])` finds them.
"""
from backend.tasks.beat import (
    checkout_holds_expire_task,
    followups_sweep_task,
    payments_audit_task,
    payments_reconcile_task,
    webhook_events_sweep_task,
)
from backend.tasks.mentors import mentor_stats_recompute_task
from backend.tasks.notifications import send_session_notification
from backend.tasks.operations import operations_alerts_check_task, webhook_events_prune_task
from backend.tasks.refunds import refund_execute_task
from backend.tasks.sessions import sessions_complete_task, sessions_unpaid_at_start_task
from backend.tasks.webhooks import process_webhook_event

__all__ = [
    "checkout_holds_expire_task",
    "followups_sweep_task",
    "mentor_stats_recompute_task",
    "payments_audit_task",
    "operations_alerts_check_task",
    "payments_reconcile_task",
    "process_webhook_event",
    "refund_execute_task",
    "send_session_notification",
    "sessions_complete_task",
    "sessions_unpaid_at_start_task",
    "webhook_events_prune_task",
    "webhook_events_sweep_task",
]
