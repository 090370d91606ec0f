"""Beat's safety nets: whatever a webhook missed, these find (flows 7 and 8).

- payments_reconcile: Stripe's event list against our table, and open Checkouts
  against their Stripe sessions.
- webhook_events_sweep: events stored but never (or no longer) being processed.
- checkout_holds_expire: holds whose time is up.
- followups_sweep: follow-up work whose queuing was lost (the broker was down).
"""
import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, Max, OuterRef, Q
from django.utils import timezone

from backend import stripe_gateway
from backend.errors import PaymentProviderError
from backend.models import Checkout, Mentor, Notification, Refund, Session, WebhookEvent
from backend.services.followups import notification_on_commit, refund_execute_on_commit, stats_recompute_on_commit
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
    would have (the reconciler, and the mentee's return page); returns whether anything changed."""
    checkout = Checkout.objects.get(pk=checkout_id)
    stripe_session = stripe_gateway.checkout_session_retrieve(checkout.stripe_checkout_session_id)
    if stripe_session["status"] == "open":
        return False
    with transaction.atomic():
        if stripe_session["status"] == "complete":
            checkout_fulfil(stripe_session=stripe_session)
        else:
            checkout_expire(stripe_session=stripe_session)
    logger.info("checkout %s was %s at Stripe; settled", checkout_id, stripe_session["status"])
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


FOLLOWUP_WINDOW = timedelta(days=3)


def followups_sweep() -> dict[str, int]:
    """Queue again what a committed change should have set going, judged from the rows:
    refunds still `requested` (Stripe never asked), booked or refunded sessions without
    their sent confirmation, mentors whose stats are older than their latest session
    change. Every task it queues is idempotent, so queuing one twice is harmless."""
    now = timezone.now()
    settled = now - STUCK_RECEIVED_AFTER
    recent = now - FOLLOWUP_WINDOW
    queued = {"refunds": 0, "notifications": 0, "stats": 0}

    for refund_id in Refund.objects.filter(status=Refund.Status.REQUESTED, stripe_refund_id__isnull=True,
                                           updated_at__lt=settled).values_list("pk", flat=True)[:500]:
        refund_execute_on_commit(refund_id)
        queued["refunds"] += 1

    sent = Notification.objects.filter(session=OuterRef("pk"), recipient=Notification.Recipient.MENTEE,
                                       sent_at__isnull=False)
    due = {
        Notification.Kind.BOOKED: Q(payment_status=Session.PaymentStatus.PAID, status=Session.Status.SCHEDULED),
        Notification.Kind.REFUNDED: Q(payment_status=Session.PaymentStatus.REFUNDED),
    }
    for kind, condition in due.items():
        unsent = Session.objects.filter(condition, updated_at__lt=settled, updated_at__gte=recent).exclude(
            Exists(sent.filter(kind=kind))
        )
        for session_id in unsent.values_list("pk", flat=True)[:500]:
            notification_on_commit(session_id, kind)
            queued["notifications"] += 1

    stale = Mentor.objects.filter(sessions__updated_at__gte=recent, sessions__updated_at__lt=settled).annotate(
        latest=Max("sessions__updated_at")
    ).filter(Q(stats_updated_at__isnull=True) | Q(stats_updated_at__lt=F("latest")))
    for mentor_id in stale.values_list("pk", flat=True)[:500]:
        stats_recompute_on_commit(mentor_id)
        queued["stats"] += 1

    if any(queued.values()):
        logger.warning("followups sweep: queued again %s", queued)
    return queued
