"""The cancellation policy: who may cancel a booked session, and when it is refunded."""
import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from backend.errors import Conflict
from backend.models import Refund, Session, User
from backend.services.refunds import refund_request
from backend.services.sessions import session_get_for_user

logger = logging.getLogger(__name__)

REASON_MAX_LENGTH = Session._meta.get_field("cancel_reason").max_length


def session_cancel_refundable(*, session: Session, user: User) -> bool:
    """The refund policy: a mentor may always cancel with a full refund, a mentee up to
    REFUND_CUTOFF_HOURS before the start."""
    if session.mentor.user_id == user.pk:
        return True
    return session.scheduled_at - timezone.now() >= timedelta(hours=settings.REFUND_CUTOFF_HOURS)


def session_cancel(*, user: User, session_id: int, reason: str = "") -> Session:
    """Cancel one of the caller's sessions with a full refund (see session_cancel_refunding)."""
    return session_cancel_refunding(user=user, session_id=session_id, reason=reason)[0]


def session_cancel_refunding(*, user: User, session_id: int, reason: str = "") -> tuple[Session, Refund | None]:
    """Cancel one of the caller's sessions with a full refund; returns the session and the
    refund started, None when nothing was left to refund (or it was cancelled already).

    A mentor may always cancel; a mentee only at least REFUND_CUTOFF_HOURS before the
    start. A disputed payment can't be refunded (Stripe refuses while the bank decides),
    so it can't be cancelled here. The reason is kept whole on the session and told to
    the other party. Cancelling twice is harmless.
    """
    reason = reason.strip()[:REASON_MAX_LENGTH]
    with transaction.atomic():
        session = session_get_for_user(user=user, session_id=session_id)
        session = Session.objects.select_for_update().select_related("mentor").get(pk=session.pk)
        if session.status == Session.Status.CANCELLED:
            return session, None
        if session.status == Session.Status.COMPLETED or session.ends_at <= timezone.now():
            raise Conflict("This session has already taken place and can't be cancelled", field="session_id")
        if session.payment_status == Session.PaymentStatus.PENDING:
            raise Conflict("The payment for this session is still clearing; cancel once it has", field="session_id")
        if session.is_disputed:
            raise Conflict("The payment for this session is under dispute at the bank, so it can't be cancelled or "
                           "refunded here; the bank's decision settles it", field="session_id", code="payment_disputed")
        is_mentor = session.mentor.user_id == user.pk
        if not session_cancel_refundable(session=session, user=user):
            raise Conflict(
                f"Sessions can be cancelled with a refund up to {settings.REFUND_CUTOFF_HOURS} hours before "
                "they start; this one starts sooner. Ask your mentor, who can still cancel it.",
                field="session_id", code="refund_window_closed",
            )
        who = Session.CancelledBy.MENTOR if is_mentor else Session.CancelledBy.MENTEE
        session.cancelled_by, session.cancel_reason = who, reason
        session.save(update_fields=["cancelled_by", "cancel_reason", "updated_at"])
        refund = refund_request(session=session, requested_by=user, reason=f"cancelled by {who}: {reason}".strip(": "))
    logger.info("session %s cancelled by %s %s", session.pk, who, user.pk)
    return session, refund
