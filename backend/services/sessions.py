"""Reading and ageing booked sessions."""
from django.db.models import Q, QuerySet
from django.utils import timezone

from backend.errors import NotFound, PrerequisiteMissing
from backend.models import Mentor, Session, User


def session_list_for_user(*, user: User, role: str = "mentee") -> QuerySet[Session]:
    """The caller's sessions, newest first: as mentee, or as mentor when role='mentor'."""
    sessions = Session.objects.select_related("mentor")
    if role == "mentor":
        # By mentor_id, not through the user join: the planner can then walk the
        # (mentor, -created_at, -id) index instead of sorting all of a busy mentor's rows.
        mentor_id = Mentor.objects.filter(user=user).values_list("pk", flat=True).first()
        sessions = sessions.filter(mentor_id=mentor_id) if mentor_id else sessions.none()
    else:
        sessions = sessions.filter(mentee=user)
    return sessions.order_by("-created_at", "-id")


def session_get_for_user(*, user: User, session_id: int) -> Session:
    """A session the caller takes part in; any other id is 'not found' so existence doesn't leak."""
    session = (
        Session.objects.select_related("mentor")
        .filter(Q(mentee=user) | Q(mentor__user=user), pk=session_id)
        .first()
    )
    if session is None:
        raise NotFound(f"Session {session_id} not found", field="session_id")
    return session


def session_for_payment(payment_intent: str | None) -> Session:
    """The session paid by a PaymentIntent, locked. Missing: retry later (its completion may
    still be on its way), unless the PaymentIntent is plainly not ours."""
    if not payment_intent:
        raise PrerequisiteMissing("event carries no payment_intent")
    session = Session.objects.select_for_update().filter(stripe_payment_id=payment_intent).first()
    if session is None:
        raise PrerequisiteMissing(f"no session for payment {payment_intent} yet")
    return session


def sessions_complete_past() -> int:
    """Mark scheduled sessions whose end has passed as completed; returns how many."""
    return Session.objects.filter(status=Session.Status.SCHEDULED, ends_at__lte=timezone.now()).update(
        status=Session.Status.COMPLETED, updated_at=timezone.now()
    )
