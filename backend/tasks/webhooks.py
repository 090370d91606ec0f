import random

from celery import shared_task
from django.db import DatabaseError

from backend.errors import PaymentProviderUnavailable
from backend.services.webhooks import webhook_event_mark_processing, webhook_event_process, webhook_event_record_failure

# Worth another try: the database or Stripe is briefly away, or (once handlers exist)
# an event arrived before the one it depends on.
TRANSIENT_ERRORS = (DatabaseError, PaymentProviderUnavailable)
MAX_RETRIES = 6


def retry_countdown(retries: int) -> float:
    """Exponential backoff with full jitter: up to 2, 4, 8 ... 300 seconds."""
    return random.uniform(0, min(300, 2 ** (retries + 1)))


@shared_task(bind=True, name="process_webhook_event", max_retries=MAX_RETRIES, acks_late=True)
def process_webhook_event(self, stripe_event_id: str) -> str:
    """Process one stored Stripe event; idempotent, so redelivery is harmless."""
    try:
        webhook_event_mark_processing(stripe_event_id=stripe_event_id)
        return webhook_event_process(stripe_event_id=stripe_event_id)
    except TRANSIENT_ERRORS as exc:
        final = self.request.retries >= self.max_retries
        webhook_event_record_failure(stripe_event_id=stripe_event_id, error=exc, final=final)
        if final:
            raise
        raise self.retry(exc=exc, countdown=retry_countdown(self.request.retries))
    except Exception as exc:
        # A bug or a terminal error: retrying won't help. Failed, with its error, for an admin.
        webhook_event_record_failure(stripe_event_id=stripe_event_id, error=exc, final=True)
        raise
