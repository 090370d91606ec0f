"""The ids one payment's log records carry, across the web process and the workers.

Held in one context variable (a dict), so a thread or a task sees only its own. The web
binds the request id (middleware); services bind the Checkout, Stripe event and Checkout
Session ids when they learn them; Celery carries them to the tasks a request or a task
queues, in a message header (see backend.observability.celery).
"""
import contextvars
import logging
import uuid
from contextlib import contextmanager

FIELDS = ("request_id", "checkout_id", "stripe_event_id", "session_id")
HEADER = "log_context"

_ids: contextvars.ContextVar[dict] = contextvars.ContextVar("log_ids", default={})  # noqa: B039 (never mutated: replace() sets a new dict)


def current() -> dict:
    return _ids.get()


def bind(**ids) -> None:
    """Add ids (None and empty values are skipped) to the current context."""
    values = {k: str(v) for k, v in ids.items() if k in FIELDS and v not in (None, "")}
    if values:
        _ids.set({**_ids.get(), **values})


def bind_stripe_event(event) -> None:
    """The event id, and the Checkout Session and Checkout ids of its object when it has them.
    Any shape is accepted: a signed event with odd fields must never fail over its logging."""
    if not isinstance(event, dict):
        return
    bind(stripe_event_id=event.get("id") if isinstance(event.get("id"), str) else None)
    data = event.get("data")
    bind_stripe_object(data.get("object") if isinstance(data, dict) else None)


def bind_stripe_object(obj) -> None:
    """The Checkout Session id and our Checkout id from a Stripe object, when it has them."""
    if not isinstance(obj, dict):
        return
    object_id = obj.get("id")
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    bind(session_id=object_id if isinstance(object_id, str) and object_id.startswith("cs_") else None,
         checkout_id=metadata.get("checkout_id"))


def replace(ids: dict | None) -> contextvars.Token:
    return _ids.set({k: str(v) for k, v in (ids or {}).items() if k in FIELDS and v})


def reset(token: contextvars.Token) -> None:
    _ids.reset(token)


@contextmanager
def scope(ids: dict | None = None):
    token = replace(ids)
    try:
        yield
    finally:
        reset(token)


def new_request_id() -> str:
    return uuid.uuid4().hex


class ContextFilter(logging.Filter):
    """Puts the bound ids on every record (as attributes the formatters print)."""

    def filter(self, record: logging.LogRecord) -> bool:
        ids = _ids.get()
        for field in FIELDS:
            if not hasattr(record, field):
                setattr(record, field, ids.get(field))
        return True


class RequestIdMiddleware:
    """One id per request: the caller's `X-Request-ID` when it is sane, else a new one;
    echoed in the response so a client can quote it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        given = request.headers.get("X-Request-ID", "")
        request_id = given if 0 < len(given) <= 64 and given.replace("-", "").isalnum() else new_request_id()
        with scope({"request_id": request_id}):
            response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response
