import logging
import random

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError

from backend.errors import PaymentProviderUnavailable, PrerequisiteMissing
from backend.services.webhooks import webhook_event_mark_processing, webhook_event_process, webhook_event_record_failure

logger = logging.getLogger(__name__)

# Worth another try: the database or Stripe is briefly away, or an event arrived
# before the one it depends on (a refund before its payment's completion).
TRANSIENT_ERRORS = (DatabaseError, PaymentProviderUnavailable, PrerequisiteMissing)
MAX_RETRIES = 8  # the decorator's bound; settings.TASK_MAX_RETRIES may lower it


def retry_countdown(retries: int) -> float:
    """Exponential backoff with jitter: about 1, 2, 4 ... times TASK_RETRY_BASE_SECONDS, capped at 5 minutes."""
    base = min(300.0, settings.TASK_RETRY_BASE_SECONDS * 2**retries)
    return base / 2 + random.uniform(0, base / 2)


def last_try(task) -> bool:
    return task.request.retries >= min(task.max_retries, settings.TASK_MAX_RETRIES)


@shared_task(bind=True, name="process_webhook_event", max_retries=MAX_RETRIES, acks_late=True)
def process_webhook_event(self, stripe_event_id: str) -> str:
    """Process one stored Stripe event; idempotent, so redelivery is harmless."""
    try:
        webhook_event_mark_processing(stripe_event_id=stripe_event_id)
        return webhook_event_process(stripe_event_id=stripe_event_id)
    except TRANSIENT_ERRORS as exc:
        final = last_try(self)
        try:
            webhook_event_record_failure(stripe_event_id=stripe_event_id, error=exc, final=final)
        except DatabaseError:
            # The database is the thing that is down: the retry below still has to be scheduled.
            logger.warning("webhook %s: could not record the failure, retrying anyway", stripe_event_id)
        if final:
            raise
        raise self.retry(exc=exc, countdown=retry_countdown(self.request.retries))
    except Exception as exc:
        # A bug or a terminal error: retrying won't help. Failed, with its error, for an admin.
        webhook_event_record_failure(stripe_event_id=stripe_event_id, error=exc, final=True)
        raise
