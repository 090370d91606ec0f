"""Building Stripe events and signing them exactly as Stripe does, for webhook tests."""
import hashlib
import hmac
import json
import time
import uuid


def stripe_event(event_type: str = "checkout.session.completed", *, event_id: str | None = None,
                 livemode: bool = False, data_object: dict | None = None) -> dict:
    return {
        "id": event_id or f"evt_test_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": int(time.time()),
        "livemode": livemode,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
        "data": {"object": data_object or {"id": f"cs_test_{uuid.uuid4().hex[:24]}", "object": "checkout.session"}},
    }


def signature_header(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """`t=...,v1=...`: HMAC-SHA256 of "{t}.{payload}" with the endpoint's secret."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{timestamp}.".encode() + payload
    return f"t={timestamp},v1={hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()}"


def signed(event: dict, secret: str, **kwargs) -> tuple[bytes, str]:
    payload = json.dumps(event).encode()
    return payload, signature_header(payload, secret, **kwargs)
