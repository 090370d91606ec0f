"""Moving a paid session to another free slot of the same mentor (flow 10 of DESIGN.md).

The payment carries over: nothing is charged or refunded, the session row keeps its
PaymentIntent and amount and only its slot changes. The move happens in one transaction
under the mentor's row lock, with the booking's own overlap check (sessions and open holds of
the mentor, the mentee's other bookings), and on PostgreSQL the exclusion constraint on
`sessions` refuses an overlap whatever the code does: a race between two moves and a booking
for one slot has exactly one winner. The old slot is free once the transaction commits.
A payout (which follows `ends_at`) moves with the session.
"""
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from backend.errors import Conflict, InvalidInput
from backend.models import Mentor, Session, SessionReschedule, User
from backend.services.availability import slot_within_schedule
from backend.services.checkouts import slot_start_check
from backend.services.dispatch import notification_on_commit
from backend.services.sessions import session_get_for_user
from backend.services.slots import slot_conflict

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RescheduleTerms:
    """Whether the caller may move their session now, and how many moves the mentee has left."""

    by_mentor: bool
    mentee_moves_left: int
    refusal: str = ""  # why not, when not allowed
    refusal_code: str = ""

    @property
    def allowed(self) -> bool:
        return not self.refusal


def _mentee_moves(session: Session) -> int:
    return session.reschedules.filter(by_mentor=False).count() if session.reschedule_count else 0


def _refusal(session: Session, *, by_mentor: bool, moves_left: int, now: datetime) -> tuple[str, str]:
    """(why the caller may not move the session now, code), or two empty strings."""
    if session.status != Session.Status.SCHEDULED:
        return f"This session is {session.status}; only a scheduled session can be moved", "not_reschedulable"
    if session.payment_status == Session.PaymentStatus.PENDING:
        return "The payment for this session is still clearing; move it once it has", "not_reschedulable"
    if session.payment_status != Session.PaymentStatus.PAID:
        return "Only a paid session can be moved", "not_reschedulable"
    if session.scheduled_at <= now:
        return "This session has already started and can't be moved", "session_started"
    if session.is_disputed:
        return "This session's payment is disputed; it can't be moved", "not_reschedulable"
    if by_mentor:
        return "", ""
    if session.scheduled_at - now < timedelta(hours=settings.RESCHEDULE_NOTICE_HOURS):
        return (f"Sessions can be moved up to {settings.RESCHEDULE_NOTICE_HOURS} hours before they start; this one "
                "starts sooner. Ask your mentor, who can still move it.", "reschedule_window_closed")
    if moves_left == 0:
        return (f"This session has been moved {settings.MAX_RESCHEDULES} times already, the most a mentee may. "
                "Ask your mentor, who can still move it.", "too_many_reschedules")
    return "", ""


def session_reschedule_terms(*, session: Session, user: User, now: datetime | None = None) -> RescheduleTerms:
    """The policy: a scheduled, paid session that has not started may be moved by its mentor at
    any time; by its mentee until RESCHEDULE_NOTICE_HOURS before the start, MAX_RESCHEDULES times."""
    by_mentor = session.mentor.user_id == user.pk
    left = max(0, settings.MAX_RESCHEDULES - _mentee_moves(session))
    refusal, code = _refusal(session, by_mentor=by_mentor, moves_left=left, now=now or timezone.now())
    return RescheduleTerms(by_mentor=by_mentor, mentee_moves_left=left, refusal=refusal, refusal_code=code)


def session_reschedule(*, user: User, session_id: int, scheduled_at: datetime,
                       duration_minutes: int | None = None) -> Session:
    """Move one of the caller's paid sessions to `scheduled_at`, keeping its duration and payment.

    Refused (409) when the policy does not allow it now (session_reschedule_terms), when the
    new slot is outside the mentor's schedule (`outside_schedule`) or taken (`slot_unavailable`);
    a different duration is 422 (it would change the price). Moving to the time it already has
    changes nothing, so a retried request is harmless. Both parties get an email with the
    updated calendar invite (same UID, the next SEQUENCE).
    """
    now = timezone.now()
    session = session_get_for_user(user=user, session_id=session_id)
    if duration_minutes is not None and duration_minutes != session.duration_minutes:
        raise InvalidInput(
            f"A session keeps its duration when it is moved ({session.duration_minutes} minutes, as paid); to change "
            "it, cancel and book again", field="duration_minutes", code="duration_change_not_supported")
    slot_start_check(scheduled_at=scheduled_at, now=now)

    with transaction.atomic():
        # The mentor's row first, as a booking takes it: moves and bookings of one mentor queue here.
        Mentor.objects.select_for_update().filter(pk=session.mentor_id).first()
        session = Session.objects.select_for_update().select_related("mentor").get(pk=session.pk)
        # The mentee's row too: their own bookings with other mentors count (as in a booking).
        User.objects.select_for_update().filter(pk=session.mentee_id).first()
        if session.scheduled_at == scheduled_at and session.status == Session.Status.SCHEDULED:
            return session
        terms = session_reschedule_terms(session=session, user=user, now=now)
        if not terms.allowed:
            raise Conflict(terms.refusal, field="session_id", code=terms.refusal_code)
        ends_at = scheduled_at + timedelta(minutes=session.duration_minutes)
        if not slot_within_schedule(mentor_id=session.mentor_id, starts=scheduled_at, ends=ends_at):
            raise Conflict("The mentor is not available at that time; pick a time from their availability",
                           field="scheduled_at", code="outside_schedule")
        conflict = slot_conflict(mentor_id=session.mentor_id, mentee_id=session.mentee_id, starts=scheduled_at,
                                 ends=ends_at, excluding_session_id=session.pk)
        if conflict:
            raise Conflict(conflict, field="scheduled_at", code="slot_unavailable")
        SessionReschedule.objects.create(
            session=session, previous_scheduled_at=session.scheduled_at, previous_ends_at=session.ends_at,
            scheduled_at=scheduled_at, ends_at=ends_at, requested_by=user, by_mentor=terms.by_mentor)
        previous = session.scheduled_at
        session.scheduled_at, session.ends_at = scheduled_at, ends_at
        session.reschedule_count += 1
        try:
            # The exclusion constraint (PostgreSQL) is the last word on overlaps.
            with transaction.atomic():
                session.save(update_fields=["scheduled_at", "ends_at", "reschedule_count", "updated_at"])
        except IntegrityError:
            raise Conflict("The mentor already has a session at that time", field="scheduled_at",
                           code="slot_unavailable")
        notification_on_commit(session.pk, "rescheduled")
    logger.info("session %s moved from %s to %s by the %s (move %d)", session.pk, previous.isoformat(),
                scheduled_at.isoformat(), "mentor" if terms.by_mentor else "mentee", session.reschedule_count)
    return session
