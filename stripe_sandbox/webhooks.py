"""Webhook delivery on a background thread: signed POSTs, retries with exponential
backoff, the delivery outcome per event, pause/resume, and injected faults.

API requests only enqueue; a slow or failing endpoint never holds them up.
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
import threading
import time
from dataclasses import asdict, dataclass, field

import httpx

from .ids import new_id
from .signing import signature_header
from .store import Store


@dataclass
class DeliverySettings:
    url: str | None
    secret: str | None
    retry_base: float = 0.2  # seconds before the first retry; doubles each time
    retry_max_delay: float = 30.0
    max_attempts: int = 8
    timeout: float = 5.0
    # With a reorder window, wait this long for a window to fill before shuffling it.
    reorder_linger: float = 0.3


@dataclass
class Faults:
    duplicate_rate: float = 0.0  # chance that an event is delivered twice
    reorder_window: int = 0  # shuffle deliveries within groups of this many
    delay_ms: int = 0  # hold every delivery this long first
    fail_first: int = 0  # count the first N attempts of each event as failed, whatever the answer
    seed: int | None = None  # makes duplicate and reorder choices repeatable

    def validated(self) -> "Faults":
        if not 0 <= self.duplicate_rate <= 1:
            raise ValueError("duplicate_rate must be between 0 and 1")
        if self.reorder_window < 0 or self.delay_ms < 0 or self.fail_first < 0:
            raise ValueError("reorder_window, delay_ms and fail_first must be >= 0")
        return self


@dataclass(order=True)
class _Job:
    due: float
    order: int
    event_id: str = field(compare=False)
    attempt: int = field(compare=False)  # 1 for the first try of this copy
    copy: str = field(compare=False)  # original | duplicate | resend


class WebhookDispatcher:
    def __init__(self, store: Store, settings: DeliverySettings):
        self.store = store
        self.settings = settings
        self.faults = Faults()
        self._random = random.Random()
        self._queue: list[_Job] = []
        self._order = itertools.count()
        self._condition = threading.Condition()
        self._paused = False
        self._stopping = False
        self._in_flight = 0
        self._thread: threading.Thread | None = None
        self._client = httpx.Client(timeout=settings.timeout)

    @property
    def enabled(self) -> bool:
        return bool(self.settings.url)

    def start(self) -> None:
        if not self.enabled:
            return
        for event in self.store.newest_first("event")[::-1]:
            if not self.store.internal[event["id"]].get("delivered"):
                self._push(event["id"], attempt=1, copy="original", delay=0)
        self._thread = threading.Thread(target=self._run, name="webhook-delivery", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        if self._thread:
            self._thread.join(timeout=self.settings.timeout + 2)
        self._client.close()

    # ---- Called by the API and the control API ----------------------------------------

    def event_created(self, event: dict) -> None:
        if not self.enabled or not event["pending_webhooks"]:  # no endpoint, or not subscribed to the type
            return
        with self._condition:
            delay = self.faults.delay_ms / 1000
            self._push(event["id"], attempt=1, copy="original", delay=delay)
            if self._random.random() < self.faults.duplicate_rate:
                self._push(event["id"], attempt=1, copy="duplicate", delay=delay)

    def resend(self, event_id: str) -> None:
        with self._condition:
            self._push(event_id, attempt=1, copy="resend", delay=0)

    def set_faults(self, faults: Faults) -> None:
        with self._condition:
            self.faults = faults.validated()
            self._random = random.Random(faults.seed)

    def pause(self) -> None:
        with self._condition:
            self._paused = True

    def resume(self) -> None:
        with self._condition:
            self._paused = False
            self._condition.notify_all()

    def reset(self) -> None:
        with self._condition:
            self._queue.clear()
            self._paused = False
            self.faults = Faults()
            self._random = random.Random()

    def status(self) -> dict:
        with self._condition:
            return {"enabled": self.enabled, "url": self.settings.url, "paused": self._paused,
                    "queued": len(self._queue), "in_flight": self._in_flight,
                    "faults": asdict(self.faults)}

    # ---- The delivery thread --------------------------------------------------------

    def _push(self, event_id: str, *, attempt: int, copy: str, delay: float) -> None:
        heapq.heappush(self._queue, _Job(time.monotonic() + delay, next(self._order),
                                         event_id, attempt, copy))
        self._condition.notify_all()

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            for job in batch:
                self._deliver(job)
            with self._condition:
                self._in_flight = 0

    def _next_batch(self) -> list[_Job] | None:
        """Wait for due jobs; None when stopping. Waits are bounded so the loop always
        re-checks the stop flag."""
        with self._condition:
            while not self._stopping:
                now = time.monotonic()
                if self._paused or not self._queue:
                    self._condition.wait(timeout=0.5)
                    continue
                if self._queue[0].due > now:
                    self._condition.wait(timeout=min(self._queue[0].due - now, 0.5))
                    continue
                window = self.faults.reorder_window
                due = [job for job in self._queue if job.due <= now]
                if window > 1 and len(due) < window and now - self._queue[0].due < self.settings.reorder_linger:
                    self._condition.wait(timeout=0.05)  # let the window fill
                    continue
                batch = sorted(due)[:max(window, 1)]
                for job in batch:
                    self._queue.remove(job)
                heapq.heapify(self._queue)
                if window > 1:
                    self._random.shuffle(batch)
                self._in_flight = len(batch)
                return batch
            return None

    def _deliver(self, job: _Job) -> None:
        with self.store.lock:
            event = self.store.find(job.event_id)
            if event is None:  # the sandbox was reset meanwhile
                return
            body = json.dumps(event, indent=2)
        started = time.time()
        status_code, error = None, None
        try:
            response = self._client.post(self.settings.url, content=body.encode(), headers={
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                "Stripe-Signature": signature_header(body, self.settings.secret or ""),
            })
            status_code = response.status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        answered_2xx = status_code is not None and 200 <= status_code < 300
        failed_by_fault = job.attempt <= self.faults.fail_first
        succeeded = answered_2xx and not failed_by_fault
        self._record(job, event, started, status_code, error, succeeded,
                     "fail_first" if failed_by_fault else None)
        if not succeeded and job.attempt < self.settings.max_attempts:
            delay = min(self.settings.retry_base * 2 ** (job.attempt - 1), self.settings.retry_max_delay)
            with self._condition:
                if not self._stopping:
                    self._push(job.event_id, attempt=job.attempt + 1, copy=job.copy, delay=delay)

    def _record(self, job: _Job, event: dict, started: float, status_code: int | None,
                error: str | None, succeeded: bool, fault: str | None) -> None:
        with self.store.lock:
            if self.store.find(job.event_id) is None:
                return
            self.store.record_delivery({
                "id": new_id("whdel_"), "event_id": job.event_id, "event_type": event["type"],
                "attempt": job.attempt, "copy": job.copy, "status_code": status_code,
                "error": error, "fault": fault, "succeeded": succeeded, "time": started,
                "duration_ms": round((time.time() - started) * 1000, 1)})
            if succeeded and not self.store.internal[job.event_id].get("delivered"):
                self.store.internal[job.event_id]["delivered"] = True
                self.store.objects[job.event_id]["pending_webhooks"] = 0
            self.store.save()
