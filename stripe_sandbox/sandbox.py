"""The parts of one running sandbox, wired together once."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from .events import EventLog
from .payments import Payments, PaymentSettings
from .store import Store
from .webhooks import DeliverySettings, WebhookDispatcher


@dataclass
class SandboxConfig:
    host: str = "127.0.0.1"
    port: int = 12111
    webhook_url: str | None = None
    webhook_secret: str | None = None
    # The endpoint's enabled_events, as in the Dashboard: "*" is every type.
    webhook_events: tuple[str, ...] = ("*",)
    public_url: str | None = None  # where browsers reach the hosted page; default http://host:port
    api_key: str | None = None  # accept only this key; default any sk_test_/rk_test_ key
    state_file: str | None = None
    retry_base: float = 0.2
    retry_max_delay: float = 30.0
    max_attempts: int = 8
    webhook_timeout: float = 5.0
    bank_debit_delay: int = 60
    tick_interval: float = 0.5

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"


@dataclass
class ApiFaults:
    """Faults of the /v1 API itself (not of webhook delivery): a slow Stripe."""
    latency_ms: int = 0  # every matching request answers this much later
    path_prefix: str = "/v1/"  # which requests: those whose path starts with this

    def validated(self) -> "ApiFaults":
        if not isinstance(self.latency_ms, int) or self.latency_ms < 0:
            raise ValueError("latency_ms must be an integer >= 0")
        if not isinstance(self.path_prefix, str) or not self.path_prefix.startswith("/v1/"):
            raise ValueError("path_prefix must start with /v1/")
        return self


class Sandbox:
    def __init__(self, config: SandboxConfig):
        self.config = config
        self.api_faults = ApiFaults()
        self.store = Store(config.state_file)
        self.events = EventLog(self.store, delivers=lambda event_type: bool(config.webhook_url) and (
            "*" in config.webhook_events or event_type in config.webhook_events))
        self.dispatcher = WebhookDispatcher(self.store, DeliverySettings(
            url=config.webhook_url, secret=config.webhook_secret, retry_base=config.retry_base,
            retry_max_delay=config.retry_max_delay, max_attempts=config.max_attempts,
            timeout=config.webhook_timeout))
        self.events.listeners.append(self.dispatcher.event_created)
        self.payments = Payments(self.store, self.events, PaymentSettings(
            public_url=config.base_url, bank_debit_delay=config.bank_debit_delay))
        self._stop_ticking = threading.Event()
        self._ticker: threading.Thread | None = None

    def start(self) -> None:
        self.dispatcher.start()
        self._ticker = threading.Thread(target=self._tick_until_stopped, name="sandbox-clock",
                                        daemon=True)
        self._ticker.start()

    def stop(self) -> None:
        self._stop_ticking.set()
        if self._ticker:
            self._ticker.join(timeout=5)
        self.dispatcher.stop()
        self.store.save()

    def reset(self) -> None:
        self.api_faults = ApiFaults()
        with self.store.lock:
            self.dispatcher.reset()
            self.store.reset()

    def _tick_until_stopped(self) -> None:
        # Sessions expire and bank debits settle as real time passes, not only on advance.
        while not self._stop_ticking.wait(self.config.tick_interval):
            self.payments.clock_tick()
