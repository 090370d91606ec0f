"""Celery signal handlers: log ids carried in task headers, task metrics, beat's ticks.

Connected once from BackendConfig.ready(), so web (which publishes), worker and beat all
have them.
"""
import time

from celery import signals

from backend.observability import context, metrics

BEAT_LAST_RUN_KEY = "ops:beat_last_run:{}"
BEAT_TICK_KEY = "ops:beat_last_tick"


@signals.before_task_publish.connect
def _publish_with_ids(sender=None, headers=None, **_):
    """The publisher's ids travel in a header; beat's sends are recorded for readiness and metrics."""
    if headers is None:
        return
    ids = context.current()
    if ids:
        headers[context.HEADER] = ids
    periodic = headers.get("periodic_task_name")
    if periodic:
        from django.core.cache import cache

        now = time.time()
        try:
            cache.set_many({BEAT_TICK_KEY: now, BEAT_LAST_RUN_KEY.format(periodic): now}, timeout=None)
        except Exception:  # the cache being down must not stop beat
            pass


@signals.beat_init.connect
def _beat_started(**_):
    from django.core.cache import cache

    try:
        cache.set(BEAT_TICK_KEY, time.time(), timeout=None)
    except Exception:
        pass


_tokens: dict[str, object] = {}


@signals.task_prerun.connect
def _task_ids_bind(task_id=None, task=None, **_):
    request = task.request
    ids = getattr(request, context.HEADER, None) or (getattr(request, "headers", None) or {}).get(context.HEADER)
    _tokens[task_id] = context.replace(ids if isinstance(ids, dict) else {})


@signals.task_postrun.connect
def _task_ran(task_id=None, task=None, state=None, **_):
    metrics.TASK_RUNS.labels(task.name, state or "UNKNOWN").inc()
    token = _tokens.pop(task_id, None)
    if token is not None:
        try:
            context.reset(token)
        except ValueError:  # set in another context (a thread pool): just clear
            context.replace({})


@signals.task_retry.connect
def _task_retried(sender=None, **_):
    metrics.TASK_RETRIES.labels(sender.name).inc()


@signals.task_failure.connect
def _task_failed(sender=None, **_):
    metrics.TASK_FAILURES.labels(sender.name).inc()
