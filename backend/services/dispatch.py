"""Background work, asked for by task name and sent only once the transaction commits.

Services never import a task: they name it here, and the worker registers a task under each
name (backend/tasks/, which use these constants as their `name=`). A worker therefore never
acts on a row that a rollback would take back, and the layers stay one-way.

Sending is `robust`: with the broker down the committed change stands, the failure is
logged, and followups_sweep (beat, every minute) queues what is missing from the rows
themselves: refunds still `requested`, confirmations not sent, stats older than sessions.
"""
import logging

from django.db import transaction

from backend.celery_app import app
from backend.services.notifications import admin_alert

logger = logging.getLogger(__name__)

# Registered task names. Beat's schedules (django-celery-beat rows) name tasks too, so a
# name here never changes once it has shipped.
PROCESS_WEBHOOK_EVENT = "process_webhook_event"
MENTOR_STATS_RECOMPUTE = "mentor_stats_recompute"
SEND_SESSION_NOTIFICATION = "send_session_notification"
REFUND_EXECUTE = "refund_execute"


def task_send(name: str, *args) -> None:
    """Queue task `name` now (raises if the broker refuses). Routing (the notifications
    queue) comes from settings.CELERY_TASK_ROUTES, which applies to sends by name."""
    app.send_task(name, args=args)


def task_send_on_commit(name: str, *args) -> None:
    """Queue task `name` once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: task_send(name, *args), robust=True)


def stats_recompute_on_commit(mentor_id: int) -> None:
    task_send_on_commit(MENTOR_STATS_RECOMPUTE, mentor_id)


def notification_on_commit(session_id: int, kind: str) -> None:
    task_send_on_commit(SEND_SESSION_NOTIFICATION, session_id, kind)


def refund_execute_on_commit(refund_id: int) -> None:
    task_send_on_commit(REFUND_EXECUTE, refund_id)


def admin_alert_on_commit(*, subject: str, message: str) -> None:
    """Mail the admins once the change they hear about is committed: never about a change a
    rollback takes back, and no SMTP round trip while its rows are locked."""
    transaction.on_commit(lambda: admin_alert(subject=subject, message=message), robust=True)
