"""Cancelling a booked session: who may, and what it refunds (services/cancellation_policy.py)."""
import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from backend.errors import Conflict
from backend.models import Refund, Session, User
from backend.services.cancellation_policy import (
    cancellation_policy_lines,
    cancellation_policy_of,
    refund_amount,
    refund_percent_for_notice,
)
from backend.services.refunds import refund_request
from backend.services.sessions import session_get_for_user

logger = logging.getLogger(__name__)

REASON_MAX_LENGTH = Session._meta.get_field("cancel_reason").max_length


@dataclass(frozen=True)
class CancelTerms:
    """What cancelling now would refund the caller's session, and why."""

    by_mentor: bool
    refund_percent: int
    refund_amount: int
    # The mentor moved the session last: the mentee may cancel with a full refund.
    moved_by_mentor: bool
    policy_lines: list[str]

    @property
    def refundable(self) -> bool:
        return self.refund_percent > 0


def _moved_by_mentor_last(session: Session) -> bool:
    last = session.reschedules.order_by("-created_at", "-id").first() if session.reschedule_count else None
    return bool(last and last.by_mentor)


def session_cancel_terms(*, session: Session, user: User) -> CancelTerms:
    """The refund the caller would get by cancelling now: a mentor always refunds in full; a
    mentee gets the tier of the session's own policy that the notice meets, or in full when the
    mentor moved the session last."""
    by_mentor = session.mentor.user_id == user.pk
    moved_by_mentor = not by_mentor and _moved_by_mentor_last(session)
    policy = cancellation_policy_of(session)
    if by_mentor or moved_by_mentor:
        percent = 100
    else:
        percent = refund_percent_for_notice(policy, starts=session.scheduled_at, now=timezone.now())
    return CancelTerms(by_mentor=by_mentor, refund_percent=percent,
                       refund_amount=refund_amount(session.amount, percent),
                       moved_by_mentor=moved_by_mentor, policy_lines=cancellation_policy_lines(policy))


def session_cancel_refundable(*, session: Session, user: User) -> bool:
    """Whether the caller may cancel with a refund now (see session_cancel_terms)."""
    return session_cancel_terms(session=session, user=user).refundable


def session_cancel(*, user: User, session_id: int, reason: str = "") -> Session:
    """Cancel one of the caller's sessions with the refund its policy gives (see
    session_cancel_refunding)."""
    return session_cancel_refunding(user=user, session_id=session_id, reason=reason)[0]


def session_cancel_refunding(*, user: User, session_id: int, reason: str = "") -> tuple[Session, Refund | None]:
    """Cancel one of the caller's sessions with the refund its policy gives; returns the session
    and the refund started, None when nothing was left to refund (or it was cancelled already).

    A mentor may always cancel, refunding in full; a mentee gets the session's tier for the
    notice given (all of it when the mentor moved the session last), and a mentee whose
    notice earns no refund is refused (the mentor can still cancel). A disputed payment can't
    be refunded (Stripe refuses while the bank decides), so it can't be cancelled here. The
    reason is kept whole on the session and told to the other party. Cancelling twice is harmless.
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
        terms = session_cancel_terms(session=session, user=user)
        if not terms.refundable:
            raise Conflict(
                "This session starts too soon to be cancelled with a refund under its cancellation policy "
                f"({' '.join(terms.policy_lines[:-1])}) Ask your mentor, who can still cancel it.",
                field="session_id", code="refund_window_closed",
            )
        who = Session.CancelledBy.MENTOR if terms.by_mentor else Session.CancelledBy.MENTEE
        session.cancelled_by, session.cancel_reason = who, reason
        session.save(update_fields=["cancelled_by", "cancel_reason", "updated_at"])
        refund = refund_request(session=session, requested_by=user, reason=f"cancelled by {who}: {reason}".strip(": "),
                                amount=None if terms.refund_percent == 100 else terms.refund_amount)
    logger.info("session %s cancelled by %s %s (%d %% refund)", session.pk, who, user.pk, terms.refund_percent)
    return session, refund
