"""Payout tasks: the beat job that pays the mentors, the reversal after a refund, and the
mentor's payout emails. The schedule of `payouts_run` is a django-celery-beat row (migration
0018, editable in the admin) naming this task by its registered name."""
import smtplib

from celery import shared_task
from django.db import OperationalError

from backend.services.dispatch import PAYOUT_SETTLE, PAYOUTS_RUN, SEND_PAYOUT_NOTIFICATION
from backend.services.payout_notifications import payout_notification_send
from backend.services.payouts import payout_settle, payouts_run
from backend.services.retries import CELERY_MAX_RETRIES, error_is_transient, retries_exhausted, retry_delay


@shared_task(name=PAYOUTS_RUN)
def payouts_run_task(mentor_id: int | None = None) -> dict:
    """Every minute (and when an account becomes ready or a hold is released): send the payouts
    that are due, one transfer per session; safe to run twice at once. Not retried: the next
    run picks up whatever this one left."""
    return payouts_run(mentor_id=mentor_id)


@shared_task(bind=True, name=PAYOUT_SETTLE, max_retries=CELERY_MAX_RETRIES, acks_late=True)
def payout_settle_task(self, session_id: int) -> list[int]:
    """After a refund or a lost dispute: reverse the mentor's share of a paid payout (key
    f"reversal:{id}"). Transient failures retry; payouts_run catches up whatever is left."""
    try:
        return payout_settle(session_id=session_id)
    except Exception as exc:
        attempts = self.request.retries + 1
        if not error_is_transient(exc) or retries_exhausted(attempts):
            raise
        raise self.retry(exc=exc, countdown=retry_delay(attempts))


@shared_task(
    name=SEND_PAYOUT_NOTIFICATION,
    autoretry_for=(smtplib.SMTPException, OSError, OperationalError),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def send_payout_notification(kind: str, object_id: int) -> int:
    """Tell the mentor a payout was sent or taken back; at most once each."""
    return payout_notification_send(kind=kind, object_id=object_id)
