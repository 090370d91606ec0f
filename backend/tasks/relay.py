"""The outbox relay: stored webhook events become Celery tasks off the request path.

Worker infrastructure, beside the tasks it queues. The webhook answers Stripe once the event
row is committed (the durable part) and leaves the Celery publish to this relay, which is
about half of what a delivery used to cost. On PostgreSQL the webhook's INSERT also does
`pg_notify(NOTIFY_CHANNEL)`, so the relay wakes within a millisecond; it also looks every
`poll_seconds` (the only way on SQLite, and the catch-up after a lost LISTEN connection).

Delivery stays at least once: rows are claimed (services/webhook_outbox.py) by one UPDATE,
then published together with no lock held. A publish that fails puts its rows back;
a relay that dies between claim and publish leaves them to webhook_events_sweep (beat,
a minute). A duplicate publish is harmless: processing locks the row and checks its status.

It runs as a thread in every Celery worker (worker.py's WebhookRelayStep); several relays
may run at once (rows are claimed with SKIP LOCKED), and `manage.py webhook_relay` runs it alone.
"""
import logging
import select
import threading
import weakref

from django.db import close_old_connections, connection

from backend.observability import context as log_context
from backend.services.webhook_outbox import NOTIFY_CHANNEL, webhook_events_claim, webhook_events_unclaim
from backend.tasks.webhooks import process_webhook_event

logger = logging.getLogger(__name__)

BATCH_SIZE = 100
POLL_SECONDS = 2.0
SQLITE_POLL_SECONDS = 0.25
RECONNECT_SECONDS = 1.0
GATHER_SECONDS = 0.005


def webhook_events_relay(*, limit: int = BATCH_SIZE, broker_connection=None) -> int:
    """Claim up to `limit` stored, handled events nobody has queued and queue them, on
    `broker_connection` (a kombu connection; default: the app's pool). Returns how many
    were published; raises, with the claimed rows back to unqueued, if the broker fails."""
    claimed = webhook_events_claim(limit=limit)
    if not claimed:
        return 0
    app = process_webhook_event.app
    try:
        with app.producer_or_acquire() if broker_connection is None else broker_connection.Producer() as producer:
            # One Redis pipeline for the batch (kombu's publish batch; a transport without
            # batches publishes each at once): most of a lone delay()'s cost is per round trip.
            with producer.batch():
                for _, stripe_event_id, request_id in claimed:
                    # The delivery's ids travel in the task's header, as when the request queued it.
                    with log_context.scope({"request_id": request_id, "stripe_event_id": stripe_event_id}):
                        process_webhook_event.apply_async((stripe_event_id,), producer=producer)
    except Exception:
        # A batch is all or nothing as far as we can tell: every claimed row goes back.
        webhook_events_unclaim(row_ids=[pk for pk, _, _ in claimed])
        logger.warning("relay: broker unavailable, %d event(s) left to queue", len(claimed))
        raise
    logger.debug("relay: queued %d event(s)", len(claimed))
    return len(claimed)


_running: "weakref.WeakSet[WebhookRelay]" = weakref.WeakSet()


def relays_running() -> list["WebhookRelay"]:
    """The relays this process runs (one per worker in it)."""
    return list(_running)


class WebhookRelay:
    """The relay loop on a thread: wait for a NOTIFY (or the poll interval), drain, repeat."""

    def __init__(self):
        self.listens = connection.vendor == "postgresql"
        self.poll_seconds = POLL_SECONDS if self.listens else SQLITE_POLL_SECONDS
        self._stopping = threading.Event()
        self._paused = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener = None

    def pause(self) -> None:
        """Claim nothing until resume() (the batch in hand is still published). For a test
        that runs workers of its own against the database this process's worker watches."""
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()

    def start(self) -> "WebhookRelay":
        self._thread = threading.Thread(target=self.run, name="webhook-relay", daemon=True)
        self._thread.start()
        _running.add(self)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        _running.discard(self)
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self) -> None:
        logger.info("relay: started (%s)", "LISTEN " + NOTIFY_CHANNEL if self.listens else
                    f"polling every {self.poll_seconds}s")
        try:
            while not self._stopping.is_set():
                if self._paused.is_set():
                    self._stopping.wait(0.1)
                    continue
                try:
                    self._drain()
                    self._wait()
                except Exception:
                    # Database or broker down: nothing is lost (the rows wait), try again shortly,
                    # on new connections (a dropped one would fail every pass after).
                    logger.warning("relay: pass failed, retrying in %ss", RECONNECT_SECONDS, exc_info=True)
                    self._listen_close()
                    self._database_close()
                    self._stopping.wait(RECONNECT_SECONDS)
        finally:
            self._listen_close()
            self._database_close()

    def _drain(self) -> None:
        while not (self._stopping.is_set() or self._paused.is_set()) and webhook_events_relay() == BATCH_SIZE:
            pass

    def _wait(self) -> None:
        if not self.listens:
            self._stopping.wait(self.poll_seconds)
            close_old_connections()
            return
        listener = self._listen()
        readable, _, _ = select.select([listener], [], [], self.poll_seconds)
        if readable:
            # A moment for the deliveries arriving alongside to join the batch: under load
            # that spreads the publish's fixed cost over several events, for a few ms each.
            self._stopping.wait(GATHER_SECONDS)
            listener.poll()
            listener.notifies.clear()
        else:
            # Quiet for a while: honour CONN_MAX_AGE and health checks, as a request would
            # (not on every wake: under load that would be a round trip per batch).
            close_old_connections()

    def _listen(self):
        """A connection of its own in autocommit, subscribed to the channel (made once)."""
        if self._listener is None:
            listener = connection.get_new_connection(connection.get_connection_params())
            listener.autocommit = True
            with listener.cursor() as cursor:
                cursor.execute(f"LISTEN {NOTIFY_CHANNEL}")
            self._listener = listener
            # Anything stored while we were not listening is drained before the first wait.
            self._drain()
        return self._listener

    @staticmethod
    def _database_close() -> None:
        try:
            connection.close()
        except Exception:
            pass

    def _listen_close(self) -> None:
        if self._listener is not None:
            try:
                self._listener.close()
            except Exception:
                pass
            self._listener = None
