"""Event creation. Every state change that Stripe announces becomes an Event here,
and the webhook dispatcher is told about it."""

from __future__ import annotations

import contextvars
from typing import Callable

import stripe

from . import objects
from .store import Store

# The API request that caused the events being emitted; None for changes nobody asked
# for through the API (a payment on the hosted page, the clock, a Dashboard action).
current_request: contextvars.ContextVar[dict | None] = contextvars.ContextVar(
    "current_request", default=None)

EventListener = Callable[[dict], None]


class EventLog:
    def __init__(self, store: Store, delivers: Callable[[str], bool]):
        self.store = store
        self.delivers = delivers  # whether the webhook endpoint is sent events of this type
        self.listeners: list[EventListener] = []

    def emit(self, event_type: str, obj: dict, previous_attributes: dict | None = None) -> dict:
        request = current_request.get() or {"id": None, "idempotency_key": None}
        delivered = self.delivers(event_type)
        with self.store.lock:
            event = objects.event(
                created=self.store.now(), api_version=stripe.api_version, event_type=event_type,
                data_object=self.store.snapshot(obj), previous_attributes=previous_attributes,
                request=dict(request), pending_webhooks=1 if delivered else 0)
            self.store.put(event, delivered=not delivered)
        for listener in self.listeners:
            listener(event)
        return event
