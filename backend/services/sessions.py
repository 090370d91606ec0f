"""Reading and ageing booked sessions."""
import logging

from django.db import transaction
from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from backend import stripe_gateway
from backend.errors import ApplicationError, NotFound, PaymentWithoutSession, PrerequisiteMissing
from backend.models import Mentor, Refund, Session, User
from backend.services.cancellation_policy import cancellation_policy_snapshot
from backend.services.dispatch import notification_on_commit, stats_recompute_on_commit
from backend.services.installation import stripe_metadata_is_ours
from backend.services.notifications import admin_alert

logger = logging.getLogger(__name__)


def session_list_for_user(*, user: User, role: str = "mentee", with_refunds: bool = False) -> QuerySet[Session]:
    """The caller's sessions, newest first: as mentee, or as mentor when role='mentor'.

    `with_refunds`: each session's refunds come along newest first in `refunds_newest_first`
    (one query for the whole page, not one per row), and the mentee's name too.
    """
    sessions = Session.objects.select_related("mentor")
    if with_refunds:
        sessions = sessions.select_related("mentee").prefetch_related(Prefetch(
            "refunds", queryset=Refund.objects.order_by("-created_at", "-id"), to_attr="refunds_newest_first"))
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
    """The session paid by a PaymentIntent, locked. Missing: PaymentWithoutSession, which
    the webhook decides on once it holds no lock (payment_is_ours): retry later (its
    completion may still be on its way), or ignore another integration's payment."""
    if not payment_intent:
        raise PrerequisiteMissing("event carries no payment_intent")
    session = Session.objects.select_for_update().filter(stripe_payment_id=payment_intent).first()
    if session is None:
        raise PaymentWithoutSession(payment_intent)
    return session


def payment_is_ours(payment_intent: str) -> bool:
    """Whether a PaymentIntent was made by this database (its metadata says so). Reconcile
    reads the whole account's events: another integration's payment would otherwise wait
    for a session forever. One Stripe call: never made while holding a row lock."""
    payment = stripe_gateway.payment_intent_retrieve(payment_intent)
    return payment is not None and stripe_metadata_is_ours(payment.get("metadata"))


def sessions_complete_past() -> int:
    """Mark scheduled, paid sessions whose end has passed as completed; returns how many.
    A session whose payment has not cleared is never completed (see sessions_unpaid_at_start_cancel)."""
    return Session.objects.filter(
        status=Session.Status.SCHEDULED, payment_status=Session.PaymentStatus.PAID, ends_at__lte=timezone.now()
    ).update(status=Session.Status.COMPLETED, updated_at=timezone.now())


def session_payment_cleared(session: Session, payment_intent: str | None = None) -> None:
    """A delayed debit cleared: pending becomes paid, stats follow, and the booking
    confirmation if the session still takes place. Call with the row locked."""
    session.payment_status = Session.PaymentStatus.PAID
    session.stripe_payment_id = session.stripe_payment_id or payment_intent
    cancellation_policy_snapshot(session)  # what the booking promises, fixed once it is paid
    session.save(update_fields=["payment_status", "stripe_payment_id", "cancellation_policy", "updated_at"])
    stats_recompute_on_commit(session.mentor_id)
    if session.status == Session.Status.SCHEDULED:
        notification_on_commit(session.pk, "booked")


def sessions_unpaid_at_start_cancel() -> int:
    """The pending-debit policy (README, "Failure policies"): a session whose delayed debit
    has not cleared when it starts does not take place. Stripe is asked first, one session
    at a time and with no lock held: a debit that cleared while its event is late (a
    backlog, a retry) is settled as paid now, as that event would, and the session takes
    place. The others are cancelled, mentee and mentor told, the admins alerted; if the
    debit clears later it is refunded in full, if it fails nothing was taken. Stripe
    unreachable: the session waits for the next run. Returns how many were cancelled."""
    due = list(Session.objects.filter(
        status=Session.Status.SCHEDULED, payment_status=Session.PaymentStatus.PENDING,
        scheduled_at__lte=timezone.now(),
    ).order_by("scheduled_at").values_list("pk", "stripe_payment_id")[:500])
    cancelled = []
    for session_id, payment_intent in due:
        try:
            payment = stripe_gateway.payment_intent_retrieve(payment_intent) if payment_intent else None
        except ApplicationError as exc:
            logger.warning("sessions: session %s starts unpaid, but Stripe could not be asked about %s (%s); "
                           "asked again next run", session_id, payment_intent, exc.code)
            continue
        with transaction.atomic():
            session = Session.objects.select_for_update(skip_locked=True).filter(
                pk=session_id, status=Session.Status.SCHEDULED, payment_status=Session.PaymentStatus.PENDING
            ).first()
            if session is None:
                continue  # settled meanwhile (its event came), or being settled
            if payment is not None and payment.get("status") == "succeeded":
                session_payment_cleared(session)
                logger.warning("sessions: session %s starts with its debit cleared at Stripe, its event still on "
                               "its way; settled as paid", session.pk)
                continue
            session.status = Session.Status.CANCELLED
            session.cancelled_by = Session.CancelledBy.SYSTEM
            session.save(update_fields=["status", "cancelled_by", "updated_at"])
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
