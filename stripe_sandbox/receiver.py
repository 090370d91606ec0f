"""A webhook endpoint for tests: a threaded HTTP server on 127.0.0.1 that records every
delivery and answers 200, or fails or answers slowly when told to.

It also answers GET with a small HTML page, so that its URL can stand in for the
merchant's success_url / cancel_url in browser tests."""

from __future__ import annotations

import html
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class ReceivedDelivery:
    body: str
    headers: dict[str, str]
    answered: int
    received_at: float

    @property
    def event(self) -> dict:
        return json.loads(self.body)

    @property
    def signature(self) -> str:
        return self.headers.get("stripe-signature", "")


class WebhookReceiver:
    def __init__(self, path: str = "/webhook"):
        self.path = path
        self._lock = threading.Lock()
        self._deliveries: list[ReceivedDelivery] = []
        self._failures_left = 0
        self._fail_status = 500
        self._fail_always = False
        self._answer_delay = 0.0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        return self.base_url + self.path

    def start(self) -> "WebhookReceiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length).decode()
                status = receiver._answer_status()
                if receiver._answer_delay:
                    time.sleep(receiver._answer_delay)
                with receiver._lock:
                    receiver._deliveries.append(ReceivedDelivery(
                        body, {key.lower(): value for key, value in self.headers.items()},
                        status, time.time()))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"received": true}' if status < 300 else b'{"error": "told to fail"}')

            def do_GET(self):
                page = (f'<!doctype html><title>Merchant</title><h1 data-testid="merchant-page">'
                        f'Merchant page</h1><p data-testid="merchant-path">{html.escape(self.path)}</p>')
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write(page.encode())

            def log_message(self, *args):  # keep test output quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self) -> "WebhookReceiver":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # ---- Behaviour -------------------------------------------------------------------

    def fail_next(self, count: int, status: int = 500) -> None:
        with self._lock:
            self._failures_left, self._fail_status = count, status

    def fail_always(self, status: int = 500) -> None:
        with self._lock:
            self._fail_always, self._fail_status = True, status

    def answer_slowly(self, seconds: float) -> None:
        with self._lock:
            self._answer_delay = seconds

    def succeed(self) -> None:
        """Back to answering 200 at once."""
        with self._lock:
            self._fail_always, self._failures_left, self._answer_delay = False, 0, 0.0

    def _answer_status(self) -> int:
        with self._lock:
            if self._fail_always:
                return self._fail_status
            if self._failures_left > 0:
                self._failures_left -= 1
                return self._fail_status
            return 200

    # ---- What arrived ----------------------------------------------------------------

    @property
    def deliveries(self) -> list[ReceivedDelivery]:
        with self._lock:
            return list(self._deliveries)

    def events(self, *, only_accepted: bool = False) -> list[dict]:
        return [delivery.event for delivery in self.deliveries
                if not only_accepted or delivery.answered < 300]

    def clear(self) -> None:
        with self._lock:
            self._deliveries.clear()

    def wait_for(self, predicate, timeout: float = 10.0) -> list[ReceivedDelivery]:
        """Wait until predicate(deliveries) is true; return the deliveries."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            deliveries = self.deliveries
            if predicate(deliveries):
                return deliveries
            time.sleep(0.02)
        raise TimeoutError(f"condition not met within {timeout}s; {len(self.deliveries)} deliveries: "
                           f"{[d.event['type'] for d in self.deliveries][-20:]}")

    def wait_for_event(self, event_type: str, timeout: float = 10.0, **data_match) -> dict:
        """The first accepted event of `event_type` whose data.object matches `data_match`."""
        def matching(deliveries):
            return [d.event for d in deliveries if d.answered < 300 and d.event["type"] == event_type
                    and all(d.event["data"]["object"].get(k) == v for k, v in data_match.items())]
        return matching(self.wait_for(lambda deliveries: matching(deliveries), timeout))[0]
