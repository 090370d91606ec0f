"""Stripe webhook events: verified, stored once by event id, then processed by a worker.

The WebhookEvent row is both the idempotency record (unique stripe_event_id) and the
outbox: the webhook only stores (and, on PostgreSQL, notifies); the outbox relay
(backend/tasks/relay.py, in every worker) queues what was stored, so the request does
no broker work and a broker outage loses nothing (webhook_events_sweep is the backstop).
"""
import json
import logging
import re
from collections.abc import Callable
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from backend import stripe_gateway
from backend.errors import NotOurs, WebhookPayloadTooLarge, WebhookRejected
from backend.models import WebhookEvent
from backend.observability import context as log_context
from backend.observability import metrics
from backend.services import fulfilment, refunds
from backend.services.dispatch import PROCESS_WEBHOOK_EVENT, admin_alert_on_commit, task_send
from backend.services.retries import error_is_transient, error_text, retries_exhausted, retry_delay
from backend.services.text import text_storable_repaired
from backend.services.webhook_outbox import NOTIFY_CHANNEL

logger = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 1024 * 1024


def _data_object(handler: Callable[..., object], argument: str) -> Callable[[dict], object]:
    return lambda event: handler(**{argument: event["data"]["object"]})


# type -> handler(event). Anything else is stored as ignored and answered 200.
EVENT_HANDLERS: dict[str, Callable[[dict], object]] = {
    "checkout.session.completed": _data_object(fulfilment.checkout_fulfil, "stripe_session"),
    "checkout.session.async_payment_succeeded": _data_object(fulfilment.checkout_async_payment_succeeded, "stripe_session"),
    "checkout.session.async_payment_failed": _data_object(fulfilment.checkout_async_payment_failed, "stripe_session"),
    "checkout.session.expired": _data_object(fulfilment.checkout_expire, "stripe_session"),
    "charge.refunded": _data_object(refunds.charge_refunded_apply, "charge"),
    "refund.created": _data_object(refunds.refund_event_apply, "refund"),
    "refund.updated": _data_object(refunds.refund_event_apply, "refund"),
    "refund.failed": _data_object(refunds.refund_event_apply, "refund"),
    "charge.dispute.created": _data_object(fulfilment.dispute_open, "dispute"),
}

_INSERT_IF_NEW = f"""
INSERT INTO {WebhookEvent._meta.db_table}
    (stripe_event_id, type, api_version, livemode, payload, status, attempts, last_error, received_at, updated_at,
     request_id)
VALUES (%s, %s, %s, %s, %s, %s, 0, '', %s, %s, %s)
ON CONFLICT (stripe_event_id) DO NOTHING
RETURNING id
"""
# The same, waking the outbox relay (delivered at commit, only when a row was inserted).
_INSERT_IF_NEW_AND_NOTIFY = f"WITH stored AS ({_INSERT_IF_NEW}) SELECT id, pg_notify('{NOTIFY_CHANNEL}', '') FROM stored"


MAX_EVENT_ID_LENGTH = WebhookEvent._meta.get_field("stripe_event_id").max_length
REFUSED_DETAIL = "Webhook refused: not a valid Stripe event for this endpoint"


def webhook_event_ingest(*, payload: bytes, signature: str | None) -> tuple[str, bool]:
    """Verify and store one delivery. Returns (event id, whether it was new).

    An unverified body gets one generic answer (no parser detail for whoever probes the
    endpoint); the reason is logged. A verified event we cannot store is refused naming why.
    """
    if len(payload) > MAX_PAYLOAD_BYTES:
        metrics.webhook_delivery(event_type="", outcome="refused", reason="too_large")
        raise WebhookPayloadTooLarge(f"Webhook body over {MAX_PAYLOAD_BYTES} bytes")
    try:
        event = stripe_gateway.webhook_payload_verify(payload, signature)
    except stripe_gateway.WebhookPayloadInvalid as exc:
        logger.warning("webhook refused: %s", exc)
        metrics.webhook_delivery(event_type="", outcome="refused", reason="invalid")
        raise WebhookRejected(REFUSED_DETAIL)
    if bool(event.get("livemode")) != stripe_gateway.key_is_live():
        metrics.webhook_delivery(event_type=event["type"], outcome="refused", reason="livemode")
        logger.warning("webhook refused: event %s livemode does not match the configured Stripe key", event["id"][:80])
        raise WebhookRejected(REFUSED_DETAIL)
    event_id = event["id"]
    if len(event_id) > MAX_EVENT_ID_LENGTH or not (event_id.isascii() and event_id.isprintable()):
        # Signed, so it is Stripe's (or our secret leaked): say why, and keep it out of the table.
        metrics.webhook_delivery(event_type=event["type"], outcome="refused", reason="invalid")
        logger.warning("webhook refused: signed event with an unstorable id (%d characters)", len(event_id))
        raise WebhookRejected(f"Event id must be at most {MAX_EVENT_ID_LENGTH} printable ASCII characters",
                              field="id")
    # The verified body is stored as sent (no re-serialising), unless it holds escapes jsonb refuses.
    log_context.bind_stripe_event(event)
    created = webhook_event_store(event, payload_json=_storable_json(payload.decode("utf-8"), event))
    metrics.webhook_delivery(event_type=event["type"], outcome="stored" if created else "duplicate")
    return event_id, created


def webhook_event_store(event: dict, *, payload_json: str | None = None) -> bool:
    """Store a verified event once; if new and handled, the outbox relay queues it.
    Returns whether it was new. The webhook and the reconciler both come through here.

    Race-free under concurrent deliveries of one event: the unique index decides which
    INSERT wins, and only the winner's row is there for the relay.
    """
    event_id, event_type = event["id"], text_storable_repaired(event["type"])
    handled = event_type in EVENT_HANDLERS
    status = WebhookEvent.Status.RECEIVED if handled else WebhookEvent.Status.IGNORED
    now = timezone.now()
    # PostgreSQL's jsonb and SQLite's text both take the JSON string.
    if payload_json is None:
        payload_json = _storable_json(json.dumps(event), event)
    # One statement in autocommit: the row is durable when it returns (and the relay
    # woken; inside a caller's transaction, at its commit).
    notify = handled and connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT_IF_NEW_AND_NOTIFY if notify else _INSERT_IF_NEW,
            [event_id, event_type[:100], text_storable_repaired(str(event.get("api_version") or ""))[:50],
             bool(event.get("livemode")), payload_json, status, now, now,
             log_context.current().get("request_id", "")[:64]],
        )
        created = cursor.fetchone() is not None
    if created:
        logger.info("webhook %s (%s): stored as %s", event_id, event_type, status)
    else:
        logger.info("webhook %s (%s): duplicate delivery, nothing to do", event_id, event_type)
    return created


# An escape in U+D800-U+DFFF: half of a pair, or alone (which jsonb refuses).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _storable_json(payload_json: str, event: dict) -> str:
    """`payload_json` unless it holds what jsonb refuses: NUL escapes (dropped) or a lone
    surrogate escape (re-serialised with U+FFFD in its place). Cheap substring checks first:
    almost every event has neither."""
    if _SURROGATE_ESCAPE.search(payload_json):
        payload_json = text_storable_repaired(json.dumps(event, ensure_ascii=False))
    if "\\u0000" in payload_json:
        payload_json = _without_nul_escapes(payload_json)
    return payload_json


# A \u0000 escape preceded by an even number of backslashes (so not an escaped "\\u0000").
_NUL_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def _without_nul_escapes(payload_json: str) -> str:
    # jsonb refuses \u0000 ("unsupported Unicode escape sequence"): drop NULs from strings
    # rather than refuse the event forever, so a stray NUL in a customer's name can't lose a payment.
    return _NUL_ESCAPE.sub(r"\1", payload_json)


def webhook_event_enqueue(stripe_event_id: str) -> bool:
    """Queue processing now (the sweep, an admin's retry; new events go through the relay).
    A broker outage is logged, not raised: the event stays stored as `received` and
    webhook_events_sweep queues it later."""
    try:
        task_send(PROCESS_WEBHOOK_EVENT, stripe_event_id)
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
        log_context.bind(stripe_event_id=stripe_event_id)
        if event is None:
            logger.warning("webhook %s: not stored, nothing to process", stripe_event_id)
            return "missing"
        if event.status in (WebhookEvent.Status.PROCESSED, WebhookEvent.Status.IGNORED):
            return event.status
        log_context.bind_stripe_event(event.payload)
        handler = EVENT_HANDLERS.get(event.type)
        if handler is None:
            event.status = WebhookEvent.Status.IGNORED
        else:
            try:
                with transaction.atomic():
                    handler(event.payload)
                event.status = WebhookEvent.Status.PROCESSED
                event.last_error = ""
            except NotOurs as exc:
                # Another integration's payment on the same account: nothing will ever arrive for it.
                event.status = WebhookEvent.Status.IGNORED
                event.last_error = error_text(exc)
        event.processed_at = timezone.now()
        event.next_attempt_at = None
        event.save(update_fields=["status", "last_error", "processed_at", "next_attempt_at", "updated_at"])
    metrics.event_processed(event_type=event.type, status=event.status, created=event.payload.get("created"))
    logger.info("webhook %s (%s): %s", stripe_event_id, event.type, event.status)
    return event.status


def webhook_event_start(*, stripe_event_id: str) -> bool:
    """Count one attempt and show it in progress; False when the event is not to be run
    (processed, ignored, or `failed`, which only an admin's retry reopens)."""
    return bool(WebhookEvent.objects.filter(
        stripe_event_id=stripe_event_id, status__in=[WebhookEvent.Status.RECEIVED, WebhookEvent.Status.PROCESSING]
    ).update(status=WebhookEvent.Status.PROCESSING, attempts=F("attempts") + 1, next_attempt_at=None,
             updated_at=timezone.now()))


def webhook_event_record_failure(*, stripe_event_id: str, error: BaseException) -> float | None:
    """Keep the error and decide: seconds until the next try (the event goes back to
    `received` with `next_attempt_at`, which the sweep respects), or None when this was
    final (`failed`, for an admin): a non-transient error, or attempts used up."""
    with transaction.atomic():
        event = WebhookEvent.objects.select_for_update().filter(stripe_event_id=stripe_event_id).first()
        if event is None or event.status != WebhookEvent.Status.PROCESSING:
            return None
        final = not error_is_transient(error) or retries_exhausted(event.attempts)
        delay = None if final else retry_delay(event.attempts)
        event.status = WebhookEvent.Status.FAILED if final else WebhookEvent.Status.RECEIVED
        event.next_attempt_at = None if final else timezone.now() + timedelta(seconds=delay)
        event.last_error = error_text(error)
        event.save(update_fields=["status", "next_attempt_at", "last_error", "updated_at"])
        if final:  # once per failure: only a PROCESSING event gets here
            admin_alert_on_commit(
                subject=f"Stripe event {stripe_event_id} failed for good",
                message=(f"Event {stripe_event_id} ({event.type}) failed after {event.attempts} attempt(s): "
                         f"{event.last_error}"
                         + "\nSee it in the admin (Webhook events, status failed); \"Retry selected\" runs it again."),
            )
    log = logger.error if final else logger.warning
    log("webhook %s: attempt %d failed (%s)%s", stripe_event_id, event.attempts, event.last_error,
        ", giving up" if final else f", next try in {delay:.1f}s")
    return delay


def webhook_events_retry(*, stripe_event_ids: list[str]) -> int:
    """Admin "Retry selected" and `retry_failed_events`: back to received, queued again.
    Processed and ignored events are left alone (handlers would change nothing)."""
    retryable = WebhookEvent.objects.filter(stripe_event_id__in=stripe_event_ids).exclude(
        status__in=[WebhookEvent.Status.PROCESSED, WebhookEvent.Status.IGNORED]
    )
    ids = list(retryable.values_list("stripe_event_id", flat=True))
    # A fresh budget of attempts: the admin judged the cause fixed.
    retryable.update(status=WebhookEvent.Status.RECEIVED, attempts=0, next_attempt_at=None, updated_at=timezone.now())
    return sum(webhook_event_enqueue(event_id) for event_id in ids)


def webhook_event_replay(*, stripe_event_id: str) -> str:
    """Process one event again, fetching it from Stripe if we never stored it. Handlers
    are idempotent, so replaying a processed event changes nothing that is already right."""
    if not WebhookEvent.objects.filter(stripe_event_id=stripe_event_id).exists():
        webhook_event_store(stripe_gateway.event_retrieve(stripe_event_id))
    WebhookEvent.objects.filter(stripe_event_id=stripe_event_id, type__in=list(EVENT_HANDLERS)).update(
        status=WebhookEvent.Status.RECEIVED, attempts=0, next_attempt_at=None, updated_at=timezone.now()
    )
    return webhook_event_process(stripe_event_id=stripe_event_id)
