import json
from datetime import datetime

from django.conf import settings
from django.http import HttpResponse
from ninja import Field, Router, Schema
from ninja.security import django_auth
from ninja_jwt.authentication import JWTAuth
from pydantic import ConfigDict

from backend.api.schemas import ErrorOut, InputText
from backend.api.sessions import SessionOut
from backend.api.throttles import client_address, throttled
from backend.models import Checkout, field_max_length
from backend.services.checkouts import CheckoutState, checkout_create, checkout_hold_cancel, checkout_state_get
from backend.services.site import request_site_url
from backend.services.webhooks import MAX_PAYLOAD_BYTES, WebhookPayloadTooLarge, webhook_event_ingest

router = Router(tags=["payments"])


class PaymentsConfigOut(Schema):
    publishable_key: str


class CheckoutIn(Schema):
    # No amount, no currency: the price comes from the mentor's rate in our database,
    # and any field we don't know is refused rather than silently dropped.
    model_config = ConfigDict(extra="forbid")

    mentor_id: int
    title: InputText = Field(min_length=1, max_length=field_max_length(Checkout, "title"))
    description: InputText = Field("", max_length=field_max_length(Checkout, "description"))
    scheduled_at: datetime = Field(description="ISO 8601 with a UTC offset, e.g. 2026-12-01T15:00:00Z")
    duration_minutes: int


class CheckoutOut(Schema):
    checkout_url: str
    session_id: str = Field(description="The Stripe Checkout Session id (cs_...)")


class CheckoutStateOut(Schema):
    session_id: str = Field(description="The Stripe Checkout Session id (cs_...)")
    state: str = Field(description="open, processing, booked, pending_payment, payment_failed, expired, refunded "
                                   "(paid but never booked: the slot was taken) or cancelled (booked, then cancelled)")
    checkout_url: str | None = Field(description="Where to pay while the hold is open")
    expires_at: datetime = Field(description="When the hold on the slot ends")
    session: SessionOut | None = Field(description="The booked session, once there is one")


class WebhookOut(Schema):
    received: bool
    duplicate: bool


@router.get("/config", response=PaymentsConfigOut, auth=None)
def payments_config(request):
    """The publishable key the frontend needs for Stripe.js (never the secret key)."""
    return {"publishable_key": settings.STRIPE_PUBLISHABLE_KEY}


@router.post(
    "/create-checkout-session",
    response={200: CheckoutOut, 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut,
              422: ErrorOut, 429: ErrorOut, 502: ErrorOut, 503: ErrorOut},
    auth=JWTAuth(),
)
@throttled("checkout_create", rate_setting="CHECKOUT_RATE_LIMIT")
def create_checkout_session(request, payload: CheckoutIn):
    """Hold the slot and open a Stripe Checkout Session; pay at `checkout_url`.
    Past CHECKOUT_RATE_LIMIT per caller or address: 429 `rate_limited` with Retry-After. Past
    MAX_OPEN_HOLDS for the caller or MAX_OPEN_HOLDS_PER_ADDRESS for their address (IPv6: /64):
    409 `too_many_open_holds`. With REQUIRE_EMAIL_VERIFICATION, a first booking of an unverified
    address: 403 `email_not_verified`."""
    checkout = checkout_create(
        mentee=request.auth,
        mentor_id=payload.mentor_id,
        title=payload.title,
        description=payload.description,
        scheduled_at=payload.scheduled_at,
        duration_minutes=payload.duration_minutes,
        client_address=client_address(request),
        site_url=request_site_url(request),
    )
    return {"checkout_url": checkout.checkout_url, "session_id": checkout.stripe_checkout_session_id}


@router.get(
    "/checkout-sessions/{cs_id}",
    response={200: CheckoutStateOut, 401: ErrorOut, 404: ErrorOut, 422: ErrorOut, 429: ErrorOut},
    # Bearer tokens for API clients; the signed-in browser session for our own pages.
    auth=[JWTAuth(), django_auth],
)
@throttled("checkout_status", rate_setting="CHECKOUT_STATUS_RATE_LIMIT", per_address=False)
def checkout_session_state(request, cs_id: str):
    """The state of the caller's booking by Checkout Session id, for the return page to poll.
    Past CHECKOUT_STATUS_RATE_LIMIT (30 a minute) per account: 429 `rate_limited` with Retry-After;
    Stripe itself is asked at most once every 5 seconds per Checkout, however many poll."""
    state, checkout, session = checkout_state_get(user=request.auth, stripe_checkout_session_id=cs_id)
    return _state_out(cs_id, state, checkout, session)


@router.delete(
    "/checkout-sessions/{cs_id}",
    response={200: CheckoutStateOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut,
              502: ErrorOut, 503: ErrorOut},
    auth=[JWTAuth(), django_auth],
)
def checkout_session_cancel(request, cs_id: str):
    """Give up the caller's hold: the Checkout is expired at Stripe and the slot is free again
    (state `expired`). 409 `checkout_complete` when it was paid meanwhile (it is then booked);
    503 when Stripe can't be reached (the hold is kept). Cancelling twice is harmless."""
    state, checkout, session = checkout_hold_cancel(user=request.auth, stripe_checkout_session_id=cs_id)
    return _state_out(cs_id, state, checkout, session)


def _state_out(cs_id: str, state: str, checkout: Checkout, session) -> dict:
    return {"session_id": cs_id, "state": state, "expires_at": checkout.expires_at, "session": session,
            "checkout_url": checkout.checkout_url if state == CheckoutState.OPEN else None}


@router.post("/webhook", response={200: WebhookOut, 400: ErrorOut, 413: ErrorOut}, auth=None)
def stripe_webhook(request):
    """Stripe's signed events. The signature is the authentication; answered before processing."""
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if not declared.isdigit() or int(declared) > MAX_PAYLOAD_BYTES:
        raise WebhookPayloadTooLarge(f"Webhook body over {MAX_PAYLOAD_BYTES} bytes")
    _, created = webhook_event_ingest(payload=request.body, signature=request.headers.get("Stripe-Signature"))
    # WebhookOut, pre-serialised: Stripe's every delivery pays for this answer.
    return HttpResponse(_WEBHOOK_DUPLICATE if not created else _WEBHOOK_STORED, content_type="application/json")


@router.post("/connect-webhook", response={200: WebhookOut, 400: ErrorOut, 413: ErrorOut}, auth=None)
def stripe_connect_webhook(request):
    """Stripe's signed events of the mentors' connected accounts (the Connect endpoint, signed
    with STRIPE_CONNECT_WEBHOOK_SECRET); stored in the same outbox, answered like /webhook."""
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if not declared.isdigit() or int(declared) > MAX_PAYLOAD_BYTES:
        raise WebhookPayloadTooLarge(f"Webhook body over {MAX_PAYLOAD_BYTES} bytes")
    _, created = webhook_event_ingest(payload=request.body, signature=request.headers.get("Stripe-Signature"),
                                      endpoint="connect")
    return HttpResponse(_WEBHOOK_DUPLICATE if not created else _WEBHOOK_STORED, content_type="application/json")


_WEBHOOK_STORED = json.dumps(WebhookOut(received=True, duplicate=False).model_dump()).encode()
_WEBHOOK_DUPLICATE = json.dumps(WebhookOut(received=True, duplicate=True).model_dump()).encode()
