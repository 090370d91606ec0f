"""Accounts and bearer tokens (django-ninja-jwt signs them; nothing hand-rolled)."""
import logging

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django_ratelimit.core import get_usage
from ninja_jwt.exceptions import TokenError
from ninja_jwt.tokens import RefreshToken

from backend.errors import ApplicationError, Conflict, InvalidInput, NotAuthenticated
from backend.models import User

logger = logging.getLogger(__name__)

LOGIN_RATE_GROUP = "auth_login_failures"


class InvalidCredentials(NotAuthenticated):
    code = "invalid_credentials"


class LoginRateLimited(ApplicationError):
    code = "rate_limited"


def user_register(*, email: str, password: str, name: str) -> User:
    """Create a mentee account; the password goes through Django's validators."""
    email = email.strip().lower()
    name = name.strip()
    try:
        validate_email(email)
    except DjangoValidationError:
        raise InvalidInput("Enter a valid email address", field="email")
    if not name:
        raise InvalidInput("Name must not be empty", field="name")
    try:
        validate_password(password, user=User(email=email, name=name))
    except DjangoValidationError as exc:
        raise InvalidInput(" ".join(exc.messages), field="password", code="weak_password")
    try:
        with transaction.atomic():
            return User.objects.create_user(email=email, password=password, name=name)
    except IntegrityError:
        raise Conflict("An account with this email already exists", field="email")


def auth_login(*, email: str, password: str, client_ip: str) -> dict[str, str]:
    """Check the credentials and return a fresh access/refresh token pair.

    Failed attempts are counted per client address and email (LOGIN_RATE_LIMIT, in the
    shared cache so every worker sees them); past the limit even the right password is
    refused until the window ends, so guessing gains nothing.
    """
    user = user_authenticate(email=email, password=password, client_ip=client_ip)
    refresh = RefreshToken.for_user(user)
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


def user_authenticate(*, email: str, password: str, client_ip: str) -> User:
    """The user with these credentials, counting failures (the API's login and the pages' login)."""
    email = email.strip().lower()
    attempts_key = f"{client_ip}|{email}"
    if _login_failures_exhausted(attempts_key):
        raise LoginRateLimited("Too many failed logins; try again later")
    user = authenticate(username=email, password=password)
    if user is None:
        _login_failure_count(attempts_key)
        raise InvalidCredentials("Invalid email or password")
    return user


def _login_failure_usage(attempts_key: str, *, increment: bool) -> dict | None:
    try:
        return get_usage(None, group=LOGIN_RATE_GROUP, key=lambda group, request: attempts_key,
                         rate=settings.LOGIN_RATE_LIMIT, increment=increment)
    except Exception:
        # Cache backends raise their own errors (redis, OSError). Failing open keeps
        # everyone able to log in while the cache is down; the outage is logged.
        logger.warning("login rate limit: cache unavailable, not counting", exc_info=True)
        return None


def _login_failures_exhausted(attempts_key: str) -> bool:
    usage = _login_failure_usage(attempts_key, increment=False)
    return usage is not None and usage["count"] >= usage["limit"]


def _login_failure_count(attempts_key: str) -> None:
    _login_failure_usage(attempts_key, increment=True)


def auth_refresh(*, refresh: str) -> str:
    """A new access token from a valid refresh token."""
    try:
        return str(RefreshToken(refresh).access_token)
    except TokenError as exc:
        raise InvalidCredentials(f"Refresh token is invalid or expired: {exc}", field="refresh", code="token_not_valid")
