"""What an operator asks: is the pipeline working? Readiness, alerts, retention, status.

The same figures feed `/api/health/ready`, the state gauges of `/metrics`,
`manage.py payments_status` and the alerts beat job, so they can't disagree.
"""
import logging
import time
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Min
from django.utils import timezone

from backend.celery_app import app as celery_app
from backend.errors import ApplicationError
from backend.models import Checkout, Refund, Session, WebhookEvent
from backend.observability.celery import BEAT_LAST_RUN_KEY, BEAT_TICK_KEY
from backend.observability.metrics import LAST_WEBHOOK_KEY
from backend.services.health import broker_reachable, database_reachable
from backend.services.notifications import admin_alert

logger = logging.getLogger(__name__)

UNPROCESSED = (WebhookEvent.Status.RECEIVED, WebhookEvent.Status.PROCESSING)
PRUNABLE = (WebhookEvent.Status.PROCESSED, WebhookEvent.Status.IGNORED)
PRUNE_BATCH = 1000
ALERT_DEDUP_SECONDS = 3600


def _queue_depth() -> int | None:
    try:
        with celery_app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=2)
            # Every queue this deployment's workers consume (the default one and notifications).
            return sum(conn.default_channel.queue_declare(queue=name).message_count
                       for name in celery_app.amqp.queues)
    except Exception:
        logger.warning("operations: queue depth unavailable", exc_info=True)
        return None


def workers_answering(timeout: float | None = None) -> int:
    """Celery workers that answer a ping within `timeout` seconds."""
    try:
        replies = celery_app.control.ping(timeout=timeout if timeout is not None else settings.HEALTH_WORKER_PING_TIMEOUT)
    except Exception:
        logger.warning("operations: worker ping failed", exc_info=True)
        return 0
    return len(replies or [])


def beat_last_runs() -> dict[str, float]:
    """Periodic task name -> when beat last sent it (Unix time): our record at send time, or
    django-celery-beat's own last_run_at (which it saves every few minutes) if later."""
    from django_celery_beat.models import PeriodicTask

    runs = {name: last.timestamp() if last else 0.0
            for name, last in PeriodicTask.objects.filter(enabled=True).values_list("name", "last_run_at")}
    try:
        sent = cache.get_many([BEAT_LAST_RUN_KEY.format(name) for name in runs])
    except Exception:
        sent = {}
    for name in runs:
        runs[name] = max(runs[name], sent.get(BEAT_LAST_RUN_KEY.format(name)) or 0.0)
    return runs


def beat_last_tick_age() -> float | None:
    """Seconds since beat last sent a task; None when it never has."""
    try:
        tick = cache.get(BEAT_TICK_KEY)
    except Exception:
        tick = None
    last = max([tick or 0.0, *beat_last_runs().values()])
    return round(time.time() - last, 1) if last else None


def operations_state() -> dict:
    """State figures from the database, broker and cache (no worker ping: that takes a second)."""
    now = timezone.now()
    events = dict(WebhookEvent.objects.order_by().values_list("status").annotate(n=Count("id")))
    refunds = dict(Refund.objects.order_by().values_list("status").annotate(n=Count("id")))
    oldest = WebhookEvent.objects.filter(status__in=UNPROCESSED).aggregate(at=Min("received_at"))["at"]
    return {
        "events_by_status": {s: events.get(s, 0) for s in WebhookEvent.Status.values},
        "refunds_by_status": {s: refunds.get(s, 0) for s in Refund.Status.values},
        "queue_depth": _queue_depth(),
        "oldest_unprocessed_event_age_seconds": round((now - oldest).total_seconds(), 1) if oldest else None,
        "beat_last_run": beat_last_runs(),
    }


def readiness() -> tuple[bool, dict]:
    """Every check with its value, threshold and verdict; ready when all are ok."""
    checks: dict[str, dict] = {
        "database": {"ok": database_reachable()},
        "broker": {"ok": broker_reachable()},
    }
    workers = workers_answering()
    checks["workers"] = {"value": workers, "threshold": 1, "ok": workers >= 1}
    if checks["database"]["ok"]:
        state = operations_state()
        beat_age = beat_last_tick_age()
        checks["beat_last_tick_age_seconds"] = {
            "value": beat_age, "threshold": settings.HEALTH_MAX_BEAT_AGE_SECONDS,
            "ok": beat_age is not None and beat_age <= settings.HEALTH_MAX_BEAT_AGE_SECONDS}
        oldest = state["oldest_unprocessed_event_age_seconds"]
        checks["oldest_unprocessed_event_age_seconds"] = {
            "value": oldest, "threshold": settings.HEALTH_MAX_UNPROCESSED_EVENT_AGE_SECONDS,
            "ok": (oldest or 0) <= settings.HEALTH_MAX_UNPROCESSED_EVENT_AGE_SECONDS}
        failed_events = state["events_by_status"][WebhookEvent.Status.FAILED]
        checks["failed_events"] = {"value": failed_events, "threshold": settings.HEALTH_MAX_FAILED_EVENTS,
                                   "ok": failed_events <= settings.HEALTH_MAX_FAILED_EVENTS}
        failed_refunds = state["refunds_by_status"][Refund.Status.FAILED]
        checks["failed_refunds"] = {"value": failed_refunds, "threshold": settings.HEALTH_MAX_FAILED_REFUNDS,
                                    "ok": failed_refunds <= settings.HEALTH_MAX_FAILED_REFUNDS}
        if not checks["beat_last_tick_age_seconds"]["ok"]:
            beat_stopped_check()  # beat can't mail about its own death; at most once an hour
    return all(c["ok"] for c in checks.values()), checks


def last_hour_counts() -> dict:
    since = timezone.now() - timedelta(hours=1)
    return {
        "webhook_events_received": WebhookEvent.objects.filter(received_at__gte=since).count(),
        "webhook_events_processed": WebhookEvent.objects.filter(processed_at__gte=since, status="processed").count(),
        "webhook_events_failed": WebhookEvent.objects.filter(updated_at__gte=since, status="failed").count(),
        "checkouts_created": Checkout.objects.filter(created_at__gte=since).count(),
        "sessions_booked": Session.objects.filter(created_at__gte=since).count(),
        "refunds_requested": Refund.objects.filter(created_at__gte=since).count(),
        "refunds_failed": Refund.objects.filter(updated_at__gte=since, status="failed").count(),
    }


def alert_once(*, condition: str, subject: str, message: str) -> bool:
    """Mail the admins unless this condition was already mailed within the hour."""
    try:
        first = cache.add(f"ops:alert:{condition}", time.time(), timeout=ALERT_DEDUP_SECONDS)
    except Exception:
        logger.warning("operations: alert dedup unavailable, mailing anyway", exc_info=True)
        first = True
    if first:
        admin_alert(subject=subject, message=message)
    return first


def alerts_check() -> list[str]:
    """The beat job: which conditions hold now (each mailed at most once an hour)."""
    from backend import stripe_gateway

    raised = []
    silence = settings.WEBHOOK_SILENCE_ALERT_MINUTES
    last_webhook = cache.get(LAST_WEBHOOK_KEY)
    window_start = time.time() - silence * 60
    if last_webhook is None or last_webhook < window_start:
        try:
            completed = next(iter(stripe_gateway.events_list(
                types=["checkout.session.completed"], created_gte=int(window_start), limit=1)), None)
        except ApplicationError as exc:  # Stripe unreachable: the other conditions are still checked
            logger.warning("alerts: could not ask Stripe for completed checkouts: %s", exc)
            completed = None
        if completed is not None:
            raised.append("webhook_silence")
            alert_once(condition="webhook_silence", subject="No Stripe webhook is arriving",
                       message=f"No webhook delivery for {silence} minutes, while Stripe completed checkouts "
                               f"(e.g. event {completed['id']}). Check the endpoint and STRIPE_WEBHOOK_SECRET.")
    oldest = operations_state()["oldest_unprocessed_event_age_seconds"]
    if oldest is not None and oldest > settings.HEALTH_MAX_UNPROCESSED_EVENT_AGE_SECONDS:
        raised.append("events_backlog")
        alert_once(condition="events_backlog", subject="Stripe events are waiting unprocessed",
                   message=f"The oldest unprocessed event is {int(oldest)} s old. Are the workers running?")
    raised += beat_stopped_check()
    return raised


def beat_stopped_check() -> list[str]:
    """Beat can't report its own death: readiness and payments_status call this too."""
    age = beat_last_tick_age()
    if age is not None and age > settings.HEALTH_MAX_BEAT_AGE_SECONDS:
        alert_once(condition="beat_stopped", subject="Celery beat has stopped",
                   message=f"Beat has sent no periodic task for {int(age)} s: reconciliation, sweeps and "
                           f"hold expiry are not running.")
        return ["beat_stopped"]
    return []


def webhook_events_prune(*, batch_size: int = PRUNE_BATCH) -> int:
    """Delete processed and ignored events older than WEBHOOK_EVENT_RETENTION_DAYS, a batch
    at a time (short transactions, no long lock); failed ones stay for an admin."""
    cutoff = timezone.now() - timedelta(days=settings.WEBHOOK_EVENT_RETENTION_DAYS)
    deleted = 0
    while True:
        ids = list(WebhookEvent.objects.filter(status__in=PRUNABLE, received_at__lt=cutoff)
                   .order_by().values_list("id", flat=True)[:batch_size])
        if not ids:
            break
        deleted += WebhookEvent.objects.filter(id__in=ids).delete()[0]
    if deleted:
        logger.info("retention: pruned %d webhook events older than %d days", deleted,
                    settings.WEBHOOK_EVENT_RETENTION_DAYS)
    return deleted
