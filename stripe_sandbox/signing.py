"""Stripe's webhook signature: `Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256>` over
`f"{t}.{raw_body}"` keyed with the endpoint's `whsec_...` secret."""

import hashlib
import hmac
import time


def signature_header(payload: str, secret: str, timestamp: int | None = None) -> str:
    # The timestamp is wall time, never the sandbox clock: receivers check it against
    # their own clock with a tolerance (300 s by default in the SDK).
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"
