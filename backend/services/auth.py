"""Accounts and bearer tokens (django-ninja-jwt signs them; nothing hand-rolled)."""
from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils.crypto import constant_time_compare, salted_hmac
from ninja_jwt.exceptions import TokenError
from ninja_jwt.settings import api_settings as jwt_settings
from ninja_jwt.tokens import RefreshToken

from backend.errors import Conflict, InvalidInput, NotAuthenticated, RateLimited
from backend.models import User
from backend.services.rate_limits import rate_limit_count, rate_limit_exhausted

LOGIN_RATE_GROUP = "auth_login_failures"
# The refresh token's fingerprint of the password it was issued under.
PASSWORD_CLAIM = "pwd"


class InvalidCredentials(NotAuthenticated):
    code = "invalid_credentials"


class LoginRateLimited(RateLimited):
    pass


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


def user_authenticate(*, email: str, password: str, client_address: str | None) -> User:
    """The user with these credentials, for the API's tokens and the pages' session login.

    Failed attempts are counted per account and, separately, per client address
    (LOGIN_RATE_LIMIT each, in the shared cache): one address spraying many emails and many
    addresses guessing one account both run out. Past the limit even the right password
    is refused until the window ends, so guessing gains nothing.
    """
    email = email.strip().lower()
    keys = [f"account:{email}"] + ([f"address:{client_address}"] if client_address else [])
    try:
        rate_limit_exhausted(group=LOGIN_RATE_GROUP, rate=settings.LOGIN_RATE_LIMIT, keys=keys)
    except RateLimited as exc:
        raise LoginRateLimited("Too many failed logins; try again later", retry_after=exc.retry_after)
    user = authenticate(username=email, password=password)
    if user is None:
        rate_limit_count(group=LOGIN_RATE_GROUP, rate=settings.LOGIN_RATE_LIMIT, keys=keys)
        raise InvalidCredentials("Invalid email or password")
    return user


def auth_login(*, email: str, password: str, client_address: str | None) -> dict[str, str]:
    """Check the credentials (user_authenticate) and return a fresh access/refresh token pair."""
    user = user_authenticate(email=email, password=password, client_address=client_address)
    refresh = RefreshToken.for_user(user)
    refresh[PASSWORD_CLAIM] = _password_fingerprint(user)
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


def _password_fingerprint(user: User) -> str:
    # Changes whenever the password does (like Django's session auth hash), so a refresh
    # token issued before a password change stops working. Keyed: it reveals nothing.
    return salted_hmac("backend.auth.refresh", user.password, secret=settings.JWT_SIGNING_KEY).hexdigest()[:32]


def auth_refresh(*, refresh: str) -> str:
    """A new access token from a valid refresh token whose user still exists, is active,
    and has not changed their password since the token was issued."""
    try:
        token = RefreshToken(refresh)
    except TokenError as exc:
        raise InvalidCredentials(f"Refresh token is invalid or expired: {exc}", field="refresh", code="token_not_valid")
    user = User.objects.filter(pk=token.get(jwt_settings.USER_ID_CLAIM)).first()
    if user is None or not user.is_active:
        raise InvalidCredentials("The account of this refresh token is disabled or gone", field="refresh",
                                 code="token_not_valid")
    if not constant_time_compare(token.get(PASSWORD_CLAIM, ""), _password_fingerprint(user)):
        raise InvalidCredentials("The password changed since this refresh token was issued; log in again",
                                 field="refresh", code="token_not_valid")
    return str(token.access_token)
