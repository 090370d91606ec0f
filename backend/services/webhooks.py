"""Stripe webhook events: verified, stored once by event id, then processed by a worker.

The WebhookEvent row is both the idempotency record (unique stripe_event_id) and the
outbox: an event is stored before anything is enqueued, so a broker outage loses
nothing (the sweep enqueues what is stuck in `received`).
"""
import logging
from collections.abc import Callable

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from backend import stripe_gateway
from backend.errors import ApplicationError
from backend.models import WebhookEvent

logger = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 1024 * 1024


class WebhookRejected(ApplicationError):
    """The body is not a Stripe event for us; Stripe should not retry it."""

    code = "webhook_rejected"


class WebhookPayloadTooLarge(WebhookRejected):
    code = "payload_too_large"


def _event_recorded(event_id: str, event: dict) -> None:
    # Filled in by the workers issue: each handler turns an event into bookings,
    # refunds or disputes. Here, processing only records that it ran.
    logger.info("webhook %s (%s): handled", event_id, event.get("type"))


# type -> handler(stripe_event_id, event payload). Anything else is stored as ignored.
EVENT_HANDLERS: dict[str, Callable[[str, dict], None]] = {
    "checkout.session.completed": _event_recorded,
    "checkout.session.async_payment_succeeded": _event_recorded,
    "checkout.session.async_payment_failed": _event_recorded,
    "checkout.session.expired": _event_recorded,
    "charge.refunded": _event_recorded,
    "refund.created": _event_recorded,
    "refund.updated": _event_recorded,
    "charge.dispute.created": _event_recorded,
}

_INSERT_IF_NEW = f"""
INSERT INTO {WebhookEvent._meta.db_table}
    (stripe_event_id, type, api_version, livemode, payload, status, attempts, last_error, received_at, updated_at)
VALUES (%s, %s, %s, %s, %s, %s, 0, '', %s, %s)
ON CONFLICT (stripe_event_id) DO NOTHING
RETURNING id
"""


def webhook_event_ingest(*, payload: bytes, signature: str | None) -> tuple[str, bool]:
    """Verify and store one delivery. Returns (event id, whether it was new).

    Race-free under concurrent deliveries of one event: the unique index decides which
    INSERT wins, and only the winner enqueues processing (after commit).
    """
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise WebhookPayloadTooLarge(f"Webhook body over {MAX_PAYLOAD_BYTES} bytes")
    try:
        event = stripe_gateway.webhook_payload_verify(payload, signature)
    except stripe_gateway.WebhookPayloadInvalid as exc:
        raise WebhookRejected(f"Invalid webhook: {exc}")
    livemode = bool(event.get("livemode"))
    if livemode != stripe_gateway.key_is_live():
        raise WebhookRejected("Event livemode does not match the configured Stripe key")

    event_id, event_type = event["id"], event["type"]
    handled = event_type in EVENT_HANDLERS
    status = WebhookEvent.Status.RECEIVED if handled else WebhookEvent.Status.IGNORED
    now = timezone.now()
    json_field = WebhookEvent._meta.get_field("payload")
    # One statement in autocommit: the row is durable when it returns, and on_commit
    # then runs at once (or after the caller's transaction, when there is one).
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT_IF_NEW,
            [event_id, event_type[:100], str(event.get("api_version") or "")[:50], livemode,
             json_field.get_db_prep_value(event, connection), status, now, now],
        )
        created = cursor.fetchone() is not None
    if created and handled:
        transaction.on_commit(lambda: webhook_event_enqueue(event_id))
    if created:
        logger.info("webhook %s (%s): stored as %s", event_id, event_type, status)
    else:
        logger.info("webhook %s (%s): duplicate delivery, nothing to do", event_id, event_type)
    return event_id, created


def webhook_event_enqueue(stripe_event_id: str) -> bool:
    """Queue processing; a broker outage is logged, not raised: the event stays stored
    as `received` and webhook_events_sweep queues it later."""
    from backend.tasks.webhooks import process_webhook_event

    try:
        process_webhook_event.delay(stripe_event_id)
        return True
    except Exception:
        logger.warning("webhook %s: broker unavailable, left for the sweep", stripe_event_id, exc_info=True)
        return False


def webhook_event_process(*, stripe_event_id: str) -> str:
    """Run the handler for one stored event, at most once in effect. Returns the final status.

    The event row is locked for the whole handler transaction, so two workers given the
    same event (a duplicate enqueue, a sweep) run it one after the other, and the second
    finds it processed.
    """
    with transaction.atomic():
        event = WebhookEvent.objects.select_for_update().filter(stripe_event_id=stripe_event_id).first()
        if event is None:
            logger.warning("webhook %s: not stored, nothing to process", stripe_event_id)
            return "missing"
        if event.status in (WebhookEvent.Status.PROCESSED, WebhookEvent.Status.IGNORED):
            return event.status
        handler = EVENT_HANDLERS.get(event.type)
        if handler is None:
            event.status = WebhookEvent.Status.IGNORED
        else:
            handler(stripe_event_id, event.payload)
            event.status = WebhookEvent.Status.PROCESSED
            event.last_error = ""
        event.processed_at = timezone.now()
        event.save(update_fields=["status", "last_error", "processed_at", "updated_at"])
    logger.info("webhook %s (%s): %s", stripe_event_id, event.type, event.status)
    return event.status


def webhook_event_mark_processing(*, stripe_event_id: str) -> None:
    """Visible progress for admins and the sweep while a worker has the event."""
    WebhookEvent.objects.filter(stripe_event_id=stripe_event_id).exclude(
        status__in=[WebhookEvent.Status.PROCESSED, WebhookEvent.Status.IGNORED]
    ).update(status=WebhookEvent.Status.PROCESSING, attempts=F("attempts") + 1, updated_at=timezone.now())


def webhook_event_record_failure(*, stripe_event_id: str, error: BaseException, final: bool) -> None:
    """Keep the error; `failed` after the last try (admins retry it), else back to `received`."""
    status = WebhookEvent.Status.FAILED if final else WebhookEvent.Status.RECEIVED
    with transaction.atomic():
        event = WebhookEvent.objects.select_for_update().filter(stripe_event_id=stripe_event_id).first()
        if event is None or event.status == WebhookEvent.Status.PROCESSED:
            return
        event.status = status
        event.last_error = f"{error.__class__.__name__}: {error}"[:4000]
        event.save(update_fields=["status", "last_error", "updated_at"])
    log = logger.error if final else logger.warning
    log("webhook %s: attempt %d failed (%s)%s", stripe_event_id, event.attempts, event.last_error,
        ", giving up" if final else ", will retry")
