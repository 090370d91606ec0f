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
from backend.errors import PaymentProviderError, PaymentProviderUnavailable
from backend.models import Checkout, Installation, Mentor, Notification, Refund, Session, WebhookEvent
from backend.services.dispatch import notification_on_commit, refund_execute_on_commit, stats_recompute_on_commit
from backend.services.fulfilment import checkout_expire, checkout_fulfil
from backend.services.installation import installation
from backend.services.webhooks import EVENT_HANDLERS, webhook_event_enqueue, webhook_event_store

logger = logging.getLogger(__name__)

RECONCILE_WINDOW = timedelta(days=3)  # the first scan, or `reconcile_payments --since`
# Each scan re-reads this much before the stored high-water mark: an event created in the
# second the last scan ended, or listed a little late, is still seen.
EVENTS_OVERLAP_SECONDS = 5 * 60
STUCK_RECEIVED_AFTER = timedelta(minutes=1)


def payments_reconcile(*, since: timedelta | None = None) -> dict[str, int]:
    """Ingest the handled events Stripe has that our table lacks, then settle open
    Checkouts whose Stripe session has moved on. Returns what it fixed, and how many
    items failed: each is logged and skipped, so one bad item never stops the rest.

    Events are read from the stored high-water mark (the newest `created` read in full),
    not three days every time; `since` reads that window instead.
    """
    fixed = {"events_ingested": 0, "checkouts_settled": 0, "errors": 0}
    state = installation()
    if since is None and state.stripe_events_read_until is not None:
        created_gte = state.stripe_events_read_until - EVENTS_OVERLAP_SECONDS
    else:
        created_gte = int(time.time() - (since or RECONCILE_WINDOW).total_seconds())
    newest, oldest_failed = None, None
    try:
        for event in stripe_gateway.events_list(types=sorted(EVENT_HANDLERS), created_gte=created_gte):
            newest = max(newest or 0, event["created"])
            try:
                if WebhookEvent.objects.filter(stripe_event_id=event["id"]).exists():
                    continue
                if webhook_event_store(event):
                    fixed["events_ingested"] += 1
                    logger.warning("reconcile: event %s (%s) had not reached us; ingested", event["id"], event["type"])
            except Exception:
                logger.exception("reconcile: event %s could not be stored; next scan tries again", event["id"])
                fixed["errors"] += 1
                oldest_failed = min(oldest_failed or event["created"], event["created"])
    except PaymentProviderUnavailable:
        # Listed only in part (newest first): the mark stays where it was.
        logger.exception("reconcile: Stripe's event list failed part-way; next scan reads it again")
        fixed["errors"] += 1
    else:
        if newest is not None:
            mark = newest if oldest_failed is None else min(newest, oldest_failed - 1)
            Installation.objects.filter(pk=state.pk).update(
                stripe_events_read_until=max(mark, state.stripe_events_read_until or 0), updated_at=timezone.now()
            )

    open_checkouts = Checkout.objects.filter(status=Checkout.Status.OPEN, stripe_checkout_session_id__isnull=False,
                                             created_at__gte=timezone.now() - (since or RECONCILE_WINDOW))
    for checkout_id in open_checkouts.values_list("pk", flat=True).iterator():
        try:
            if checkout_settle_from_stripe(checkout_id=checkout_id):
                fixed["checkouts_settled"] += 1
        except Exception:
            logger.exception("reconcile: checkout %s could not be settled; next scan tries again", checkout_id)
            fixed["errors"] += 1
    logger.info("reconcile: %s", fixed)
    return fixed


def checkout_settle_from_stripe(*, checkout_id: int) -> bool:
    """An open Checkout whose Stripe session completed or expired is settled as its event
    would have, through the webhook's own handlers (the reconciler, hold expiry, and the
    mentee's return page); returns whether anything changed."""
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
    """Queue events left in `received` for over a minute (a relay died between its claim
    and its publish, the message was lost, or a worker died before it started; a scheduled
    retry only once it is a minute overdue; the relays queue the rest) or in
    `processing` longer than a task may run. Attempts are counted on the row, so a
    re-queue never extends the retry budget."""
    now = timezone.now()
    stuck_processing = timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 30)
    # An event waiting for its scheduled retry is not stuck until that retry is overdue.
    retry_not_due = Q(next_attempt_at__gte=now - STUCK_RECEIVED_AFTER)
    stuck = list(
        WebhookEvent.objects.filter(status=WebhookEvent.Status.RECEIVED, updated_at__lt=now - STUCK_RECEIVED_AFTER)
        .exclude(retry_not_due)
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
    """Release holds past expires_at, expiring their Stripe session if it is still open;
    returns how many were released. A session Stripe reports complete (paid inside the
    hold, its event still on its way) is booked at once instead. One hold that fails is
    logged and left for the next run; the others go on."""
    expired = 0
    overdue = Checkout.objects.filter(status=Checkout.Status.OPEN, expires_at__lte=timezone.now())
    for checkout in overdue.iterator():
        try:
            expired += _hold_release(checkout)
        except Exception:
            logger.exception("holds: checkout %s could not be released; next run tries again", checkout.pk)
    if expired:
        logger.info("holds: %d checkout hold(s) expired", expired)
    return expired


def _hold_release(checkout: Checkout) -> int:
    if checkout.stripe_checkout_session_id:
        try:
            stripe_gateway.checkout_session_expire(checkout.stripe_checkout_session_id)
        except PaymentProviderError:
            # Stripe refuses to expire a session that is no longer open: settle it as it is.
            checkout_settle_from_stripe(checkout_id=checkout.pk)
            return 0
    return Checkout.objects.filter(pk=checkout.pk, status=Checkout.Status.OPEN).update(
        status=Checkout.Status.EXPIRED, updated_at=timezone.now()
    )


FOLLOWUP_WINDOW = timedelta(days=3)


def followups_sweep() -> dict[str, int]:
    """Queue again what a committed change should have set going, judged from the rows:
    refunds still `requested` (Stripe never asked), sessions without the email of every
    kind their state calls for (unless the address was refused for good), mentors whose
    stats are older than their latest session change. Every task it queues is idempotent,
    so queuing one twice is harmless."""
    now = timezone.now()
    settled = now - STUCK_RECEIVED_AFTER
    recent = now - FOLLOWUP_WINDOW
    queued = {"refunds": 0, "notifications": 0, "stats": 0}

    for refund_id in Refund.objects.filter(status=Refund.Status.REQUESTED, stripe_refund_id__isnull=True,
                                           updated_at__lt=settled).values_list("pk", flat=True)[:500]:
        refund_execute_on_commit(refund_id)
        queued["refunds"] += 1

    # Done: sent, or refused for good by the mail server (retrying can't change that).
    done = Notification.objects.filter(session=OuterRef("pk"), recipient=Notification.Recipient.MENTEE).filter(
        Q(sent_at__isnull=False) | Q(refused_at__isnull=False)
    )
    in_flight = Refund.objects.filter(session=OuterRef("pk"),
                                      status__in=[Refund.Status.REQUESTED, Refund.Status.PENDING])
    cancelled = Q(status=Session.Status.CANCELLED)
    due = {
        Notification.Kind.BOOKED: Q(payment_status=Session.PaymentStatus.PAID, status=Session.Status.SCHEDULED),
        # Announced only once Stripe says every refund succeeded.
        Notification.Kind.REFUNDED: Q(payment_status=Session.PaymentStatus.REFUNDED) & ~Q(Exists(in_flight)),
        Notification.Kind.CANCELLED: cancelled & ~Q(payment_status=Session.PaymentStatus.PENDING),
        # Cancelled before paying: the delayed debit failed (a lost slot's notice is `cancelled`).
        Notification.Kind.PAYMENT_FAILED: cancelled & Q(payment_status=Session.PaymentStatus.PENDING)
        & ~Q(Exists(Notification.objects.filter(session=OuterRef("pk"), kind=Notification.Kind.CANCELLED))),
    }
    for kind, condition in due.items():
        unsent = Session.objects.filter(condition, updated_at__lt=settled, updated_at__gte=recent).exclude(
            Exists(done.filter(kind=kind))
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
