"""The payments audit: our ledger against Stripe's, for every booking of a period.

Run daily by beat (`payments_audit`) and by the management command of the same name.
It reads Stripe's Checkout Sessions, Charges and Refunds created since the period
began (three paged lists, not one call per booking), then checks, for every Checkout
and Session of the period:

- captured with no session and no refund: Stripe says a Checkout Session of ours is
  paid, and we have no Session for it while its charge is not refunded in full;
- a paid (or refunded) session Stripe doesn't know: no such PaymentIntent, or it has
  not succeeded;
- the refunded amount differs (our `refunded_amount` against the charge's
  `amount_refunded`), or the payment status does (refunded in full, or pending while
  Stripe has the money);
- refund rows: every Stripe refund has our row with its amount and status, every row
  we sent to Stripe is there;
- a cancelled session whose payment was kept without any refund ever asked for.

Nothing here changes a row: the audit reports, a person (or the code it points at) fixes.
"""
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q

from backend import stripe_gateway
from backend.models import Checkout, Refund, Session
from backend.services.notifications import admin_alert
from backend.services.refunds import REFUND_STATUS

logger = logging.getLogger(__name__)

# Stripe's objects are created after our Checkout rows; clocks may disagree a little.
CLOCK_MARGIN = timedelta(minutes=10)



@dataclass(frozen=True)
class Discrepancy:
    kind: str  # captured_without_session | unknown_to_stripe | refunded_amount | payment_status | refund_row | not_refunded
    subject: str  # what to look up: "session 12 (pi_...)", "checkout 7 (cs_...)"
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.subject}: {self.detail}"


@dataclass(frozen=True)
class AuditReport:
    since: datetime
    until: datetime
    checkouts: int
    sessions: int
    refunds: int
    discrepancies: list[Discrepancy]


def payments_audit(*, since: datetime, until: datetime) -> AuditReport:
    """Compare every Checkout, Session and Refund created in [since, until) with Stripe."""
    created_gte = int((since - CLOCK_MARGIN).timestamp())
    checkouts = list(Checkout.objects.filter(created_at__gte=since, created_at__lt=until))
    sessions = list(Session.objects.filter(
        Q(checkout__in=[c.pk for c in checkouts]) | Q(created_at__gte=since, created_at__lt=until)
    ).prefetch_related("refunds"))
    stripe_sessions = {s["id"]: s for s in stripe_gateway.checkout_sessions_list(created_gte=created_gte)}
    charges = {c["payment_intent"]: c for c in stripe_gateway.charges_list(created_gte=created_gte)
               if c.get("payment_intent")}
    refunds_of = defaultdict(list)
    for refund in stripe_gateway.refunds_list(created_gte=created_gte):
        refunds_of[refund.get("payment_intent")].append(refund)

    found: list[Discrepancy] = []
    found += _captured_without_session(checkouts, sessions, stripe_sessions, charges)
    for session in sessions:
        found += _session_against_stripe(session, charges, refunds_of)
    report = AuditReport(since=since, until=until, checkouts=len(checkouts), sessions=len(sessions),
                         refunds=sum(len(s.refunds.all()) for s in sessions), discrepancies=found)
    logger.log(logging.ERROR if found else logging.INFO, "payments audit %s..%s: %d checkout(s), %d session(s), "
               "%d discrepancies", since.isoformat(), until.isoformat(), report.checkouts, report.sessions, len(found))
    return report


def payments_audit_alert(report: AuditReport) -> None:
    """Mail the admins one message listing every discrepancy, once the caller's
    transaction (if any) has committed."""
    if not report.discrepancies:
        return
    lines = [str(d) for d in report.discrepancies]
    message = (f"The payments audit of {report.since:%Y-%m-%d %H:%M} to {report.until:%Y-%m-%d %H:%M} UTC found "
               f"{len(lines)} discrepancies between our records and Stripe's:\n\n" + "\n".join(lines[:500]))
    subject = f"Payments audit: {len(lines)} discrepancies"
    transaction.on_commit(lambda: admin_alert(subject=subject, message=message), robust=True)


def _captured_without_session(checkouts, sessions, stripe_sessions: dict, charges: dict) -> list[Discrepancy]:
    booked = {s.stripe_checkout_session_id for s in sessions} | set(
        Session.objects.filter(stripe_checkout_session_id__in=list(stripe_sessions)).values_list(
            "stripe_checkout_session_id", flat=True))
    ours_by_pk = {str(c.pk): c for c in checkouts}
    ours_by_stripe_id = {c.stripe_checkout_session_id: c for c in checkouts if c.stripe_checkout_session_id}
    found = []
    for stripe_session in stripe_sessions.values():
        metadata_id = (stripe_session.get("metadata") or {}).get("checkout_id")
        checkout = ours_by_stripe_id.get(stripe_session["id"]) or ours_by_pk.get(str(metadata_id))
        if checkout is None or stripe_session.get("payment_status") != "paid" or stripe_session["id"] in booked:
            continue
        charge = charges.get(stripe_session.get("payment_intent")) or _latest_charge(stripe_session.get("payment_intent"))
        captured = (charge or {}).get("amount_captured", stripe_session.get("amount_total") or 0)
        refunded = (charge or {}).get("amount_refunded", 0)
        if refunded < captured:
            found.append(Discrepancy(
                "captured_without_session", f"checkout {checkout.pk} ({stripe_session['id']})",
                f"Stripe captured {captured} {stripe_session.get('currency')} "
                f"(payment {stripe_session.get('payment_intent')}), refunded {refunded}, and we have no session"))
    return found


def _session_against_stripe(session: Session, charges: dict, refunds_of: dict) -> list[Discrepancy]:
    subject = f"session {session.pk} ({session.stripe_payment_id or session.stripe_checkout_session_id})"
    payment_intent = session.stripe_payment_id
    if not payment_intent:
        if session.payment_status == Session.PaymentStatus.PENDING:
            return []
        return [Discrepancy("unknown_to_stripe", subject, f"payment_status {session.payment_status} but no payment id")]
    charge = charges.get(payment_intent) or _latest_charge(payment_intent)
    if session.payment_status == Session.PaymentStatus.PENDING:
        if charge and charge.get("status") == "succeeded":
            return [Discrepancy("payment_status", subject, "pending here, but Stripe's charge succeeded")]
        return []  # still clearing, or failed (the session is then cancelled, nothing was captured)
    if charge is None or charge.get("status") != "succeeded":
        state = "no charge" if charge is None else f"charge {charge['id']} is {charge.get('status')}"
        return [Discrepancy("unknown_to_stripe", subject, f"{session.payment_status} here, but Stripe has {state}")]

    found = []
    stripe_refunded = charge.get("amount_refunded") or 0
    if session.refunded_amount != stripe_refunded:
        found.append(Discrepancy("refunded_amount", subject,
                                 f"refunded {session.refunded_amount} here, {stripe_refunded} at Stripe"))
    fully = stripe_refunded >= session.amount
    if fully != (session.payment_status == Session.PaymentStatus.REFUNDED):
        found.append(Discrepancy("payment_status", subject, f"payment_status {session.payment_status} here, "
                                 f"Stripe refunded {stripe_refunded} of {session.amount}"))

    stripe_refunds = refunds_of.get(payment_intent)
    if stripe_refunds is None and (stripe_refunded or session.refunds.all()):
        stripe_refunds = list(stripe_gateway.refunds_list(payment_intent=payment_intent))  # older than the lists
    stripe_refunds = {r["id"]: r for r in stripe_refunds or []}
    rows = {r.stripe_refund_id: r for r in session.refunds.all() if r.stripe_refund_id}
    for refund_id, refund in stripe_refunds.items():
        row = rows.get(refund_id)
        want = REFUND_STATUS.get(refund.get("status"), Refund.Status.PENDING)
        if row is None:
            found.append(Discrepancy("refund_row", subject, f"Stripe refund {refund_id} ({refund.get('status')}, "
                                     f"{refund.get('amount')}) has no refund row here"))
        elif (row.status, row.amount) != (want, refund.get("amount")):
            found.append(Discrepancy("refund_row", subject, f"refund {row.pk} is {row.status} {row.amount} here, "
                                     f"Stripe's {refund_id} is {refund.get('status')} {refund.get('amount')}"))
    for refund_id in set(rows) - set(stripe_refunds):
        found.append(Discrepancy("refund_row", subject, f"refund {rows[refund_id].pk} names Stripe refund "
                                 f"{refund_id}, which Stripe does not have for this payment"))

    if (session.status == Session.Status.CANCELLED and session.payment_status == Session.PaymentStatus.PAID
            and stripe_refunded < session.amount and not session.refunds.all()):
        found.append(Discrepancy("not_refunded", subject, f"cancelled, {session.amount - stripe_refunded} of "
                                 f"{session.amount} kept and no refund was ever asked for"))
    return found


def _latest_charge(payment_intent: str | None) -> dict | None:
    """For a payment older than the period's lists: one read of its PaymentIntent."""
    if not payment_intent:
        return None
    intent = stripe_gateway.payment_intent_retrieve(payment_intent)
    charge = (intent or {}).get("latest_charge")
    return charge if isinstance(charge, dict) else None
