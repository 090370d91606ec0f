"""The cancellation policy: who may cancel a booked session, and when it is refunded."""
import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from backend.errors import Conflict
from backend.models import Session, User
from backend.services.refunds import refund_request
from backend.services.sessions import session_get_for_user

logger = logging.getLogger(__name__)


def session_cancel_refundable(*, session: Session, user: User) -> bool:
    """The refund policy: a mentor may always cancel with a full refund, a mentee up to
    REFUND_CUTOFF_HOURS before the start."""
    if session.mentor.user_id == user.pk:
        return True
    return session.scheduled_at - timezone.now() >= timedelta(hours=settings.REFUND_CUTOFF_HOURS)


def session_cancel(*, user: User, session_id: int, reason: str = "") -> Session:
    """Cancel one of the caller's sessions with a full refund.

    A mentor may always cancel; a mentee only at least REFUND_CUTOFF_HOURS before the
    start. Cancelling twice is harmless.
    """
    with transaction.atomic():
        session = session_get_for_user(user=user, session_id=session_id)
        session = Session.objects.select_for_update().select_related("mentor").get(pk=session.pk)
        if session.status == Session.Status.CANCELLED:
            return session
        if session.status == Session.Status.COMPLETED or session.ends_at <= timezone.now():
            raise Conflict("This session has already taken place and can't be cancelled", field="session_id")
        if session.payment_status == Session.PaymentStatus.PENDING:
            raise Conflict("The payment for this session is still clearing; cancel once it has", field="session_id")
        is_mentor = session.mentor.user_id == user.pk
        if not session_cancel_refundable(session=session, user=user):
            raise Conflict(
                f"Sessions can be cancelled with a refund up to {settings.REFUND_CUTOFF_HOURS} hours before "
                "they start; this one starts sooner. Ask your mentor, who can still cancel it.",
                field="session_id", code="refund_window_closed",
            )
        who = "mentor" if is_mentor else "mentee"
        refund_request(session=session, requested_by=user, reason=f"cancelled by {who}: {reason}".strip(": "))
    logger.info("session %s cancelled by %s %s", session.pk, who, user.pk)
    return session
