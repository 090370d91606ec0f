"""Domain errors raised by services; the API maps each to one HTTP status in one place."""


class ApplicationError(Exception):
    """Base of every error a service raises on purpose. `field` names the input at fault."""

    code = "error"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if code:
            self.code = code


class InvalidInput(ApplicationError):
    """A field's value is unacceptable (422, like a schema validation error)."""

    code = "invalid"


class NotAllowed(ApplicationError):
    """The request is well-formed but breaks a rule (booking yourself, ...)."""

    code = "not_allowed"


class NotAuthenticated(ApplicationError):
    code = "not_authenticated"


class NotFound(ApplicationError):
    code = "not_found"


class PermissionDenied(ApplicationError):
    code = "permission_denied"


class Conflict(ApplicationError):
    code = "conflict"


class PaymentProviderUnavailable(ApplicationError):
    """Stripe could not be reached or answered 5xx/429: worth retrying later."""

    code = "payment_provider_unavailable"


class PaymentProviderError(ApplicationError):
    """Stripe refused the request (invalid request, auth, card...): retrying won't help."""

    code = "payment_provider_error"


class PrerequisiteMissing(ApplicationError):
    """An event arrived before the one it depends on (a refund before its payment):
    retry later, never guess."""

    code = "prerequisite_missing"


class PaymentMismatch(ApplicationError):
    """Stripe's amount, currency or ids disagree with our Checkout: never book it."""

    code = "payment_mismatch"


class WebhookRejected(ApplicationError):
    """The body is not a Stripe event for us; Stripe should not retry it."""

    code = "webhook_rejected"


class WebhookPayloadTooLarge(WebhookRejected):
    code = "payload_too_large"


class NotOurs(ApplicationError):
    """A Stripe object that another integration on the same account created (reconcile
    reads the whole account's events): nothing for us to do, and nothing to wait for."""

    code = "not_ours"


class RateLimited(ApplicationError):
    """Too many requests from one account or address (429, with Retry-After)."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, field: str | None = None):
        super().__init__(message, field=field)
        self.retry_after = max(int(retry_after), 1)
