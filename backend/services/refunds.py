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
from datetime import timedelta

from django.db import transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from backend import stripe_gateway
from backend.errors import Conflict, InvalidInput, PaymentProviderError
from backend.models import Refund, Session, User
from backend.services.dispatch import (
    admin_alert_on_commit,
    notification_on_commit,
    payout_settle_on_commit,
    refund_execute_on_commit,
    stats_recompute_on_commit,
)
from backend.services.installation import idempotency_key, stripe_metadata
from backend.services.money import money_format
from backend.services.retries import error_is_transient, error_text, retries_exhausted, retry_delay
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
# Stripe's answers when someone refunded part or all of the charge since we read it:
# read the charge again (this many times at most) and ask for what is left.
REFUNDED_MEANWHILE = ("amount_too_large", "charge_already_refunded")
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


def refund_request(*, session: Session, requested_by: User | None, reason: str,
                   amount: int | None = None) -> Refund | None:
    """Cancel `session` and refund `amount` of its payment (default: all that is left). Call
    with the row locked. The amount is kept on the session (`cancellation_refund_amount`), so
    the settling of refund events tops up to it, never beyond."""
    fields = []
    if session.cancellation_refund_amount != amount:
        session.cancellation_refund_amount = amount
        fields.append("cancellation_refund_amount")
    if session.status != Session.Status.CANCELLED:
        session.status = Session.Status.CANCELLED
        fields.append("status")
        stats_recompute_on_commit(session.mentor_id)
        notification_on_commit(session.pk, "cancelled")
    if fields:
        session.save(update_fields=[*fields, "updated_at"])
    if amount is not None:
        amount -= session.refunded_amount
        if amount <= 0:
            return None
    return refund_create(session=session, reason=reason, requested_by=requested_by, amount=amount)


def refund_execute(*, refund_id: int) -> Refund:
    """Ask Stripe for a requested refund: its amount, or less if Stripe's charge holds less
    now (a Dashboard refund our copy has not seen yet), or nothing if it holds nothing.

    The idempotency key carries the amount: a repeat of the same request returns Stripe's
    first refund, and after amount_too_large or charge_already_refunded (a refund made
    meanwhile elsewhere) Stripe's charge is read again and the smaller request is a new
    one; nothing left settles the row as canceled. Either outcome is written on the row.
    A refund Stripe already made for this row (a timeout after it succeeded) is found by
    its metadata and adopted instead of repeated. Each call counts one attempt on the row,
    so retries are bounded per refund however many task chains run it.
    """
    refund = Refund.objects.select_related("session").get(pk=refund_id)
    if refund.stripe_refund_id or refund.status != Refund.Status.REQUESTED:
        return refund
    Refund.objects.filter(pk=refund_id).update(attempts=F("attempts") + 1, next_attempt_at=None,
                                               updated_at=timezone.now())
    payment_intent = refund.session.stripe_payment_id
    stripe_refund = None
    if refund.attempts:  # an earlier attempt may have reached Stripe
        stripe_refund = next((r for r in stripe_gateway.refunds_list(payment_intent=payment_intent)
                              if (r.get("metadata") or {}).get("refund_id") == str(refund.pk)), None)
    asked = refund.amount
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
            if exc.code not in REFUNDED_MEANWHILE or attempt == REREADS - 1:
                raise
            logger.warning("refund %s: Stripe's charge holds less than %d now (%s); reading it again",
                           refund.pk, remaining, exc.code)
    with transaction.atomic():
        # The session's lock, as the refund events' handlers take it: the two never interleave.
        session = Session.objects.select_for_update().get(pk=refund.session_id)
        refund = _refund_apply(session, stripe_refund)
        if refund.amount < asked:
            refund.last_error = (f"Stripe's charge held only {refund.amount} of the {asked} asked (a refund made "
                                 "meanwhile, e.g. in the Dashboard, took the rest): refunded what was left")
            refund.save(update_fields=["last_error", "updated_at"])
            logger.warning("refund %s: %s", refund.pk, refund.last_error)
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
    """Settled without a Stripe refund: the charge holds nothing more (refunded in full
    elsewhere meanwhile, e.g. in the Dashboard, whose events record that refund)."""
    with transaction.atomic():
        refund = Refund.objects.select_for_update().get(pk=refund_id)
        if refund.status == Refund.Status.REQUESTED and not refund.stripe_refund_id:
            refund.status = Refund.Status.CANCELED
            refund.next_attempt_at = None
            refund.last_error = ("Nothing left to refund: Stripe's charge was already refunded in full "
                                 "(a refund made elsewhere, e.g. in the Dashboard); settled without a new one")
            refund.save(update_fields=["status", "next_attempt_at", "last_error", "updated_at"])
    logger.warning("refund %s: nothing left to refund at Stripe; settled", refund_id)
    return refund


def refund_record_failure(*, refund_id: int, error: BaseException) -> float | None:
    """An attempt to send a refund to Stripe failed: seconds until its retry (transient, and
    attempts left: counted on the row, across task chains), noted on the row so that
    followups_sweep leaves it to that retry; or None when it is failed for good, and the
    admins hear of it once."""
    message = error_text(error)
    with transaction.atomic():
        refund = Refund.objects.select_for_update().filter(pk=refund_id, stripe_refund_id__isnull=True,
                                                           status=Refund.Status.REQUESTED).first()
        if refund is None:
            return None  # sent meanwhile by another chain, or already decided
        if error_is_transient(error) and not retries_exhausted(refund.attempts):
            delay = retry_delay(refund.attempts)
            refund.next_attempt_at = timezone.now() + timedelta(seconds=delay)
            refund.last_error = message
            refund.save(update_fields=["next_attempt_at", "last_error", "updated_at"])
            logger.warning("refund %s: attempt %d failed (%s), next try in %.1fs", refund_id, refund.attempts,
                           message, delay)
            return delay
        failed = Refund.objects.filter(pk=refund_id).update(
            status=Refund.Status.FAILED, last_error=message, next_attempt_at=None, updated_at=timezone.now())
        logger.error("refund %s: attempt %d failed (%s), giving up", refund_id, refund.attempts, message)
        if failed:
            refund = Refund.objects.get(pk=refund_id)
            admin_alert_on_commit(
                subject=f"Refund {refund.pk} failed: not sent to Stripe",
                message=(f"Refund {refund.pk} of {money_format(refund.amount, refund.currency)} on session "
                         f"{refund.session_id} could not be sent to Stripe: {message}\n"
                         "The money is still held. Retry it from the admin (Refunds, \"Retry selected\")."),
            )
            notification_on_commit(refund.session_id, "refund_failed")  # the mentee hears what happens next


def _refund_apply(session: Session, stripe_refund: dict) -> Refund:
    """Record one of Stripe's Refund objects on our row (found by our id in its metadata, else
    by Stripe's id, else a new row: a Dashboard refund). Its status only moves forward. Call
    with the session row locked: refund_execute and the refund events' handlers both do."""
    rows = Refund.objects.select_for_update()
    row = None
    ours = (stripe_refund.get("metadata") or {}).get("refund_id")
    if ours and str(ours).isdigit():
        # Ours first, whether or not refund_execute has written Stripe's id on it yet: looked
        # up by id alone, a row that gained that id between two lookups would be missed and
        # a second one inserted for the same Stripe refund.
        mine = rows.filter(pk=int(ours), session=session).first()
        if mine is not None and mine.stripe_refund_id in (None, stripe_refund["id"]):
            row = mine
    if row is None:
        row = rows.filter(stripe_refund_id=stripe_refund["id"]).first()
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
            message=(f"Stripe failed refund {row.stripe_refund_id} of {money_format(row.amount, row.currency)} "
                     f"({row.failure_reason or 'no reason given'}) on session {session.pk} \"{session.title}\", "
                     f"payment {session.stripe_payment_id}. The money is held again. Retry it from the admin "
                     "(Refunds, \"Retry selected\"), or contact the customer."),
        )
        notification_on_commit(session.pk, "refund_failed")  # the mentee hears what happens next
    return row


def _session_settle(session: Session) -> None:
    """Bring the session to Stripe's refunds as our rows now mirror them: refunded amount
    (up or down), payment status, the refund email once Stripe says succeeded, and a
    top-up when a cancelled session still holds money its cancellation promised back."""
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
        if session.status == Session.Status.SCHEDULED:  # refunded in full in the Dashboard before it took place
            session.status = Session.Status.CANCELLED
            session.cancelled_by = Session.CancelledBy.STRIPE
            fields += ["status", "cancelled_by"]
            notification_on_commit(session.pk, "cancelled")
        # A completed session refunded afterwards (a goodwill refund) stays completed: it took place.
    elif total < session.amount and session.payment_status == Session.PaymentStatus.REFUNDED:
        session.payment_status = Session.PaymentStatus.PAID  # a refund failed: the money is back with us
        fields.append("payment_status")
    if fields:
        session.save(update_fields=[*fields, "updated_at"])
        stats_recompute_on_commit(session.mentor_id)
        payout_settle_on_commit(session.pk)  # a paid payout gives the mentor's share of it back
        logger.info("session %s: %d of %d refunded (%s)", session.pk, total, session.amount, session.payment_status)
    # A cancellation refunds what its policy said (all, unless a mentee cancelled late under tiers).
    due = session.amount
    if session.status == Session.Status.CANCELLED and session.cancellation_refund_amount is not None:
        due = min(session.amount, session.cancellation_refund_amount)
    if due and (totals["succeeded"] or 0) >= due:
        # Once per recipient, whatever the repeats. After a failed refund the mentee was told
        # it failed: this one says it went through after all.
        went_wrong = session.refunds.filter(status=Refund.Status.FAILED).exists()
        notification_on_commit(session.pk, "refund_retried" if went_wrong else "refunded")
    unresolved_failure = session.refunds.filter(status=Refund.Status.FAILED, retried_by__isnull=True).exists()
    if session.status == Session.Status.CANCELLED and not unresolved_failure and total < due:
        # Failures wait for an admin.
        refund_create(session=session, reason="the rest of a cancelled session's payment", amount=due - total)


def refund_event_apply(*, refund: dict) -> Session:
    """refund.created / refund.updated / refund.failed: record the refund, settle the session."""
    session = session_for_payment(refund.get("payment_intent"))
    _refund_apply(session, refund)
    _session_settle(session)
    return session


def charge_with_refunds(*, charge: dict) -> dict:
    """charge.refunded's charge with all its refunds listed: as the event lists them, or,
    when Stripe leaves them out (newer API versions) or lists only some, as Stripe has them
    now. Called before the event's row is locked, so the Stripe call holds no lock."""
    listed = charge.get("refunds") or {}
    if "data" in listed and not listed.get("has_more"):
        return charge
    refunds = list(stripe_gateway.refunds_list(payment_intent=charge.get("payment_intent")))
    return {**charge, "refunds": {"object": "list", "data": refunds, "has_more": False}}


def charge_refunded_apply(*, charge: dict) -> Session:
    """charge.refunded: record the charge's refunds (listed in full: charge_with_refunds)."""
    session = session_for_payment(charge.get("payment_intent"))
    for stripe_refund in (charge.get("refunds") or {}).get("data") or []:
        _refund_apply(session, stripe_refund)
    _session_settle(session)
    return session


def session_refundable_amount(session: Session) -> int:
    """What a refund of the session would give back now, by our books (0 when unpaid)."""
    if session.payment_status != Session.PaymentStatus.PAID:
        return 0
    return max(0, session.amount - session.refunded_amount)


def refund_admin_request(*, session_id: int, staff: User, reason: str) -> Refund | None:
    """The admin's "Refund" action: cancel and refund what is left in full, whatever the
    policy, for the reason the admin gave (required: it is told to both parties and kept
    in the admin log). A disputed payment is refused: Stripe refuses to refund it."""
    reason = reason.strip()
    if not reason:
        raise InvalidInput("reason must not be blank", field="reason", user_message="Give a reason for the refund.")
    with transaction.atomic():
        session = Session.objects.select_for_update().get(pk=session_id)
        if session.is_disputed:
            raise Conflict(f"Session {session.pk}: the payment is under dispute; Stripe refuses refunds until the "
                           "dispute is closed", field="session_id", code="payment_disputed")
        if session.status != Session.Status.CANCELLED:
            session.cancelled_by = Session.CancelledBy.ADMIN
            session.cancel_reason = reason[:Session._meta.get_field("cancel_reason").max_length]
            session.save(update_fields=["cancelled_by", "cancel_reason", "updated_at"])
        return refund_request(session=session, requested_by=staff, reason=f"refunded by an admin: {reason}")


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
