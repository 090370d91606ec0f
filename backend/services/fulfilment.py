"""Turning Stripe's Checkout events into booked sessions (the webhook's main flow, README "How a payment flows").

Every function here runs inside the caller's transaction with the WebhookEvent row
locked, takes Stripe's object as a plain dict, and is safe to run twice: rows are
locked, and each change checks the state it starts from. Follow-up work (stats,
emails, refunds) is queued on commit.
"""
import logging

from backend.errors import PaymentMismatch, PrerequisiteMissing
from backend.models import Checkout, Mentor, Session
from backend.services.dispatch import admin_alert_on_commit, notification_on_commit, stats_recompute_on_commit
from backend.services.installation import installation
from backend.services.mentors import mentor_stats_write
from backend.services.refunds import refund_create
from backend.services.sessions import session_for_payment
from backend.services.slots import slot_conflict

logger = logging.getLogger(__name__)


def _checkout_for(stripe_session: dict) -> Checkout | None:
    """Our Checkout for a Stripe session, locked; by Stripe id, else by our id in metadata."""
    checkouts = Checkout.objects.select_for_update()
    checkout = checkouts.filter(stripe_checkout_session_id=stripe_session["id"]).first()
    metadata = stripe_session.get("metadata") or {}
    if checkout is None and metadata.get("install_id") in (None, "", installation().install_id):
        ours = metadata.get("checkout_id") or stripe_session.get("client_reference_id")
        if ours and str(ours).isdigit():
            checkout = checkouts.filter(pk=int(ours), stripe_checkout_session_id__isnull=True).first()
    return checkout


def _mismatches(checkout: Checkout, stripe_session: dict) -> list[str]:
    problems = []
    if stripe_session.get("amount_total") != checkout.amount:
        problems.append(f"amount_total {stripe_session.get('amount_total')} != {checkout.amount}")
    if (stripe_session.get("currency") or "").lower() != checkout.currency:
        problems.append(f"currency {stripe_session.get('currency')} != {checkout.currency}")
    reference = stripe_session.get("client_reference_id")
    if reference is not None and reference != str(checkout.pk):
        problems.append(f"client_reference_id {reference} != {checkout.pk}")
    metadata_id = (stripe_session.get("metadata") or {}).get("checkout_id")
    if metadata_id is not None and metadata_id != str(checkout.pk):
        problems.append(f"metadata.checkout_id {metadata_id} != {checkout.pk}")
    return problems


def _session_create(checkout: Checkout, stripe_session: dict, *, status: str, amount: int, currency: str) -> Session:
    """The Session of a completed Checkout, and the Checkout marked complete."""
    paid = stripe_session.get("payment_status") == "paid"
    session = Session.objects.create(
        mentor_id=checkout.mentor_id,
        mentee_id=checkout.mentee_id,
        checkout=checkout,
        title=checkout.title,
        description=checkout.description,
        scheduled_at=checkout.scheduled_at,
        duration_minutes=checkout.duration_minutes,
        ends_at=checkout.ends_at,
        amount=amount,
        currency=currency,
        status=status,
        payment_status=Session.PaymentStatus.PAID if paid else Session.PaymentStatus.PENDING,
        stripe_payment_id=stripe_session.get("payment_intent"),
        stripe_checkout_session_id=stripe_session["id"],
    )
    checkout.stripe_checkout_session_id = stripe_session["id"]
    checkout.status = Checkout.Status.COMPLETE
    checkout.save(update_fields=["stripe_checkout_session_id", "status", "updated_at"])
    return session


def _mismatch_refund(checkout: Checkout, stripe_session: dict, problems: list[str]) -> Session:
    """Never booked: the payment is recorded as a cancelled session of what Stripe captured,
    refunded in full, and the admins are told once, after commit."""
    message = (f"Stripe session {stripe_session['id']} disagrees with checkout {checkout.pk}: " + "; ".join(problems)
               + ". Not booked; the payment is refunded in full (a delayed one once it clears).")
    amount, currency = stripe_session.get("amount_total"), (stripe_session.get("currency") or "").lower()
    if not isinstance(amount, int) or amount <= 0 or len(currency) != 3:
        raise PaymentMismatch(message + " (Nothing to refund automatically: check it in the Stripe Dashboard.)")
    session = _session_create(checkout, stripe_session, status=Session.Status.CANCELLED, amount=amount,
                              currency=currency)
    refund_create(session=session, reason="payment did not match the booking")
    notification_on_commit(session.pk, "cancelled")  # the mentee paid and gets no booking: say so
    admin_alert_on_commit(subject=f"Payment mismatch: not booked, refunded (session {session.pk})", message=message)
    logger.error("%s", message)
    return session


def checkout_fulfil(*, stripe_session: dict) -> Session | None:
    """checkout.session.completed: create the Session exactly once.

    Paid: booked, stats and confirmations follow. Unpaid (a delayed method): booked as
    pending, the async events settle it. If the hold expired and someone else booked
    the slot meanwhile, the payment can't be honoured: the session is recorded as
    cancelled and refunded in full, and the mentee is told. If Stripe's amount, currency
    or ids disagree with our Checkout, it is never booked: refunded in full, admins told.
    """
    if stripe_session.get("mode", "payment") != "payment":
        return None
    checkout = _checkout_for(stripe_session)
    if checkout is None:
        logger.warning("checkout session %s is not one of ours; ignored", stripe_session["id"])
        return None
    if checkout.status != Checkout.Status.OPEN:
        # A Session is only ever created with its Checkout marked complete, in one
        # transaction: an open hold has none, so only a settled one is looked up.
        existing = Session.objects.filter(stripe_checkout_session_id=stripe_session["id"]).first()
        if existing:
            return existing
    problems = _mismatches(checkout, stripe_session)
    if problems:
        return _mismatch_refund(checkout, stripe_session, problems)

    Mentor.objects.select_for_update().filter(pk=checkout.mentor_id).first()  # serialise with bookings
    # Someone else's session or live hold: booking's own overlap check, this hold aside.
    slot_taken = slot_conflict(mentor_id=checkout.mentor_id, starts=checkout.scheduled_at, ends=checkout.ends_at,
                               excluding_checkout_id=checkout.pk) is not None
    session = _session_create(checkout, stripe_session, amount=checkout.amount, currency=checkout.currency,
                              status=Session.Status.CANCELLED if slot_taken else Session.Status.SCHEDULED)

    if slot_taken:
        logger.warning("session %s: slot was taken after the hold expired; refunding", session.pk)
        notification_on_commit(session.pk, "cancelled")  # to the mentee only: the mentor never had it
        refund_create(session=session, reason="slot no longer available")
        return session
    if session.payment_status == Session.PaymentStatus.PAID:
        # In this transaction, under the mentor lock taken above: one statement, and one task
        # less per payment than queuing it (the confirmation stays a task: it sends mail).
        mentor_stats_write(mentor_id=session.mentor_id)
        notification_on_commit(session.pk, "booked")
    logger.info("session %s booked from %s (%s)", session.pk, stripe_session["id"], session.payment_status)
    return session


def _session_for_checkout_session(stripe_session: dict) -> Session | None:
    session = Session.objects.select_for_update().filter(stripe_checkout_session_id=stripe_session["id"]).first()
    if session is None:
        if _checkout_for(stripe_session) is None:
            return None
        raise PrerequisiteMissing(f"no session yet for {stripe_session['id']}; its completion is not processed")
    return session


def checkout_async_payment_succeeded(*, stripe_session: dict) -> Session | None:
    """A delayed payment cleared: pending becomes paid, then stats and confirmation."""
    session = _session_for_checkout_session(stripe_session)
    if session is None or session.payment_status != Session.PaymentStatus.PENDING:
        return session
    session.payment_status = Session.PaymentStatus.PAID
    session.stripe_payment_id = session.stripe_payment_id or stripe_session.get("payment_intent")
    session.save(update_fields=["payment_status", "stripe_payment_id", "updated_at"])
    if session.status == Session.Status.CANCELLED:
        # Cancelled while the debit was pending (by a party, or at its start time: the
        # pending-debit policy), so never delivered: the money goes back.
        refund_create(session=session, reason="cancelled before the payment cleared")
        return session
    stats_recompute_on_commit(session.mentor_id)
    if session.status == Session.Status.SCHEDULED:
        notification_on_commit(session.pk, "booked")
    return session


def checkout_async_payment_failed(*, stripe_session: dict) -> Session | None:
    """A delayed payment failed: the session is cancelled, its slot freed, the mentee told."""
    session = _session_for_checkout_session(stripe_session)
    if session is None or session.payment_status != Session.PaymentStatus.PENDING:
        return session
    if session.status == Session.Status.CANCELLED:
        return session
    if session.status == Session.Status.COMPLETED:
        # Delivered before the bank said no: never cancelled behind anyone's back; an
        # admin recovers the money with the mentee.
        admin_alert_on_commit(
            subject=f"Debit failed after session {session.pk} took place",
            message=(f"The delayed payment {session.stripe_payment_id} of session {session.pk} \"{session.title}\" "
                     f"failed after the session was delivered; it stays completed and unpaid."),
        )
        return session
    session.status = Session.Status.CANCELLED
    session.save(update_fields=["status", "updated_at"])
    notification_on_commit(session.pk, "payment_failed")
    return session


def checkout_expire(*, stripe_session: dict) -> Checkout | None:
    """checkout.session.expired: the hold ends and the slot is free again."""
    checkout = _checkout_for(stripe_session)
    if checkout is None or checkout.status != Checkout.Status.OPEN:
        return checkout
    checkout.status = Checkout.Status.EXPIRED
    checkout.save(update_fields=["status", "updated_at"])
    return checkout


def dispute_open(*, dispute: dict) -> Session:
    """charge.dispute.created: flag the session and tell the admins."""
    session = session_for_payment(dispute.get("payment_intent"))
    if not session.is_disputed:
        session.is_disputed = True
        session.save(update_fields=["is_disputed", "updated_at"])
        admin_alert_on_commit(
            subject=f"Dispute opened on session {session.pk}",
            message=(f"Dispute {dispute.get('id')} ({dispute.get('reason')}) for {dispute.get('amount')} "
                     f"{(dispute.get('currency') or '').upper()} on session {session.pk} \"{session.title}\", "
                     f"payment {session.stripe_payment_id}. Respond in the Stripe Dashboard."),
        )
    return session
