from celery import shared_task

from backend.services.dispatch import REFUND_EXECUTE
from backend.services.refunds import refund_execute, refund_record_failure
from backend.services.retries import CELERY_MAX_RETRIES, error_is_transient, retries_exhausted, retry_delay


@shared_task(bind=True, name=REFUND_EXECUTE, max_retries=CELERY_MAX_RETRIES, acks_late=True)
def refund_execute_task(self, refund_id: int) -> None:
    """Send one requested refund to Stripe (idempotency key `refund:{id}`); the webhook confirms it."""
    try:
        refund_execute(refund_id=refund_id)
    except Exception as exc:
        attempts = self.request.retries + 1
        if not error_is_transient(exc) or retries_exhausted(attempts):
            refund_record_failure(refund_id=refund_id, error=exc)
            raise
        raise self.retry(exc=exc, countdown=retry_delay(attempts))
