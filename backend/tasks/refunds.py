from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.db import DatabaseError

from backend.errors import PaymentProviderUnavailable
from backend.services.refunds import refund_execute, refund_record_failure
from backend.tasks.webhooks import MAX_RETRIES, last_try, retry_countdown


@shared_task(bind=True, name="refund_execute", max_retries=MAX_RETRIES, acks_late=True)
def refund_execute_task(self, refund_id: int) -> None:
    """Send one requested refund to Stripe (idempotency key `refund:{id}`); the webhook confirms it."""
    try:
        refund_execute(refund_id=refund_id)
    except (PaymentProviderUnavailable, DatabaseError, SoftTimeLimitExceeded) as exc:
        # Interrupted at the soft limit (a slow Stripe): the idempotency key makes the retry safe.
        if last_try(self):
            refund_record_failure(refund_id=refund_id, error=exc)
            raise
        raise self.retry(exc=exc, countdown=retry_countdown(self.request.retries))
    except Exception as exc:
        refund_record_failure(refund_id=refund_id, error=exc)
        raise
