"""Beat's safety nets: whatever a webhook missed, these find (flows 7 and 8).

- payments_reconcile: Stripe's event list against our table, and open Checkouts
  against their Stripe sessions.
- webhook_events_sweep: events stored but never (or no longer) being processed.
- checkout_holds_expire: holds whose time is up.
"""
import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from backend import stripe_gateway
from backend.errors import PaymentProviderError
from backend.models import Checkout, WebhookEvent
from backend.services.fulfilment import checkout_expire, checkout_fulfil
from backend.services.webhooks import EVENT_HANDLERS, webhook_event_enqueue, webhook_event_store

logger = logging.getLogger(__name__)

RECONCILE_WINDOW = timedelta(days=3)
STUCK_RECEIVED_AFTER = timedelta(minutes=1)


def payments_reconcile(*, since: timedelta = RECONCILE_WINDOW) -> dict[str, int]:
    """Ingest the handled events Stripe has that our table lacks, then settle open
    Checkouts whose Stripe session has moved on. Returns what it fixed."""
    fixed = {"events_ingested": 0, "checkouts_settled": 0}
    created_gte = int(time.time() - since.total_seconds())
    for event in stripe_gateway.events_list(types=sorted(EVENT_HANDLERS), created_gte=created_gte):
        if WebhookEvent.objects.filter(stripe_event_id=event["id"]).exists():
            continue
        if webhook_event_store(event):
            fixed["events_ingested"] += 1
            logger.warning("reconcile: event %s (%s) had not reached us; ingested", event["id"], event["type"])

    open_checkouts = Checkout.objects.filter(status=Checkout.Status.OPEN, stripe_checkout_session_id__isnull=False,
                                             created_at__gte=timezone.now() - since)
    for checkout in open_checkouts.iterator():
        if checkout_settle_from_stripe(checkout_id=checkout.pk):
            fixed["checkouts_settled"] += 1
    logger.info("reconcile: %s", fixed)
    return fixed


def checkout_settle_from_stripe(*, checkout_id: int) -> bool:
    """An open Checkout whose Stripe session completed or expired is settled as its event
    would have; returns whether anything changed."""
    checkout = Checkout.objects.get(pk=checkout_id)
    stripe_session = stripe_gateway.checkout_session_retrieve(checkout.stripe_checkout_session_id)
    if stripe_session["status"] == "open":
        return False
    with transaction.atomic():
        if stripe_session["status"] == "complete":
            checkout_fulfil(stripe_session=stripe_session)
        else:
            checkout_expire(stripe_session=stripe_session)
    logger.warning("reconcile: checkout %s was %s at Stripe; settled", checkout_id, stripe_session["status"])
    return True


def webhook_events_sweep() -> int:
    """Queue events left in `received` for over a minute (the broker was down, or a worker
    died before it started) or in `processing` longer than a task may run."""
    now = timezone.now()
    stuck_processing = timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 30)
    stuck = list(
        WebhookEvent.objects.filter(status=WebhookEvent.Status.RECEIVED, updated_at__lt=now - STUCK_RECEIVED_AFTER)
        .values_list("stripe_event_id", flat=True)[:1000]
    ) + list(
        WebhookEvent.objects.filter(status=WebhookEvent.Status.PROCESSING, updated_at__lt=now - stuck_processing)
        .values_list("stripe_event_id", flat=True)[:1000]
    )
    queued = sum(webhook_event_enqueue(event_id) for event_id in stuck)
    if stuck:
        logger.warning("sweep: %d stuck event(s), %d queued", len(stuck), queued)
    return queued


def checkout_holds_expire() -> int:
    """Release holds past expires_at, expiring their Stripe session if it is still open.
    A session that completed meanwhile is left for its event (or the reconciler)."""
    expired = 0
    overdue = Checkout.objects.filter(status=Checkout.Status.OPEN, expires_at__lte=timezone.now())
    for checkout in overdue.iterator():
        if checkout.stripe_checkout_session_id:
            try:
                stripe_gateway.checkout_session_expire(checkout.stripe_checkout_session_id)
            except PaymentProviderError:
                # Stripe refuses to expire a session that is no longer open: ask it which.
                if stripe_gateway.checkout_session_retrieve(checkout.stripe_checkout_session_id)["status"] == "complete":
                    continue
        expired += Checkout.objects.filter(pk=checkout.pk, status=Checkout.Status.OPEN).update(
            status=Checkout.Status.EXPIRED, updated_at=timezone.now()
        )
    if expired:
        logger.info("holds: %d checkout hold(s) expired", expired)
    return expired
