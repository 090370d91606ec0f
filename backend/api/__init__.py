"""The NinjaAPI: one router per topic, and every error mapped to one JSON shape here."""
import logging

from django.db import InterfaceError, OperationalError
from django.http import Http404
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja_extra.exceptions import APIException

from backend import errors
from backend.api import auth, health, mentors, payments, sessions

logger = logging.getLogger(__name__)

api = NinjaAPI(
    title="MyRoadmap payments API",
    version="1.0.0",
    description="Book mentorship sessions and pay through Stripe Checkout.",
    docs_url="/docs",
)
api.add_router("/auth", auth.router)
api.add_router("/mentors", mentors.router)
api.add_router("/sessions", sessions.router)
api.add_router("/payments", payments.router)
api.add_router("/health", health.router)

DOMAIN_ERROR_STATUS = {
    errors.WebhookPayloadTooLarge: 413,
    errors.WebhookRejected: 400,
    errors.InvalidInput: 422,
    errors.NotAllowed: 400,
    errors.NotAuthenticated: 401,
    errors.PermissionDenied: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.RateLimited: 429,
    errors.PaymentProviderError: 502,
    errors.PaymentProviderUnavailable: 503,
}


def error_response(request, status: int, detail: str, code: str, **extra):
    body = {"detail": detail, "code": code}
    body.update({k: v for k, v in extra.items() if v is not None})
    return api.create_response(request, body, status=status)


@api.exception_handler(errors.ApplicationError)
def on_application_error(request, exc: errors.ApplicationError):
    status = next((s for cls, s in DOMAIN_ERROR_STATUS.items() if isinstance(exc, cls)), 400)
    response = error_response(request, status, exc.message, exc.code, field=exc.field)
    if isinstance(exc, errors.RateLimited):
        response["Retry-After"] = str(exc.retry_after)
    return response


def _field_name(loc) -> str:
    # ninja reports ("body", "payload", "title"); the client knows the field as "title".
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "payload", "filters")]
    return ".".join(parts) or ".".join(str(p) for p in loc)


@api.exception_handler(ValidationError)
def on_validation_error(request, exc: ValidationError):
    field_errors = [{"field": _field_name(e.get("loc", ())), "message": e.get("msg", "invalid")} for e in exc.errors]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in field_errors) or "Invalid input"
    first = field_errors[0]["field"] if field_errors else None
    return error_response(request, 422, detail, "validation_error", field=first, errors=field_errors)


@api.exception_handler(AuthenticationError)
def on_authentication_error(request, exc):
    return error_response(request, 401, "Authentication credentials were not provided or are invalid", "not_authenticated")


@api.exception_handler(APIException)
def on_token_error(request, exc: APIException):
    # ninja_jwt raises these for malformed, expired or unknown tokens.
    detail = exc.detail.get("detail") if isinstance(exc.detail, dict) else exc.detail
    code = exc.detail.get("code") if isinstance(exc.detail, dict) else "error"
    return error_response(request, exc.status_code, str(detail), str(code))


@api.exception_handler(HttpError)
def on_http_error(request, exc: HttpError):
    return error_response(request, exc.status_code, str(exc.message), "http_error")


@api.exception_handler(Http404)
def on_not_found(request, exc):
    return error_response(request, 404, "Not found", "not_found")


@api.exception_handler(OperationalError)
@api.exception_handler(InterfaceError)
def on_database_unavailable(request, exc):
    # The database is down or did not answer in time (connect/statement timeouts): a 503 the
    # client (and Stripe, for a webhook) retries, not a bug report. Errors the database gave
    # about our data (IntegrityError, DataError) stay 500s.
    logger.error("database unavailable on %s %s: %s", request.method, request.path, exc.__class__.__name__)
    response = error_response(request, 503, "The service is briefly unavailable; try again shortly",
                              "service_unavailable")
    response["Retry-After"] = "5"
    return response


@api.exception_handler(Exception)
def on_unexpected_error(request, exc):
    logger.exception("Unhandled error on %s %s", request.method, request.path)
    return error_response(request, 500, "Internal server error", "server_error")
