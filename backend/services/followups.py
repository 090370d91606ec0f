"""Work that follows a committed change, queued only once the transaction commits, so a
worker never acts on a row that a rollback would take back.

Queuing is `robust`: with the broker down the committed change stands, the failure is
logged, and followups_sweep (beat, every minute) queues what is missing from the rows
themselves: refunds still `requested`, confirmations not sent, stats older than sessions.
"""
from django.db import transaction


def _on_commit(callback) -> None:
    transaction.on_commit(callback, robust=True)


def stats_recompute_on_commit(mentor_id: int) -> None:
    from backend.tasks.mentors import mentor_stats_recompute_task

    _on_commit(lambda: mentor_stats_recompute_task.delay(mentor_id))


def notification_on_commit(session_id: int, kind: str) -> None:
    from backend.tasks.notifications import send_session_notification

    _on_commit(lambda: send_session_notification.delay(session_id, kind))


def refund_execute_on_commit(refund_id: int) -> None:
    from backend.tasks.refunds import refund_execute_task

    _on_commit(lambda: refund_execute_task.delay(refund_id))


def admin_alert_on_commit(*, subject: str, message: str) -> None:
    """Mail the admins once the change they hear about is committed: never about a change a
    rollback takes back, and no SMTP round trip while its rows are locked."""
    from backend.services.notifications import admin_alert

    _on_commit(lambda: admin_alert(subject=subject, message=message))
