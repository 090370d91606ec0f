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
from backend.api.throttles import throttled
from backend.models import Checkout, field_max_length
from backend.services.checkouts import CheckoutState, checkout_create, checkout_state_get
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
    state: str = Field(description="open, processing, booked, pending_payment, payment_failed, expired or refunded")
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
    response={200: CheckoutOut, 400: ErrorOut, 401: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut,
              429: ErrorOut, 502: ErrorOut, 503: ErrorOut},
    auth=JWTAuth(),
)
@throttled("checkout_create", rate_setting="CHECKOUT_RATE_LIMIT")
def create_checkout_session(request, payload: CheckoutIn):
    """Hold the slot and open a Stripe Checkout Session; pay at `checkout_url`.
    Past CHECKOUT_RATE_LIMIT per caller or address: 429 `rate_limited` with Retry-After."""
    checkout = checkout_create(
        mentee=request.auth,
        mentor_id=payload.mentor_id,
        title=payload.title,
        description=payload.description,
        scheduled_at=payload.scheduled_at,
        duration_minutes=payload.duration_minutes,
    )
    return {"checkout_url": checkout.checkout_url, "session_id": checkout.stripe_checkout_session_id}


@router.get(
    "/checkout-sessions/{cs_id}",
    response={200: CheckoutStateOut, 401: ErrorOut, 404: ErrorOut, 422: ErrorOut},
    # Bearer tokens for API clients; the signed-in browser session for our own pages.
    auth=[JWTAuth(), django_auth],
)
def checkout_session_state(request, cs_id: str):
    """The state of the caller's booking by Checkout Session id, for the return page to poll."""
    state, checkout, session = checkout_state_get(user=request.auth, stripe_checkout_session_id=cs_id)
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


_WEBHOOK_STORED = json.dumps(WebhookOut(received=True, duplicate=False).model_dump()).encode()
_WEBHOOK_DUPLICATE = json.dumps(WebhookOut(received=True, duplicate=True).model_dump()).encode()
