"""Cancellations and refunds (flow 6), and Stripe's refund events.

A refund we start is a Refund row first (committed), then a Stripe call with the
idempotency key `refund:{id}`, so retries never refund twice; the webhook confirms.
Refunds made in the Stripe Dashboard arrive only as events and are recorded the same way.
"""
import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from backend import stripe_gateway
from backend.errors import Conflict
from backend.models import Refund, Session, User
from backend.services.followups import notification_on_commit, refund_execute_on_commit, stats_recompute_on_commit
from backend.services.fulfilment import session_for_payment
from backend.services.sessions import session_get_for_user

logger = logging.getLogger(__name__)

# Stripe's refund.status -> ours
REFUND_STATUS = {
    "pending": Refund.Status.PENDING,
    "requires_action": Refund.Status.PENDING,
    "succeeded": Refund.Status.SUCCEEDED,
    "failed": Refund.Status.FAILED,
    "canceled": Refund.Status.CANCELED,
}


def refund_request(*, session: Session, requested_by: User | None, reason: str) -> Refund | None:
    """Cancel `session` and refund what is left of its payment. Call with the row locked."""
    if session.status != Session.Status.CANCELLED:
        session.status = Session.Status.CANCELLED
        session.save(update_fields=["status", "updated_at"])
        stats_recompute_on_commit(session.mentor_id)
        notification_on_commit(session.pk, "cancelled")
    in_flight = session.refunds.filter(status__in=[Refund.Status.REQUESTED, Refund.Status.PENDING]).exists()
    remaining = session.amount - session.refunded_amount
    if session.payment_status != Session.PaymentStatus.PAID or remaining <= 0 or in_flight:
        return None
    refund = Refund.objects.create(session=session, amount=remaining, currency=session.currency,
                                   reason=reason[:255], requested_by=requested_by)
    refund_execute_on_commit(refund.pk)
    return refund


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


def refund_execute(*, refund_id: int) -> Refund:
    """Ask Stripe for a requested refund. The idempotency key makes a repeat of this call,
    even concurrent, return Stripe's first refund instead of making a second."""
    refund = Refund.objects.select_related("session").get(pk=refund_id)
    if refund.stripe_refund_id or refund.status != Refund.Status.REQUESTED:
        return refund
    info = stripe_gateway.refund_create(
        idempotency_key=f"refund:{refund.pk}",
        payment_intent=refund.session.stripe_payment_id,
        amount=refund.amount,
        metadata={"refund_id": str(refund.pk), "session_id": str(refund.session_id)},
    )
    with transaction.atomic():
        refund = Refund.objects.select_for_update().get(pk=refund_id)
        if not refund.stripe_refund_id:
            refund.stripe_refund_id = info.id
            if refund.status == Refund.Status.REQUESTED:
                refund.status = REFUND_STATUS.get(info.status, Refund.Status.PENDING)
            refund.save(update_fields=["stripe_refund_id", "status", "updated_at"])
    logger.info("refund %s sent to Stripe as %s (%s)", refund.pk, info.id, info.status)
    return refund


def refund_record_failure(*, refund_id: int, error: BaseException) -> None:
    Refund.objects.filter(pk=refund_id, stripe_refund_id__isnull=True).update(
        status=Refund.Status.FAILED, last_error=f"{error.__class__.__name__}: {error}"[:4000], updated_at=timezone.now()
    )


def _refunded_total(session: Session, charge_amount_refunded: int | None = None) -> int:
    succeeded = sum(session.refunds.filter(status=Refund.Status.SUCCEEDED).values_list("amount", flat=True))
    return min(session.amount, max(succeeded, charge_amount_refunded or 0, session.refunded_amount))


def _apply_refunded_total(session: Session, total: int) -> None:
    """Move the session to what Stripe has refunded so far; full -> refunded and cancelled."""
    if total <= session.refunded_amount:
        return
    session.refunded_amount = total
    fields = ["refunded_amount", "updated_at"]
    if total >= session.amount and session.payment_status != Session.PaymentStatus.REFUNDED:
        session.payment_status = Session.PaymentStatus.REFUNDED
        session.status = Session.Status.CANCELLED
        fields += ["payment_status", "status"]
        notification_on_commit(session.pk, "refunded")
    session.save(update_fields=fields)
    stats_recompute_on_commit(session.mentor_id)
    logger.info("session %s: %d of %d refunded", session.pk, total, session.amount)


def _refund_upsert(session: Session, refund: dict) -> Refund:
    ours = (refund.get("metadata") or {}).get("refund_id")
    row = Refund.objects.select_for_update().filter(stripe_refund_id=refund["id"]).first()
    if row is None and ours and str(ours).isdigit():
        row = Refund.objects.select_for_update().filter(pk=int(ours), session=session).first()
    if row is None:  # started outside our backend: the Stripe Dashboard
        row = Refund(session=session, amount=refund["amount"], currency=refund.get("currency") or session.currency,
                     reason=refund.get("reason") or "refunded in the Stripe Dashboard")
    row.stripe_refund_id = refund["id"]
    row.status = REFUND_STATUS.get(refund.get("status"), Refund.Status.PENDING)
    row.amount = refund["amount"]
    row.save()
    return row


def refund_event_apply(*, refund: dict) -> Session:
    """refund.created / refund.updated: record the refund and its status on the session."""
    session = session_for_payment(refund.get("payment_intent"))
    _refund_upsert(session, refund)
    _apply_refunded_total(session, _refunded_total(session))
    return session


def charge_refunded_apply(*, charge: dict) -> Session:
    """charge.refunded: the charge's cumulative amount_refunded is the truth for the session."""
    session = session_for_payment(charge.get("payment_intent"))
    for refund in (charge.get("refunds") or {}).get("data") or []:
        _refund_upsert(session, refund)
    _apply_refunded_total(session, _refunded_total(session, charge.get("amount_refunded")))
    return session


def refund_admin_request(*, session_id: int, staff: User) -> Refund | None:
    """The admin's "Refund" action: cancel and refund in full, whatever the policy."""
    with transaction.atomic():
        session = Session.objects.select_for_update().get(pk=session_id)
        return refund_request(session=session, requested_by=staff, reason="refunded by an admin")


def refunds_retry(*, refund_ids: list[int]) -> int:
    """Admin "Retry selected": failed refunds that never reached Stripe are requested again."""
    retryable = list(Refund.objects.filter(pk__in=refund_ids, status=Refund.Status.FAILED,
                                           stripe_refund_id__isnull=True).values_list("pk", flat=True))
    Refund.objects.filter(pk__in=retryable).update(status=Refund.Status.REQUESTED, last_error="", updated_at=timezone.now())
    for refund_id in retryable:
        refund_execute_on_commit(refund_id)
    return len(retryable)
