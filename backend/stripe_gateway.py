"""The only module that imports `stripe`.

Small typed functions over one `StripeClient`; they take and return plain values, and
turn every `StripeError` into a domain error: `PaymentProviderUnavailable` when trying
again later can succeed (connection, 409, 429, 5xx), `PaymentProviderError` when it
can't (card, invalid request, auth, permission, idempotency). With STRIPE_API_BASE set
the same calls go to the offline sandbox; unset, to Stripe.
"""
import json
import logging
import time
from datetime import datetime
from functools import lru_cache

import stripe
from django.conf import settings

from backend.errors import PaymentProviderError, PaymentProviderUnavailable
from backend.observability.metrics import stripe_http_client_instrument

logger = logging.getLogger(__name__)

API_VERSION = stripe.api_version  # the version this SDK release is pinned to
WEBHOOK_TOLERANCE_SECONDS = 300


class WebhookPayloadInvalid(Exception):
    """The body is not a Stripe event signed with one of our secrets."""


@lru_cache(maxsize=4)
def _client_for(secret_key: str, api_base: str, timeout: float, max_network_retries: int) -> stripe.StripeClient:
    if not secret_key:
        raise PaymentProviderError("Stripe is not configured: STRIPE_SECRET_KEY is empty", code="stripe_not_configured")
    base_addresses = {"api": api_base} if api_base else None
    return stripe.StripeClient(
        secret_key,
        base_addresses=base_addresses,
        stripe_version=API_VERSION,
        max_network_retries=max_network_retries,
        # The SDK's default is 80 s per try, longer than any caller may wait (settings' timeout budget);
        # every HTTP attempt is counted and timed by endpoint and outcome (/metrics).
        http_client=stripe_http_client_instrument(stripe.RequestsClient(timeout=(min(timeout, 5.0), timeout))),
    )


def _client() -> stripe.StripeClient:
    return _client_for(settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE,
                       settings.STRIPE_TIMEOUT_SECONDS, settings.STRIPE_MAX_NETWORK_RETRIES)


def _domain_error(exc: stripe.StripeError) -> Exception:
    """Our error for the SDK's. Its text (network details, parts of the key, Stripe's own
    wording) goes to our log only; the caller's answer says what happened in our words."""
    retryable = isinstance(exc, (stripe.APIConnectionError, stripe.RateLimitError)) or (
        exc.http_status is not None and (exc.http_status == 409 or exc.http_status >= 500)
    )
    logger.warning("stripe call failed: %s (status=%s, code=%s, request=%s)", exc.__class__.__name__,
                   exc.http_status, getattr(exc, "code", None), exc.request_id)
    if retryable:
        return PaymentProviderUnavailable("Stripe is unavailable at the moment; try again shortly")
    if isinstance(exc, (stripe.AuthenticationError, stripe.PermissionError)):
        return PaymentProviderError("Stripe refused our credentials; an administrator has to fix the configuration",
                                    code="stripe_credentials_refused")
    return PaymentProviderError("Stripe refused the request", code=getattr(exc, "code", None) or None)


def checkout_session_create(
    *,
    idempotency_key: str,
    amount: int,
    currency: str,
    product_name: str,
    description: str,
    customer_email: str,
    client_reference_id: str,
    metadata: dict[str, str],
    expires_at: datetime,
    success_url: str,
    cancel_url: str,
) -> dict:
    """A hosted Checkout Session for one payment of `amount` minor units, as Stripe's JSON."""
    params = {
        "mode": "payment",
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": currency,
                    "unit_amount": amount,
                    "product_data": {"name": product_name, **({"description": description} if description else {})},
                },
            }
        ],
        "client_reference_id": client_reference_id,
        "customer_email": customer_email,
        "metadata": metadata,
        "payment_intent_data": {"metadata": metadata},
        "expires_at": int(expires_at.timestamp()),
        "success_url": success_url,
        "cancel_url": cancel_url,
    }
    try:
        session = _client().v1.checkout.sessions.create(params=params, options={"idempotency_key": idempotency_key})
    except stripe.StripeError as exc:
        raise _domain_error(exc) from exc
    return session.to_dict()


def checkout_session_retrieve(checkout_session_id: str) -> dict:
    """The session as Stripe's plain JSON, the same shape a webhook's data.object has."""
    try:
        return _client().v1.checkout.sessions.retrieve(checkout_session_id).to_dict()
    except stripe.StripeError as exc:
        raise _domain_error(exc) from exc


def checkout_session_expire(checkout_session_id: str) -> dict:
    try:
        return _client().v1.checkout.sessions.expire(checkout_session_id).to_dict()
    except stripe.StripeError as exc:
        raise _domain_error(exc) from exc


def refund_create(*, idempotency_key: str, payment_intent: str, amount: int, metadata: dict[str, str]) -> dict:
    """A refund of `amount` minor units, as Stripe's JSON (the shape of a refund event's data.object)."""
    params = {"payment_intent": payment_intent, "amount": amount, "metadata": metadata}
    try:
        refund = _client().v1.refunds.create(params=params, options={"idempotency_key": idempotency_key})
    except stripe.StripeError as exc:
        raise _domain_error(exc) from exc
    return refund.to_dict()


def events_list(*, types: list[str], created_gte: int, delivery_success: bool | None = None, limit: int = 100):
    """Every event of `types` created since `created_gte`, newest first, as plain dicts."""
    params = {"types": types, "created": {"gte": created_gte}, "limit": limit}
    if delivery_success is not None:
        params["delivery_success"] = delivery_success
    try:
        page = _client().v1.events.list(params=params)
        for event in page.auto_paging_iter():
            yield event.to_dict()
    except stripe.StripeError as exc:
        raise _domain_error(exc) from exc


def _listed(resource, params: dict):
    try:
        for item in resource.list(params=params).auto_paging_iter():
            yield item.to_dict()
    except stripe.StripeError as exc:
        raise _domain_error(exc) from exc


def checkout_sessions_list(*, created_gte: int):
    """Every Checkout Session created since `created_gte`, as plain dicts."""
    return _listed(_client().v1.checkout.sessions, {"created": {"gte": created_gte}, "limit": 100})


def charges_list(*, created_gte: int):
    """Every Charge created since `created_gte` (amount_refunded is the refunded total)."""
    return _listed(_client().v1.charges, {"created": {"gte": created_gte}, "limit": 100})


def refunds_list(*, created_gte: int | None = None, payment_intent: str | None = None):
    """Refunds created since `created_gte`, or every refund of one PaymentIntent."""
    params: dict = {"limit": 100}
    if created_gte is not None:
        params["created"] = {"gte": created_gte}
    if payment_intent:
        params["payment_intent"] = payment_intent
    return _listed(_client().v1.refunds, params)


def payment_intent_retrieve(payment_intent_id: str) -> dict | None:
    """The PaymentIntent with its latest charge expanded; None when Stripe has no such object."""
    try:
        return _client().v1.payment_intents.retrieve(
            payment_intent_id, params={"expand": ["latest_charge"]}).to_dict()
    except stripe.InvalidRequestError as exc:
        if exc.code == "resource_missing":
            return None
        raise _domain_error(exc) from exc
    except stripe.StripeError as exc:
        raise _domain_error(exc) from exc


def event_retrieve(event_id: str) -> dict:
    try:
        return _client().v1.events.retrieve(event_id).to_dict()
    except stripe.StripeError as exc:
        raise _domain_error(exc) from exc


def webhook_payload_verify(payload: bytes, signature_header: str | None) -> dict:
    """The event in `payload` if its Stripe-Signature verifies against any of our secrets.

    Several secrets are accepted so a rotation never drops events; the 300 s tolerance
    refuses replays of old deliveries.
    """
    secrets = settings.STRIPE_WEBHOOK_SECRETS
    if not secrets:
        raise WebhookPayloadInvalid("no webhook secret is configured")
    if not signature_header:
        raise WebhookPayloadInvalid("missing Stripe-Signature header")
    if _signature_timestamp(signature_header) > time.time() + WEBHOOK_TOLERANCE_SECONDS:
        # The SDK only refuses old timestamps; one from the future is a replay being prepared.
        raise WebhookPayloadInvalid("signature timestamp is in the future")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookPayloadInvalid("body is not UTF-8")
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(text, signature_header, secret, WEBHOOK_TOLERANCE_SECONDS)
            break
        except stripe.SignatureVerificationError:
            continue
    else:
        raise WebhookPayloadInvalid("signature does not match, or its timestamp is outside the tolerance")
    try:
        event = json.loads(text, parse_constant=_refuse_non_json_constant)
    except ValueError:
        raise WebhookPayloadInvalid("body is not JSON")
    except RecursionError:
        # Thousands of nested arrays exhaust the parser's stack; no Stripe event is like that.
        raise WebhookPayloadInvalid("body is nested too deeply")
    if not (
        isinstance(event, dict)
        and event.get("object") == "event"
        and isinstance(event.get("id"), str) and event["id"].startswith("evt_")
        and isinstance(event.get("type"), str)
        and isinstance(event.get("data"), dict) and isinstance(event["data"].get("object"), dict)
    ):
        raise WebhookPayloadInvalid("body is not a Stripe event")
    return event


def _refuse_non_json_constant(name: str):
    # Python's json accepts NaN and Infinity; JSON (and PostgreSQL's jsonb) does not.
    raise ValueError(f"{name} is not JSON")


def _signature_timestamp(header: str) -> int:
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        # isdigit() alone admits "²" and other non-ASCII digits that int() refuses (a 500),
        # and int() refuses over 4300 digits: such a timestamp is in the future anyway.
        if key == "t" and value.isascii() and value.isdigit():
            return int(value) if len(value) <= 20 else 10 ** 20
    return 0


def key_is_live() -> bool:
    return settings.STRIPE_SECRET_KEY.startswith(("sk_live_", "rk_live_"))


def target_describe() -> str:
    """Which Stripe this process talks to, for a human at start-up; never the key itself."""
    key = settings.STRIPE_SECRET_KEY
    if not key:
        return "Stripe: not configured (STRIPE_SECRET_KEY is empty); checkouts will fail"
    mode = "LIVE mode, real money" if key_is_live() else "test mode"
    if settings.STRIPE_API_BASE:
        return f"Stripe: the offline sandbox at {settings.STRIPE_API_BASE} ({mode} key)"
    return f"Stripe: real Stripe at api.stripe.com, {mode}"


def configuration_warnings() -> list[str]:
    """What is missing for the whole payment flow to work (webhooks, Stripe.js)."""
    warnings = []
    if not settings.STRIPE_WEBHOOK_SECRETS:
        warnings.append("STRIPE_WEBHOOK_SECRET is not set: every webhook will be refused and payments only "
                        "settle through the reconciler (stripe listen prints a whsec_ to use)")
    if not settings.STRIPE_PUBLISHABLE_KEY:
        warnings.append("STRIPE_PUBLISHABLE_KEY is not set: GET /api/payments/config returns an empty key")
    return warnings
