from django.conf import settings
from ninja import Router, Schema

router = Router(tags=["payments"])


class PaymentsConfigOut(Schema):
    publishable_key: str


@router.get("/config", response=PaymentsConfigOut, auth=None)
def payments_config(request):
    """The publishable key the frontend needs for Stripe.js (never the secret key)."""
    return {"publishable_key": settings.STRIPE_PUBLISHABLE_KEY}
