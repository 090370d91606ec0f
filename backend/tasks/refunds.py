import logging

from celery import shared_task
from django.db import DatabaseError

from backend.services.dispatch import REFUND_EXECUTE
from backend.services.refunds import refund_execute, refund_record_failure
from backend.services.retries import CELERY_MAX_RETRIES, retries_exhausted, retry_delay

logger = logging.getLogger(__name__)


@shared_task(bind=True, name=REFUND_EXECUTE, max_retries=CELERY_MAX_RETRIES, acks_late=True)
def refund_execute_task(self, refund_id: int) -> None:
    """Send one requested refund to Stripe (idempotency key `refund:{id}:{amount}`); the webhook
    confirms it. Attempts are counted on the refund's row, so a second chain (the sweep, a
    redelivery) never extends the retry budget."""
    try:
        refund_execute(refund_id=refund_id)
    except Exception as exc:
        try:
            delay = refund_record_failure(refund_id=refund_id, error=exc)
        except DatabaseError:
            # The database is the thing that is down: retry on Celery's count until it is back.
            logger.warning("refund %s: could not record the failure, retrying anyway", refund_id)
            if retries_exhausted(self.request.retries + 1):
                raise exc
            delay = retry_delay(self.request.retries + 1)
        if delay is None:
            raise
        raise self.retry(exc=exc, countdown=delay)
