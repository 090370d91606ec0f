"""Work that follows a committed change, queued only once the transaction commits, so a
worker never acts on a row that a rollback would take back."""
from django.db import transaction


def stats_recompute_on_commit(mentor_id: int) -> None:
    from backend.tasks.mentors import mentor_stats_recompute_task

    transaction.on_commit(lambda: mentor_stats_recompute_task.delay(mentor_id))


def notification_on_commit(session_id: int, kind: str) -> None:
    from backend.tasks.notifications import send_session_notification

    transaction.on_commit(lambda: send_session_notification.delay(session_id, kind))


def refund_execute_on_commit(refund_id: int) -> None:
    from backend.tasks.refunds import refund_execute_task

    transaction.on_commit(lambda: refund_execute_task.delay(refund_id))
