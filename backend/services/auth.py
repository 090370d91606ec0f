"""Accounts, logins and bearer tokens (django-ninja-jwt signs them; nothing hand-rolled)."""
from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from ninja_jwt.backends import TokenBackendError
from ninja_jwt.settings import api_settings as jwt_settings
from ninja_jwt.state import token_backend
from ninja_jwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from ninja_jwt.tokens import RefreshToken
from ninja_jwt.utils import datetime_from_epoch

from backend.errors import Conflict, InvalidInput, NotAuthenticated, RateLimited
from backend.models import User
from backend.services import rate_limits
from backend.services.email_verification import EmailNotSent, email_verification_send
from backend.services.local_time import DEFAULT_TIME_ZONE, time_zone_check
from backend.services.rate_limits import address_key, rate_limit_count, rate_limit_exhausted
from backend.services.text import text_storable_check

LOGIN_RATE_GROUP = "auth_login_failures"
# The refresh token's fingerprint of the password it was issued under.
PASSWORD_CLAIM = "pwd"


class InvalidCredentials(NotAuthenticated):
    code = "invalid_credentials"


class LoginRateLimited(RateLimited):
    pass


def user_register(*, email: str, password: str, name: str, time_zone: str | None = None,
                  site_url: str | None = None) -> User:
    """Create a mentee account; the password goes through Django's validators. `time_zone`
    (an IANA name, UTC when not given) is where the person reads times: pages, emails, invites.
    With REQUIRE_EMAIL_VERIFICATION (and the `site_url` the link leads to) the verification link
    is mailed at once; if the mail server fails, the account stands and the link is asked again."""
    email = email.strip().lower()
    name = name.strip()
    time_zone = time_zone_check(time_zone) if time_zone else DEFAULT_TIME_ZONE
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
            user = User.objects.create_user(email=email, password=password, name=name, time_zone=time_zone)
    except IntegrityError:
        raise Conflict("An account with this email already exists", field="email")
    if settings.REQUIRE_EMAIL_VERIFICATION and site_url:
        try:
            email_verification_send(user=user, site_url=site_url)
        except EmailNotSent:
            pass  # logged; the booking page and POST /api/auth/verify-email send it again
    return user


def user_update(*, user: User, name: str | None = None, time_zone: str | None = None) -> User:
    """Change the caller's own name or time zone (an IANA name); `None` leaves a field as it is."""
    fields = []
    if name is not None:
        name = name.strip()
        if not name:
            raise InvalidInput("Name must not be empty", field="name")
        try:
            user.name = text_storable_check(name)
        except ValueError as exc:
            raise InvalidInput(f"name {exc}", field="name")
        fields.append("name")
    if time_zone is not None:
        user.time_zone = time_zone_check(time_zone)
        fields.append("time_zone")
    if fields:
        user.save(update_fields=fields)
    return user


class LoginRateLimitedBackend(ModelBackend):
    """Django's email/password check behind the login limit, for every way in: the API's
    tokens, the pages and the admin's login all call `authenticate()`, which comes here.

    Failed attempts are counted per account and, separately, per client address
    (LOGIN_RATE_LIMIT each, in the shared cache): one address spraying many emails and many
    addresses guessing one account both run out. Past the limit even the right password is
    refused (LoginRateLimited, raised through `authenticate()`) until the window ends, so
    guessing gains nothing. The address comes from the request, or from `client_address`
    when a service authenticates without one.
    """

    def authenticate(self, request, username=None, password=None, client_address=None, **kwargs):
        if username is None or password is None:
            return None
        address = rate_limits.client_address(request) if request is not None else client_address
        keys = [f"account:{username.strip().lower()}"] + ([address_key(address)] if address else [])
        try:
            rate_limit_exhausted(group=LOGIN_RATE_GROUP, rate=settings.LOGIN_RATE_LIMIT, keys=keys)
        except RateLimited as exc:
            raise LoginRateLimited("Too many failed logins; try again later", retry_after=exc.retry_after)
        user = super().authenticate(request, username=username.strip().lower(), password=password, **kwargs)
        if user is None:
            rate_limit_count(group=LOGIN_RATE_GROUP, rate=settings.LOGIN_RATE_LIMIT, keys=keys)
        return user


def user_authenticate(*, email: str, password: str, client_address: str | None) -> User:
    """The user with these credentials, for the API's tokens and the pages' session login
    (LoginRateLimitedBackend counts failures and refuses past LOGIN_RATE_LIMIT)."""
    user = authenticate(username=email, password=password, client_address=client_address)
    if user is None:
        raise InvalidCredentials("Invalid email or password")
    return user


def auth_login(*, email: str, password: str, client_address: str | None) -> dict[str, str]:
    """Check the credentials (user_authenticate) and return a fresh access/refresh token pair."""
    user = user_authenticate(email=email, password=password, client_address=client_address)
    return _token_pair(user)


def _token_pair(user: User) -> dict[str, str]:
    # for_user records the refresh token (token_blacklist's OutstandingToken), so it can be revoked.
    refresh = RefreshToken.for_user(user)
    refresh[PASSWORD_CLAIM] = _password_fingerprint(user)
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


def _password_fingerprint(user: User) -> str:
    # Changes whenever the password does (like Django's session auth hash), so a refresh
    # token issued before a password change stops working. Keyed: it reveals nothing.
    return salted_hmac("backend.auth.refresh", user.password, secret=settings.JWT_SIGNING_KEY).hexdigest()[:32]


def _refresh_claims(refresh: str) -> dict:
    """The claims of a refresh token we signed that has not expired, revoked or not."""
    try:
        claims = token_backend.decode(refresh, verify=True)
    except TokenBackendError as exc:
        raise InvalidCredentials(f"Refresh token is invalid or expired: {exc}", field="refresh", code="token_not_valid")
    if claims.get(jwt_settings.TOKEN_TYPE_CLAIM) != "refresh" or not claims.get(jwt_settings.JTI_CLAIM):
        raise InvalidCredentials("Refresh token is invalid or expired: Token has wrong type", field="refresh",
                                 code="token_not_valid")
    return claims


def _refresh_revoke(*, refresh: str, claims: dict) -> bool:
    """Blacklist one refresh token; False if it already was (a replay, or a concurrent refresh
    that won: the blacklist row is unique per token, so only one use ever succeeds)."""
    outstanding, _ = OutstandingToken.objects.get_or_create(
        jti=claims[jwt_settings.JTI_CLAIM],
        defaults={"token": refresh, "expires_at": datetime_from_epoch(claims["exp"]),
                  "user": User.objects.filter(pk=claims.get(jwt_settings.USER_ID_CLAIM)).first()})
    _, revoked_now = BlacklistedToken.objects.get_or_create(token=outstanding)
    return revoked_now


def auth_refresh(*, refresh: str) -> dict[str, str]:
    """A new access token and a new refresh token (rotation) for a valid refresh token whose
    user still exists, is active, and has not changed their password since it was issued.
    The refresh token given is revoked: using it again is refused."""
    claims = _refresh_claims(refresh)
    user = User.objects.filter(pk=claims.get(jwt_settings.USER_ID_CLAIM)).first()
    if user is None or not user.is_active:
        raise InvalidCredentials("The account of this refresh token is disabled or gone", field="refresh",
                                 code="token_not_valid")
    if not constant_time_compare(claims.get(PASSWORD_CLAIM, ""), _password_fingerprint(user)):
        raise InvalidCredentials("The password changed since this refresh token was issued; log in again",
                                 field="refresh", code="token_not_valid")
    with transaction.atomic():
        if not _refresh_revoke(refresh=refresh, claims=claims):
            raise InvalidCredentials("This refresh token was already used or revoked; log in again",
                                     field="refresh", code="token_not_valid")
        return _token_pair(user)


def refresh_tokens_prune() -> int:
    """Forget refresh tokens past their expiry (and their revocations): expired, they are
    refused by their own `exp` already. Every login and refresh records one."""
    deleted, _ = OutstandingToken.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted


def auth_logout(*, refresh: str) -> None:
    """Revoke a refresh token (logging out an API client); revoking one twice is harmless.
    Access tokens already issued from it run out by themselves (JWT_ACCESS_MINUTES)."""
    claims = _refresh_claims(refresh)
    with transaction.atomic():
        _refresh_revoke(refresh=refresh, claims=claims)
