"""The retry policy of webhook processing and refunds, in one place.

Transient failures (the database or Stripe briefly away, an event before the one it
depends on) retry with exponential backoff and jitter, a bounded number of times,
counted across re-queues by the caller (a WebhookEvent's `attempts`). Anything else,
including a row the database refuses (IntegrityError, DataError), is final at once.
"""
import random

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError, DataError, IntegrityError

from backend.errors import PaymentProviderUnavailable, PrerequisiteMissing

# SoftTimeLimitExceeded: interrupted at the soft limit (a slow Stripe); idempotency keys make the retry safe.
TRANSIENT_ERRORS = (DatabaseError, PaymentProviderUnavailable, PrerequisiteMissing, SoftTimeLimitExceeded)
# The database answered, and will answer the same again.
FINAL_DATABASE_ERRORS = (IntegrityError, DataError)
# Celery's own bound on a task's retries; settings.TASK_MAX_RETRIES (at most this) is the policy.
CELERY_MAX_RETRIES = 8


def error_is_transient(error: BaseException) -> bool:
    return isinstance(error, TRANSIENT_ERRORS) and not isinstance(error, FINAL_DATABASE_ERRORS)


def retries_exhausted(attempts: int) -> bool:
    """After `attempts` tries (the first included), is another one out of bounds?"""
    return attempts > min(settings.TASK_MAX_RETRIES, CELERY_MAX_RETRIES)


def retry_delay(attempts: int) -> float:
    """Seconds before the next try after `attempts` tries: about 1, 2, 4 ... times
    TASK_RETRY_BASE_SECONDS, capped at 5 minutes, half of it jitter."""
    base = min(300.0, settings.TASK_RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1))
    return base / 2 + random.uniform(0, base / 2)


def error_text(error: BaseException) -> str:
    return f"{error.__class__.__name__}: {error}"[:4000]
