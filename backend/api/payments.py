from datetime import datetime

from django.conf import settings
from ninja import Field, Router, Schema
from ninja_jwt.authentication import JWTAuth
from pydantic import ConfigDict

from backend.api.schemas import ErrorOut, InputText
from backend.api.throttles import throttled
from backend.services.checkouts import checkout_create
from backend.services.webhooks import MAX_PAYLOAD_BYTES, WebhookPayloadTooLarge, webhook_event_ingest

router = Router(tags=["payments"])


class PaymentsConfigOut(Schema):
    publishable_key: str


class CheckoutIn(Schema):
    # No amount, no currency: the price comes from the mentor's rate in our database,
    # and any field we don't know is refused rather than silently dropped.
    model_config = ConfigDict(extra="forbid")

    mentor_id: int
    title: InputText = Field(min_length=1, max_length=200)
    description: InputText = Field("", max_length=2000)
    scheduled_at: datetime = Field(description="ISO 8601 with a UTC offset, e.g. 2026-12-01T15:00:00Z")
    duration_minutes: int


class CheckoutOut(Schema):
    checkout_url: str
    session_id: str = Field(description="The Stripe Checkout Session id (cs_...)")


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


@router.post("/webhook", response={200: WebhookOut, 400: ErrorOut, 413: ErrorOut}, auth=None)
def stripe_webhook(request):
    """Stripe's signed events. The signature is the authentication; answered before processing."""
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if not declared.isdigit() or int(declared) > MAX_PAYLOAD_BYTES:
        raise WebhookPayloadTooLarge(f"Webhook body over {MAX_PAYLOAD_BYTES} bytes")
    _, created = webhook_event_ingest(payload=request.body, signature=request.headers.get("Stripe-Signature"))
    return {"received": True, "duplicate": not created}
