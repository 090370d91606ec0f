"""Email verification before a first booking (REQUIRE_EMAIL_VERIFICATION, off by default).

Accounts are free; with the setting on, a mentee whose address nobody has proven can't hold
a mentor's slot until they follow a link mailed to that address. The link carries a token
signed like Django's password reset tokens (SECRET_KEY, PASSWORD_RESET_TIMEOUT), bound to the
address and to whether it was verified already, so it works once and not for another address.
"""
import logging

from django.conf import settings
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode

from backend.errors import ApplicationError, InvalidInput, PermissionDenied
from backend.models import Session, User

logger = logging.getLogger(__name__)

VERIFY_PATH = "/verify-email/{uidb64}/{token}"


class EmailNotVerified(PermissionDenied):
    code = "email_not_verified"


class EmailNotSent(ApplicationError):
    """The mail server refused or did not answer: ask again later."""

    code = "email_not_sent"


class EmailVerificationTokenGenerator(PasswordResetTokenGenerator):
    key_salt = "backend.services.email_verification"

    def _make_hash_value(self, user, timestamp):
        # Invalid once used (verified_at set) and for any other address.
        return f"{user.pk}{user.email}{user.email_verified_at}{timestamp}"


email_verification_tokens = EmailVerificationTokenGenerator()


def email_verification_needed(*, user: User) -> bool:
    """Whether this mentee must verify their address before booking: the setting is on, it
    is not verified, and they have never booked (their earlier bookings were paid for)."""
    return (settings.REQUIRE_EMAIL_VERIFICATION and user.email_verified_at is None
            and not Session.objects.filter(mentee=user).exists())


def email_verification_check(*, user: User) -> None:
    """EmailNotVerified (403 `email_not_verified`) when email_verification_needed."""
    if email_verification_needed(user=user):
        raise EmailNotVerified(
            f"Verify your email address before your first booking: follow the link we emailed to {user.email} "
            "(ask for a new one with POST /api/auth/verify-email, or on the booking page)", field="email")


def email_verification_send(*, user: User, site_url: str) -> bool:
    """Mail `user` the link that verifies their address (False: already verified, nothing sent).
    `site_url` is this site's address as the user reached it (the link leads to its pages)."""
    if user.email_verified_at is not None:
        return False
    link = site_url.rstrip("/") + VERIFY_PATH.format(uidb64=urlsafe_base64_encode(force_bytes(user.pk)),
                                                     token=email_verification_tokens.make_token(user))
    context = {"name": user.name, "link": link, "valid_days": max(1, settings.PASSWORD_RESET_TIMEOUT // 86400)}
    try:
        send_mail("Verify your email address for MyRoadmap", render_to_string("emails/verify_email.txt", context),
                  settings.DEFAULT_FROM_EMAIL, [user.email],
                  html_message=render_to_string("emails/verify_email.html", context))
    except Exception as exc:  # SMTP refused or timed out (EMAIL_TIMEOUT): the user can ask again
        logger.warning("email verification: could not mail user %s: %s", user.pk, exc.__class__.__name__)
        raise EmailNotSent("We could not send the email just now; try again in a few minutes")
    logger.info("email verification: link mailed to user %s", user.pk)
    return True


def email_verify(*, uidb64: str, token: str) -> User:
    """Mark the address of the link's user verified; InvalidInput for a wrong, used or expired link."""
    try:
        user = User.objects.filter(pk=int(force_str(urlsafe_base64_decode(uidb64)))).first()
    except (ValueError, TypeError, OverflowError):
        user = None
    if user is None or not email_verification_tokens.check_token(user, token):
        raise InvalidInput("This verification link is invalid, used or expired; ask for a new one", field="token")
    user.email_verified_at = timezone.now()
    user.save(update_fields=["email_verified_at"])
    logger.info("email verification: user %s verified", user.pk)
    return user
