"""Reading and ageing booked sessions."""
import logging

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from backend import stripe_gateway
from backend.errors import NotFound, NotOurs, PrerequisiteMissing
from backend.models import Mentor, Session, User
from backend.services.dispatch import notification_on_commit
from backend.services.installation import stripe_metadata_is_ours
from backend.services.notifications import admin_alert

logger = logging.getLogger(__name__)


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
        # Reconcile reads the whole account's events: another integration's payment would
        # otherwise wait here forever. Its metadata says whose it is.
        payment = stripe_gateway.payment_intent_retrieve(payment_intent)
        if payment is None or not stripe_metadata_is_ours(payment.get("metadata")):
            raise NotOurs(f"payment {payment_intent} is not one of ours")
        raise PrerequisiteMissing(f"no session for payment {payment_intent} yet")
    return session


def sessions_complete_past() -> int:
    """Mark scheduled, paid sessions whose end has passed as completed; returns how many.
    A session whose payment has not cleared is never completed (see sessions_unpaid_at_start_cancel)."""
    return Session.objects.filter(
        status=Session.Status.SCHEDULED, payment_status=Session.PaymentStatus.PAID, ends_at__lte=timezone.now()
    ).update(status=Session.Status.COMPLETED, updated_at=timezone.now())


def sessions_unpaid_at_start_cancel() -> int:
    """The pending-debit policy (README, "Failure policies"): a session whose delayed debit
    has not cleared when it starts does not take place. It is cancelled, mentee and mentor
    are told, the admins alerted; if the debit clears later it is refunded in full, and if
    it fails nothing was taken. Returns how many were cancelled."""
    cancelled = []
    with transaction.atomic():
        due = Session.objects.select_for_update(skip_locked=True).filter(
            status=Session.Status.SCHEDULED, payment_status=Session.PaymentStatus.PENDING,
            scheduled_at__lte=timezone.now(),
        )
        for session in due[:500]:
            session.status = Session.Status.CANCELLED
            session.save(update_fields=["status", "updated_at"])
            notification_on_commit(session.pk, "cancelled")
            cancelled.append(session)
    if cancelled:
        admin_alert(
            subject=f"{len(cancelled)} session(s) cancelled: payment still pending at start",
            message="\n".join(f"session {s.pk} \"{s.title}\" at {s.scheduled_at:%Y-%m-%d %H:%M} UTC, "
                              f"payment {s.stripe_payment_id}: cancelled; refunded in full if the debit clears"
                              for s in cancelled),
        )
        logger.warning("sessions: %d cancelled with their payment still pending at start", len(cancelled))
    return len(cancelled)
