"""Accounts and bearer tokens (django-ninja-jwt signs them; nothing hand-rolled)."""
from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from ninja_jwt.exceptions import TokenError
from ninja_jwt.tokens import RefreshToken

from backend.errors import Conflict, InvalidInput, NotAuthenticated
from backend.models import User


class InvalidCredentials(NotAuthenticated):
    code = "invalid_credentials"


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


def auth_login(*, email: str, password: str) -> dict[str, str]:
    """Check the credentials and return a fresh access/refresh token pair."""
    user = authenticate(username=email.strip().lower(), password=password)
    if user is None:
        raise InvalidCredentials("Invalid email or password")
    refresh = RefreshToken.for_user(user)
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


def auth_refresh(*, refresh: str) -> str:
    """A new access token from a valid refresh token."""
    try:
        return str(RefreshToken(refresh).access_token)
    except TokenError as exc:
        raise InvalidCredentials(f"Refresh token is invalid or expired: {exc}", field="refresh", code="token_not_valid")
