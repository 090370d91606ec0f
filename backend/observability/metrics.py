"""Prometheus metrics, served at /metrics on the API port.

Two kinds, chosen for correctness across processes:

- *Counters and histograms* (webhook deliveries, checkout creations, task runs, Stripe
  calls, event age) are incremented where things happen, in whichever gunicorn worker or
  Celery pool process did them. With `PROMETHEUS_MULTIPROC_DIR` set, prometheus_client's
  multiprocess mode writes each process's values to a memory-mapped file there and the
  scrape sums them, so any gunicorn worker answering /metrics reports the whole
  machine's totals (web, worker and beat share the directory). Unset (make run, one
  process per role), the process's own registry is served.
- *State* (events and refunds by status, queue depth, oldest unprocessed event, last beat
  run per periodic task) is read from PostgreSQL, the broker and the cache at scrape
  time. Those figures belong to the system, not to a process, so no process can hold
  them wrong after a restart, and they need no multiprocess gauge bookkeeping.

Every increment is a dict lookup and a float add (an mmap write in multiprocess mode):
cheap enough for the webhook's hot path (bench/webhook_ingest.py measures it on and off).
"""
import functools
import logging
import os
import re
import time
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

logger = logging.getLogger(__name__)

WEBHOOK_DELIVERIES = Counter(
    "myroadmap_webhook_deliveries_total", "Stripe webhook deliveries by event type and outcome "
    "(stored, duplicate, refused); refusals carry their reason", ["type", "outcome", "reason"])
EVENTS_PROCESSED = Counter(
    "myroadmap_webhook_events_processed_total", "Stored events a worker finished, by type and final status",
    ["type", "status"])
EVENT_AGE = Histogram(
    "myroadmap_webhook_event_age_seconds", "From Stripe's `created` to our processing of the event",
    ["type"], buckets=(1, 2, 5, 10, 30, 60, 300, 900, 3600, 6 * 3600, 24 * 3600, 3 * 24 * 3600))
CHECKOUT_CREATIONS = Counter(
    "myroadmap_checkout_creations_total", "create-checkout-session calls by outcome (created or the error code)",
    ["outcome"])
TASK_RUNS = Counter("myroadmap_task_runs_total", "Celery task runs by task and final state", ["task", "state"])
TASK_RETRIES = Counter("myroadmap_task_retries_total", "Celery task retries by task", ["task"])
TASK_FAILURES = Counter("myroadmap_task_failures_total", "Celery task failures (exceptions) by task", ["task"])
STRIPE_CALLS = Counter(
    "myroadmap_stripe_api_calls_total", "HTTP requests to Stripe by endpoint and outcome (status code or error)",
    ["endpoint", "outcome"])
STRIPE_LATENCY = Histogram(
    "myroadmap_stripe_api_call_seconds", "Latency of HTTP requests to Stripe by endpoint", ["endpoint"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30))


_EVENT_TYPE = re.compile(r"[a-z_.]{1,80}")


def _type_label(event_type: str) -> str:
    """Stripe's event type as a label, or `other`: a signed event may carry anything there
    (a lone surrogate can't even be written out), and labels must stay few and printable."""
    return event_type if _EVENT_TYPE.fullmatch(event_type or "") else "other"


def webhook_delivery(*, event_type: str, outcome: str, reason: str = "") -> None:
    """One delivery to the webhook: stored, duplicate or refused (with its reason)."""
    WEBHOOK_DELIVERIES.labels(_type_label(event_type) if event_type else "", outcome, reason).inc()
    if outcome != "refused":
        _webhook_heartbeat()


_HEARTBEAT_EVERY = 15.0
_last_heartbeat = 0.0
LAST_WEBHOOK_KEY = "ops:last_webhook_at"


def _webhook_heartbeat() -> None:
    # The silence alert needs the time of the last delivery across all processes: written to
    # the shared cache at most every 15 s per process, so the hot path rarely pays for it.
    global _last_heartbeat
    now = time.monotonic()
    if now - _last_heartbeat < _HEARTBEAT_EVERY:
        return
    _last_heartbeat = now
    try:
        from django.core.cache import cache

        cache.set(LAST_WEBHOOK_KEY, time.time(), timeout=None)
    except Exception:
        logger.warning("metrics: could not record the webhook heartbeat", exc_info=True)


def event_processed(*, event_type: str, status: str, created: int | float | None) -> None:
    event_type = _type_label(event_type)
    EVENTS_PROCESSED.labels(event_type, status).inc()
    if isinstance(created, (int, float)) and status == "processed":
        EVENT_AGE.labels(event_type).observe(max(0.0, time.time() - created))


def counts_outcome(counter: Counter):
    """Decorator: `created` when the function returns, the domain error's code when it raises one."""
    from backend.errors import ApplicationError

    def decorate(function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            try:
                result = function(*args, **kwargs)
            except ApplicationError as exc:
                counter.labels(type(exc).code).inc()  # the class's code: a bounded set of labels
                raise
            counter.labels("created").inc()
            return result
        return wrapper
    return decorate


# /v1/checkout/sessions/cs_test_a1B2/expire -> /v1/checkout/sessions/{id}/expire: ids carry
# digits or capitals, Stripe's resource names never do.
_ID_SEGMENT = re.compile(r"/[A-Za-z]+_[A-Za-z0-9_]*[0-9A-Z][A-Za-z0-9_]*")


def stripe_endpoint(method: str, url: str) -> str:
    path = url.split("://", 1)[-1]
    path = path[path.find("/"):] if "/" in path else "/"
    path = path.split("?", 1)[0]
    return f"{method.upper()} {_ID_SEGMENT.sub('/{id}', path)}"


def stripe_http_client_instrument(http_client):
    """Wrap an SDK HTTP client's `request` so every attempt (retries too) is counted and timed."""
    request = http_client.request

    @functools.wraps(request)
    def timed_request(method, url, headers, post_data=None, *args, **kwargs):
        endpoint, started = stripe_endpoint(method, url), time.perf_counter()
        outcome = "connection_error"
        try:
            response = request(method, url, headers, post_data, *args, **kwargs)
            outcome = str(response[1])
            return response
        finally:
            STRIPE_CALLS.labels(endpoint, outcome).inc()
            STRIPE_LATENCY.labels(endpoint).observe(time.perf_counter() - started)

    http_client.request = timed_request
    return http_client


_state_source: Callable[[], dict] | None = None


def state_source_register(source: Callable[[], dict]) -> None:
    """Where the state gauges come from: a function of the layer above (the operations
    service) returning the figures, registered by whoever serves /metrics. Observability
    is a foundation and never imports services itself."""
    global _state_source
    _state_source = source


class StateCollector:
    """Figures read at scrape time from the database, the broker and the cache."""

    def collect(self):
        if _state_source is None:
            return
        try:
            state = _state_source()
        except Exception:
            logger.warning("metrics: state figures unavailable", exc_info=True)
            return
        events = GaugeMetricFamily("myroadmap_webhook_events", "Stored webhook events by status", labels=["status"])
        for status, count in state["events_by_status"].items():
            events.add_metric([status], count)
        yield events
        refunds = GaugeMetricFamily("myroadmap_refunds", "Refunds by status", labels=["status"])
        for status, count in state["refunds_by_status"].items():
            refunds.add_metric([status], count)
        yield refunds
        if state["queue_depth"] is not None:
            yield GaugeMetricFamily("myroadmap_queue_depth", "Messages waiting in the Celery queue",
                                    value=state["queue_depth"])
        yield GaugeMetricFamily("myroadmap_oldest_unprocessed_event_age_seconds",
                                "Age of the oldest event not yet processed (0 when none)",
                                value=state["oldest_unprocessed_event_age_seconds"] or 0)
        beat = GaugeMetricFamily("myroadmap_beat_last_run_timestamp_seconds",
                                 "When beat last sent each periodic task (Unix time)", labels=["task"])
        for name, at in state["beat_last_run"].items():
            beat.add_metric([name], at)
        yield beat


@functools.lru_cache(maxsize=1)
def registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        collected = CollectorRegistry()
        multiprocess.MultiProcessCollector(collected)
    else:
        from prometheus_client import REGISTRY as collected
    collected.register(StateCollector())
    return collected


def exposition() -> tuple[bytes, str]:
    return generate_latest(registry()), CONTENT_TYPE_LATEST
