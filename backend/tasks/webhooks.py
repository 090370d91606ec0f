import logging

from celery import shared_task
from django.db import DatabaseError

from backend.services.dispatch import PROCESS_WEBHOOK_EVENT
from backend.services.retries import CELERY_MAX_RETRIES, retries_exhausted, retry_delay
from backend.services.webhooks import webhook_event_process, webhook_event_record_failure, webhook_event_start

logger = logging.getLogger(__name__)


@shared_task(bind=True, name=PROCESS_WEBHOOK_EVENT, max_retries=CELERY_MAX_RETRIES, acks_late=True)
def process_webhook_event(self, stripe_event_id: str) -> str:
    """Process one stored Stripe event; idempotent, so redelivery is harmless. Attempts
    are counted on the event row, so a re-queue (sweep, redelivery) never resets them."""
    try:
        if not webhook_event_start(stripe_event_id=stripe_event_id):
            return "skipped"
        return webhook_event_process(stripe_event_id=stripe_event_id)
    except Exception as exc:
        try:
            delay = webhook_event_record_failure(stripe_event_id=stripe_event_id, error=exc)
        except DatabaseError:
            # The database is the thing that is down: retry on Celery's count until it is back.
            logger.warning("webhook %s: could not record the failure, retrying anyway", stripe_event_id)
            if retries_exhausted(self.request.retries + 1):
                raise exc
            delay = retry_delay(self.request.retries + 1)
        if delay is None:
            raise
        raise self.retry(exc=exc, countdown=delay)
