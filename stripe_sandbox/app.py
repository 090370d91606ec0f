"""The Starlette application: Stripe's /v1 API, plus the hosted page and /_sandbox."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging

import stripe
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from . import control, listing, page
from .errors import StripeApiError, authentication_failed, idempotency_mismatch
from .events import current_request
from .forms import decode_form
from .ids import new_id
from .params import schema_for, validate
from .sandbox import Sandbox, SandboxConfig

logger = logging.getLogger("stripe_sandbox")

_NO_KEY_MESSAGE = (
    "You did not provide an API key. You need to provide your API key in the Authorization "
    "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
    "https://stripe.com/docs/api#authentication for details, or we can help at "
    "https://support.stripe.com/.")


def create_app(config: SandboxConfig) -> Starlette:
    sandbox = Sandbox(config)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        sandbox.start()
        try:
            yield
        finally:
            sandbox.stop()

    routes = api_routes(sandbox) + control.routes(sandbox) + page.routes(sandbox)
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.sandbox = sandbox
    return app


def api_routes(sandbox: Sandbox) -> list[Route]:
    store, payments = sandbox.store, sandbox.payments

    def retrieve(object_name: str):
        def handler(path, params):
            payments.clock_tick()
            return listing.expand(store, store.get(path["id"], object_name), params.get("expand"))
        return handler

    def list_of(object_name: str, url: str, filters):
        def handler(path, params):
            payments.clock_tick()
            items = [item for item in store.newest_first(object_name) if filters(item, params)]
            result = listing.page(store, items, params, url, object_name)
            return listing.expand(store, result, params.get("expand"))
        return handler

    def equal_fields(*names):
        return lambda item, params: all(item.get(name) == params[name]
                                        for name in names if name in params)

    def session_filters(session, params):
        email = (params.get("customer_details") or {}).get("email")
        if email and (session["customer_details"] or {}).get("email") != email:
            return False
        return equal_fields("status", "payment_intent", "customer", "payment_link",
                            "subscription")(session, params)

    def event_filters(event, params):
        wanted = params.get("type")
        if wanted and not (event["type"] == wanted or (
                wanted.endswith("*") and event["type"].startswith(wanted[:-1]))):
            return False
        if params.get("types") and event["type"] not in params["types"]:
            return False
        if "delivery_success" in params:
            delivered = bool(store.internal[event["id"]].get("delivered"))
            return delivered == params["delivery_success"]
        return True

    def session_create(path, params):
        return listing.expand(store, payments.checkout_session_create(params), params.get("expand"))

    def session_expire(path, params):
        return listing.expand(store, payments.checkout_session_expire(path["id"]), params.get("expand"))

    def session_line_items(path, params):
        items = payments.checkout_session_line_items(path["id"])
        return listing.page_of_sublist(items, params, f"/v1/checkout/sessions/{path['id']}/line_items",
                                       "item")

    def refund_create(path, params):
        return listing.expand(store, payments.refund_create(params), params.get("expand"))

    def endpoint(method, url, schema_name, handler):
        return Route(url, _stripe_endpoint(sandbox, schema_name, handler), methods=[method])

    sessions = "/v1/checkout/sessions"
    return [
        endpoint("POST", sessions, "checkout.SessionCreateParams", session_create),
        endpoint("GET", sessions, "checkout.SessionListParams",
                 list_of("checkout.session", sessions, session_filters)),
        endpoint("GET", sessions + "/{id}", "checkout.SessionRetrieveParams",
                 retrieve("checkout.session")),
        endpoint("POST", sessions + "/{id}/expire", "checkout.SessionExpireParams", session_expire),
        endpoint("GET", sessions + "/{id}/line_items", "checkout.SessionListLineItemsParams",
                 session_line_items),
        endpoint("GET", "/v1/payment_intents/{id}", "PaymentIntentRetrieveParams",
                 retrieve("payment_intent")),
        endpoint("GET", "/v1/payment_intents", "PaymentIntentListParams",
                 list_of("payment_intent", "/v1/payment_intents", equal_fields("customer"))),
        endpoint("GET", "/v1/payment_methods/{id}", "PaymentMethodRetrieveParams",
                 retrieve("payment_method")),
        endpoint("GET", "/v1/charges/{id}", "ChargeRetrieveParams", retrieve("charge")),
        endpoint("GET", "/v1/charges", "ChargeListParams",
                 list_of("charge", "/v1/charges",
                         equal_fields("customer", "payment_intent", "transfer_group"))),
        endpoint("POST", "/v1/refunds", "RefundCreateParams", refund_create),
        endpoint("GET", "/v1/refunds/{id}", "RefundRetrieveParams", retrieve("refund")),
        endpoint("GET", "/v1/refunds", "RefundListParams",
                 list_of("refund", "/v1/refunds", equal_fields("charge", "payment_intent"))),
        endpoint("GET", "/v1/disputes/{id}", "DisputeRetrieveParams", retrieve("dispute")),
        endpoint("GET", "/v1/disputes", "DisputeListParams",
                 list_of("dispute", "/v1/disputes", equal_fields("charge", "payment_intent"))),
        endpoint("GET", "/v1/events/{id}", "EventRetrieveParams", retrieve("event")),
        endpoint("GET", "/v1/events", "EventListParams", list_of("event", "/v1/events", event_filters)),
        Route("/v1/{rest:path}", _unrecognized_url, methods=["GET", "POST", "DELETE", "PUT", "PATCH"]),
    ]


def _stripe_endpoint(sandbox: Sandbox, schema_name: str, handler):
    """Auth, form decoding, param validation, Idempotency-Key and error rendering around
    one handler(path_params, params) -> dict."""
    store = sandbox.store
    schema = schema_for(schema_name)

    async def endpoint(request: Request):
        faults = sandbox.api_faults
        if faults.latency_ms and request.url.path.startswith(faults.path_prefix):
            await asyncio.sleep(faults.latency_ms / 1000)  # a slow Stripe; other requests go on
        request_id = new_id("req_", 14)
        headers = {"Request-Id": request_id,
                   "Stripe-Version": request.headers.get("stripe-version", stripe.api_version)}
        idempotency_key = request.headers.get("idempotency-key") if request.method == "POST" else None
        try:
            api_key = _authenticate(request, sandbox.config)
            raw = (await request.body()).decode() if request.method == "POST" else request.url.query
            decoded = decode_form(raw)
            if idempotency_key:
                scoped_key = f"{api_key}:{idempotency_key}"
                fingerprint = json.dumps([request.method, request.url.path, decoded], sort_keys=True)
                with store.lock:
                    saved = store.idempotency.get(scoped_key)
                if saved is not None:
                    if saved["fingerprint"] != fingerprint:
                        raise idempotency_mismatch(idempotency_key)
                    return JSONResponse(saved["body"], status_code=saved["status"], headers={
                        **headers, "Request-Id": saved["request_id"], "Idempotent-Replayed": "true"})
            params = validate(decoded, schema)
            token = current_request.set({"id": request_id, "idempotency_key": idempotency_key})
            try:
                body = handler(request.path_params, params)
            finally:
                current_request.reset(token)
            if idempotency_key:
                # Only completed requests are kept; a refused one may be retried with the key.
                store.remember_idempotent_response(scoped_key, {
                    "fingerprint": fingerprint, "status": 200, "body": body, "request_id": request_id})
            return JSONResponse(body, headers=headers)
        except StripeApiError as error:
            if error.type == "idempotency_error":
                headers["Stripe-Should-Retry"] = "false"
            return JSONResponse(error.body(), status_code=error.status, headers=headers)
        except Exception:
            # A sandbox bug: answer as Stripe answers its own failures, and say why in the log.
            logger.exception("stripe_sandbox failed on %s %s", request.method, request.url.path)
            error = StripeApiError(500, "An unexpected error occurred in the Stripe sandbox; see its log.",
                                   type="api_error")
            return JSONResponse(error.body(), status_code=500,
                                headers={**headers, "Stripe-Should-Retry": "false"})

    return endpoint


def _authenticate(request: Request, config: SandboxConfig) -> str:
    authorization = request.headers.get("authorization", "")
    scheme, _, credential = authorization.partition(" ")
    if scheme.lower() == "basic":
        try:
            credential = base64.b64decode(credential).decode().partition(":")[0]
        except ValueError:
            credential = ""
    elif scheme.lower() != "bearer":
        credential = ""
    credential = credential.strip()
    if not credential:
        raise authentication_failed(_NO_KEY_MESSAGE)
    acceptable = (credential == config.api_key if config.api_key
                  else credential.startswith(("sk_test_", "rk_test_")) and len(credential) > 8)
    if not acceptable:
        shown = credential[:8] + "*" * max(len(credential) - 12, 0) + credential[-4:]
        raise authentication_failed(f"Invalid API Key provided: {shown}")
    return credential


async def _unrecognized_url(request: Request):
    message = (f"Unrecognized request URL ({request.method}: {request.url.path}). Please see "
               "https://stripe.com/docs or we can help at https://support.stripe.com/.")
    return JSONResponse(StripeApiError(404, message).body(), status_code=404)
