"""Stripe's error JSON and status codes, raised anywhere and rendered by the app."""

from __future__ import annotations


class StripeApiError(Exception):
    """An error answered exactly as Stripe answers it: `{"error": {...}}` + status."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None, extra: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.extra = extra or {}

    def body(self) -> dict:
        error = {"type": self.type, "code": self.code, "message": self.message,
                 "param": self.param, "doc_url": doc_url(self.code), **self.extra}
        return {"error": error}


def doc_url(code: str | None) -> str | None:
    return f"https://docs.stripe.com/error-codes/{code.replace('_', '-')}" if code else None


def resource_missing(object_name: str, object_id: str, param: str = "id") -> StripeApiError:
    return StripeApiError(404, f"No such {object_name}: '{object_id}'",
                          code="resource_missing", param=param)


def parameter_unknown(param: str) -> StripeApiError:
    return StripeApiError(400, f"Received unknown parameter: {param}",
                          code="parameter_unknown", param=param)


def parameter_missing(param: str) -> StripeApiError:
    return StripeApiError(400, f"Missing required param: {param}.",
                          code="parameter_missing", param=param)


def parameter_invalid(param: str, message: str, code: str = "parameter_invalid") -> StripeApiError:
    return StripeApiError(400, message, code=code, param=param)


def idempotency_mismatch(key: str) -> StripeApiError:
    return StripeApiError(
        400,
        "Keys for idempotent requests can only be used with the same parameters they were "
        f"first used with. Try using a key other than '{key}' if you meant to execute a "
        "different request.",
        type="idempotency_error", code="idempotency_key_in_use")


def authentication_failed(message: str) -> StripeApiError:
    # Stripe answers a bad key with 401 and type invalid_request_error, no code.
    return StripeApiError(401, message)
