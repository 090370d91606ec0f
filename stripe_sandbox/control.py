"""/_sandbox/...: the control API for tests, scripts and demos (JSON in, JSON out).

Each action has the effect of its real-world counterpart: `pay` is a payment on the
hosted page, `refund` a refund made in the Stripe Dashboard, `clock/advance` time passing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .errors import StripeApiError, parameter_invalid
from .sandbox import Sandbox


def routes(sandbox: Sandbox) -> list[Route]:
    store, payments, dispatcher = sandbox.store, sandbox.payments, sandbox.dispatcher

    def pay(body, session_id):
        if body.get("method") == "bank_debit":
            return payments.checkout_session_pay_bank_debit(
                session_id, outcome=body.get("outcome", "succeeded"), email=body.get("email"),
                name=body.get("name"), settle_after=body.get("settle_after"))
        if "card" not in body:
            raise parameter_invalid("card", 'Give {"card": "4242424242424242"} or '
                                            '{"method": "bank_debit", "outcome": ...}.')
        return payments.checkout_session_pay_card(
            session_id, number=str(body["card"]), email=body.get("email"), name=body.get("name"),
            three_d_secure=body.get("three_d_secure"))

    def authenticate(body, session_id):
        return payments.checkout_session_authenticate(session_id, body.get("outcome", "complete"))

    def expire_now(body, session_id):
        return payments.checkout_session_expire_now(session_id)

    def refund(body, charge_id):
        params = {"charge": charge_id}
        for name in ("amount", "reason", "metadata"):
            if body.get(name) is not None:
                params[name] = body[name]
        return payments.refund_create(params)

    def dispute(body, charge_id):
        return payments.dispute_create(charge_id, reason=body.get("reason", "fraudulent"))

    def advance_clock(body):
        seconds = body.get("seconds")
        if not isinstance(seconds, (int, float)) or seconds < 0:
            raise parameter_invalid("seconds", "seconds must be a number >= 0")
        store.advance_clock(seconds)
        payments.clock_tick()
        return clock(body)

    def clock(body):
        return {"now": store.now(), "offset": store.clock_offset}

    def resend(body, event_id):
        store.get(event_id, "event")
        dispatcher.resend(event_id)
        return {"resent": event_id}

    def deliveries(query):
        with store.lock:
            attempts = [attempt for attempt in store.deliveries
                        if all(attempt.get(name) == query[name] for name in ("event_id", "event_type")
                               if name in query)]
        return {"data": attempts, **dispatcher.status()}

    def set_faults(body):
        dispatcher.set_faults(_faults_updated(dispatcher.faults, body))
        return dispatcher.status()

    def set_api_faults(body):
        sandbox.api_faults = _faults_updated(sandbox.api_faults, body)
        return asdict(sandbox.api_faults)

    def pause(body):
        dispatcher.pause()
        return dispatcher.status()

    def resume(body):
        dispatcher.resume()
        return dispatcher.status()

    def reset(body):
        sandbox.reset()
        return {"reset": True}

    def health(query):
        return {"ok": True, "now": store.now(), "webhooks": dispatcher.status()}

    prefix = "/_sandbox"
    return [
        _post(prefix + "/checkout/sessions/{id}/pay", pay),
        _post(prefix + "/checkout/sessions/{id}/authenticate", authenticate),
        _post(prefix + "/checkout/sessions/{id}/expire", expire_now),
        _post(prefix + "/charges/{id}/refund", refund),
        _post(prefix + "/charges/{id}/dispute", dispute),
        _post(prefix + "/clock/advance", advance_clock),
        _get(prefix + "/clock", clock),
        _post(prefix + "/events/{id}/resend", resend),
        _get(prefix + "/deliveries", deliveries),
        _post(prefix + "/webhooks/faults", set_faults),
        _get(prefix + "/webhooks", lambda query: dispatcher.status()),
        _post(prefix + "/api/faults", set_api_faults),
        _post(prefix + "/webhooks/pause", pause),
        _post(prefix + "/webhooks/resume", resume),
        _post(prefix + "/reset", reset),
        _get(prefix + "/health", health),
    ]


def _faults_updated(current, body: dict):
    """`current` (a faults dataclass) with the fields `body` names replaced; 400 for an
    unknown field or a bad value."""
    known = {field.name for field in fields(current)}
    unknown = set(body) - known
    if unknown:
        raise parameter_invalid(sorted(unknown)[0], f"Unknown fault: {sorted(unknown)[0]}")
    try:
        return type(current)(**{**asdict(current), **body}).validated()
    except (TypeError, ValueError) as error:
        raise parameter_invalid("faults", str(error))


def _post(path: str, action) -> Route:
    async def endpoint(request: Request):
        raw = await request.body()
        try:
            body = json.loads(raw) if raw.strip() else {}
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
        except ValueError as error:
            return _error(parameter_invalid("body", f"Invalid JSON: {error}"))
        try:
            arguments = [request.path_params["id"]] if "id" in request.path_params else []
            return JSONResponse(action(body, *arguments))
        except StripeApiError as error:
            return _error(error)
    return Route(path, endpoint, methods=["POST"])


def _get(path: str, action) -> Route:
    async def endpoint(request: Request):
        try:
            return JSONResponse(action(dict(request.query_params)))
        except StripeApiError as error:
            return _error(error)
    return Route(path, endpoint, methods=["GET"])


def _error(error: StripeApiError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status)
