"""Refunds (flow 6) and Stripe's refund events.

We start every refund the same way (`refund_create`): a Refund row first
(committed), then a task asks Stripe for what is left of the payment at that moment,
read from Stripe's charge, never from our possibly stale copy. Refunds made in the
Stripe Dashboard arrive only as events and are recorded the same way.

Stripe is the truth for each refund's status and for the session's refunded total,
which can go down: a refund may fail after it succeeded (card 4000 0000 0000 5126).
A refund's status only moves forward, so a stale or replayed event never rewinds it.
"""
import logging

from django.db import transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from backend import stripe_gateway
from backend.errors import PaymentProviderError
from backend.models import Refund, Session, User
from backend.services.dispatch import (
    admin_alert_on_commit,
    notification_on_commit,
    refund_execute_on_commit,
    stats_recompute_on_commit,
)
from backend.services.installation import idempotency_key, stripe_metadata
from backend.services.sessions import session_for_payment

logger = logging.getLogger(__name__)

# Stripe's refund.status -> ours
REFUND_STATUS = {
    "pending": Refund.Status.PENDING,
    "requires_action": Refund.Status.PENDING,
    "succeeded": Refund.Status.SUCCEEDED,
    "failed": Refund.Status.FAILED,
    "canceled": Refund.Status.CANCELED,
}
# The order a refund's status moves in. Stripe can fail a refund that had succeeded,
# never the reverse; failed and canceled are final.
STATUS_RANK = {
    Refund.Status.REQUESTED: 0,
    Refund.Status.PENDING: 1,
    Refund.Status.SUCCEEDED: 2,
    Refund.Status.FAILED: 3,
    Refund.Status.CANCELED: 3,
}
# What Stripe counts in the charge's amount_refunded.
COUNTED = (Refund.Status.PENDING, Refund.Status.SUCCEEDED)
IN_FLIGHT = (Refund.Status.REQUESTED, Refund.Status.PENDING)
# Stripe answered amount_too_large: someone refunded meanwhile; read again, this many times.
REREADS = 3


def refund_create(*, session: Session, reason: str, requested_by: User | None = None, amount: int | None = None,
                  retry_of: Refund | None = None) -> Refund | None:
    """Refund `amount` of a captured payment (default: all that is left): the one way we
    start a refund. Call with the session row locked. None when nothing is left or one of
    ours is still on its way. The task refunds at most this amount, and never more than
    Stripe's charge still holds when it runs.
    """
    left = session.amount - session.refunded_amount
    if session.payment_status != Session.PaymentStatus.PAID or left <= 0:
        return None
    if session.refunds.filter(status__in=IN_FLIGHT).exists():
        return None
    refund = Refund.objects.create(session=session, amount=min(left, amount or left), currency=session.currency,
                                   reason=reason[:255], requested_by=requested_by, retry_of=retry_of)
    refund_execute_on_commit(refund.pk)
    return refund


def refund_request(*, session: Session, requested_by: User | None, reason: str) -> Refund | None:
    """Cancel `session` and refund what is left of its payment. Call with the row locked."""
    if session.status != Session.Status.CANCELLED:
        session.status = Session.Status.CANCELLED
        session.save(update_fields=["status", "updated_at"])
        stats_recompute_on_commit(session.mentor_id)
        notification_on_commit(session.pk, "cancelled")
    return refund_create(session=session, reason=reason, requested_by=requested_by)


def refund_execute(*, refund_id: int) -> Refund:
    """Ask Stripe for a requested refund: its amount, or less if Stripe's charge holds less
    now (a Dashboard refund our copy has not seen yet).

    The idempotency key carries the amount: a repeat of the same request returns Stripe's
    first refund, and after amount_too_large (a Dashboard refund landed meanwhile) the
    smaller request is a new one. A refund Stripe already made for this row (a timeout
    after it succeeded) is found by its metadata and adopted instead of repeated.
    """
    refund = Refund.objects.select_related("session").get(pk=refund_id)
    if refund.stripe_refund_id or refund.status != Refund.Status.REQUESTED:
        return refund
    Refund.objects.filter(pk=refund_id).update(attempts=F("attempts") + 1)
    payment_intent = refund.session.stripe_payment_id
    stripe_refund = None
    if refund.attempts:  # an earlier attempt may have reached Stripe
        stripe_refund = next((r for r in stripe_gateway.refunds_list(payment_intent=payment_intent)
                              if (r.get("metadata") or {}).get("refund_id") == str(refund.pk)), None)
    for attempt in range(REREADS):
        if stripe_refund is not None:
            break
        remaining = min(refund.amount, _charge_refundable(payment_intent))
        if remaining <= 0:
            return _refund_not_needed(refund_id)
        try:
            stripe_refund = stripe_gateway.refund_create(
                idempotency_key=idempotency_key("refund", f"{refund.pk}:{remaining}"),
                payment_intent=payment_intent,
                amount=remaining,
                metadata=stripe_metadata(refund_id=refund.pk, session_id=refund.session_id),
            )
        except PaymentProviderError as exc:
            if exc.code != "amount_too_large" or attempt == REREADS - 1:
                raise
            logger.warning("refund %s: Stripe holds less than %d now; reading again", refund.pk, remaining)
    with transaction.atomic():
        refund = _refund_apply(refund.session, stripe_refund)
    logger.info("refund %s sent to Stripe as %s (%s, %d)", refund.pk, stripe_refund["id"], stripe_refund["status"],
                stripe_refund["amount"])
    return refund


def _charge_refundable(payment_intent: str) -> int:
    """What Stripe would still refund of the payment now: its charge's amount less
    amount_refunded (pending refunds count as refunded there)."""
    charge = (stripe_gateway.payment_intent_retrieve(payment_intent) or {}).get("latest_charge")
    if not isinstance(charge, dict):
        return 0
    return max(0, charge["amount"] - charge["amount_refunded"])


def _refund_not_needed(refund_id: int) -> Refund:
    with transaction.atomic():
        refund = Refund.objects.select_for_update().get(pk=refund_id)
        if refund.status == Refund.Status.REQUESTED and not refund.stripe_refund_id:
            refund.status = Refund.Status.CANCELED
            refund.last_error = "Nothing left to refund: Stripe's charge is already refunded in full"
            refund.save(update_fields=["status", "last_error", "updated_at"])
    logger.info("refund %s: nothing left to refund at Stripe", refund_id)
    return refund


def refund_record_failure(*, refund_id: int, error: BaseException) -> None:
    """A refund that never reached Stripe is failed for good; the admins hear of it once."""
    message = f"{error.__class__.__name__}: {error}"[:4000]
    with transaction.atomic():
        failed = Refund.objects.filter(pk=refund_id, stripe_refund_id__isnull=True).exclude(
            status=Refund.Status.FAILED
        ).update(status=Refund.Status.FAILED, last_error=message, updated_at=timezone.now())
        if failed:
            refund = Refund.objects.get(pk=refund_id)
            admin_alert_on_commit(
                subject=f"Refund {refund.pk} failed: not sent to Stripe",
                message=(f"Refund {refund.pk} of {refund.amount} {refund.currency.upper()} on session "
                         f"{refund.session_id} could not be sent to Stripe: {message}\n"
                         "The money is still held. Retry it from the admin (Refunds, \"Retry selected\")."),
            )


def _refund_apply(session: Session, stripe_refund: dict) -> Refund:
    """Record one of Stripe's Refund objects on our row (found by Stripe id, else by our id in
    its metadata, else a new row: a Dashboard refund). Its status only moves forward."""
    rows = Refund.objects.select_for_update()
    row = rows.filter(stripe_refund_id=stripe_refund["id"]).first()
    ours = (stripe_refund.get("metadata") or {}).get("refund_id")
    if row is None and ours and str(ours).isdigit():
        row = rows.filter(pk=int(ours), session=session, stripe_refund_id__isnull=True).first()
    if row is None:
        row = Refund(session=session, amount=stripe_refund["amount"],
                     currency=stripe_refund.get("currency") or session.currency,
                     reason=stripe_refund.get("reason") or "refunded in the Stripe Dashboard")
    status = REFUND_STATUS.get(stripe_refund.get("status"), Refund.Status.PENDING)
    # Until Stripe has reported on a row, our own status (requested, or failed before Stripe
    # answered) says nothing about Stripe's refund: take Stripe's.
    reported = row.pk is not None and row.stripe_refund_id is not None
    if reported and STATUS_RANK[status] <= STATUS_RANK[row.status]:
        if status != row.status:
            logger.info("refund %s: stale %s ignored, it is %s", stripe_refund["id"], status, row.status)
        return row
    newly_failed = status == Refund.Status.FAILED and row.status != Refund.Status.FAILED
    row.stripe_refund_id = stripe_refund["id"]
    row.amount = stripe_refund["amount"]
    row.status = status
    if status == Refund.Status.FAILED:
        row.failure_reason = (stripe_refund.get("failure_reason") or "")[:100]
    row.save()
    if newly_failed:
        admin_alert_on_commit(
            subject=f"Refund failed at Stripe on session {session.pk}",
            message=(f"Stripe failed refund {row.stripe_refund_id} of {row.amount} {row.currency.upper()} "
                     f"({row.failure_reason or 'no reason given'}) on session {session.pk} \"{session.title}\", "
                     f"payment {session.stripe_payment_id}. The money is held again. Retry it from the admin "
                     "(Refunds, \"Retry selected\"), or contact the customer."),
        )
    return row


def _session_settle(session: Session) -> None:
    """Bring the session to Stripe's refunds as our rows now mirror them: refunded amount
    (up or down), payment status, the refund email once Stripe says succeeded, and a
    top-up when a cancelled session, which the policy refunds in full, still holds money."""
    totals = session.refunds.aggregate(
        counted=Sum("amount", filter=Q(status__in=COUNTED)),
        succeeded=Sum("amount", filter=Q(status=Refund.Status.SUCCEEDED)),
    )
    total = min(session.amount, totals["counted"] or 0)
    fields = []
    if total != session.refunded_amount:
        session.refunded_amount = total
        fields.append("refunded_amount")
    if total >= session.amount and session.payment_status != Session.PaymentStatus.REFUNDED:
        session.payment_status = Session.PaymentStatus.REFUNDED
        fields.append("payment_status")
        if session.status != Session.Status.CANCELLED:  # refunded in full in the Dashboard
            session.status = Session.Status.CANCELLED
            fields.append("status")
            notification_on_commit(session.pk, "cancelled")
    elif total < session.amount and session.payment_status == Session.PaymentStatus.REFUNDED:
        session.payment_status = Session.PaymentStatus.PAID  # a refund failed: the money is back with us
        fields.append("payment_status")
    if fields:
        session.save(update_fields=[*fields, "updated_at"])
        stats_recompute_on_commit(session.mentor_id)
        logger.info("session %s: %d of %d refunded (%s)", session.pk, total, session.amount, session.payment_status)
    if (totals["succeeded"] or 0) >= session.amount:
        notification_on_commit(session.pk, "refunded")  # once per recipient, whatever the repeats
    unresolved_failure = session.refunds.filter(status=Refund.Status.FAILED, retried_by__isnull=True).exists()
    if session.status == Session.Status.CANCELLED and not unresolved_failure:  # failures wait for an admin
        refund_create(session=session, reason="the rest of a cancelled session's payment")


def refund_event_apply(*, refund: dict) -> Session:
    """refund.created / refund.updated / refund.failed: record the refund, settle the session."""
    session = session_for_payment(refund.get("payment_intent"))
    _refund_apply(session, refund)
    _session_settle(session)
    return session


def charge_refunded_apply(*, charge: dict) -> Session:
    """charge.refunded: the charge's refunds, as listed in the event or, when Stripe leaves
    them out (newer API versions), as Stripe has them now."""
    listed = charge.get("refunds") or {}
    if "data" in listed and not listed.get("has_more"):
        stripe_refunds = listed["data"]
    else:
        stripe_refunds = list(stripe_gateway.refunds_list(payment_intent=charge.get("payment_intent")))
    session = session_for_payment(charge.get("payment_intent"))
    for stripe_refund in stripe_refunds:
        _refund_apply(session, stripe_refund)
    _session_settle(session)
    return session


def refund_admin_request(*, session_id: int, staff: User) -> Refund | None:
    """The admin's "Refund" action: cancel and refund in full, whatever the policy."""
    with transaction.atomic():
        session = Session.objects.select_for_update().get(pk=session_id)
        return refund_request(session=session, requested_by=staff, reason="refunded by an admin")


def refunds_retry(*, refund_ids: list[int], staff: User | None = None) -> int:
    """Admin "Retry selected": each failed refund not yet retried gets a new refund (new row,
    new idempotency key) of its amount, at most what the session still holds. The failed
    row stays as it was, for the record. Returns how many were started."""
    started = 0
    for failed in Refund.objects.filter(pk__in=refund_ids, status=Refund.Status.FAILED).order_by("pk"):
        with transaction.atomic():
            session = Session.objects.select_for_update().get(pk=failed.session_id)
            if Refund.objects.filter(retry_of=failed).exists():
                continue
            if refund_create(session=session, requested_by=staff, amount=failed.amount, retry_of=failed,
                             reason=f"retry of failed refund {failed.pk}"):
                started += 1
    return started
