"""The payments audit: our ledger against Stripe's, for everything that changed in a period.

Run daily by beat (`payments_audit`) and by the management command of the same name.

A booking is audited when it changed in the period on either side, whenever it was made:
on ours, Checkouts and Sessions created, Sessions updated, Refunds created or updated; at
Stripe, Checkout Sessions, Charges, Refunds and Disputes created, and every payment that
Stripe's events of the period name. The events are what catch the late changes: a refund
made in the Dashboard a week after the booking, a refund that fails days after it
succeeded, a debit that clears, a dispute lost; each has an event the day it happens. Stripe
is read in a few paged lists (plus one read per older payment in scope), not one call per
booking.

The report is built by independent checks (AUDIT_CHECKS), each reading what it needs from
one AuditScope (our rows and Stripe's lists for the period, read once, shared) and adding
what it finds to the report. Another comparison (payouts: transfers and reversals) is one
more function in that tuple. Today's checks:

- captured_without_session: Stripe says a Checkout Session of ours is paid, we have no
  Session for it, and its charge is not refunded in full;
- sessions_against_stripe: a paid (or refunded) session whose payment Stripe doesn't have
  or that has not succeeded (`unknown_to_stripe`); the refunded amount or the payment status
  differing (`refunded_amount`, `payment_status`); every Stripe refund with our row, of its
  amount and status, and every row we sent to Stripe there (`refund_row`);
- kept_after_cancel: a cancelled session whose payment was kept with no refund succeeded or
  on its way: none asked, or every one failed or was canceled (`not_refunded`);
- disputes_against_stripe: every dispute Stripe has on our payments flagged here, and the
  amount a lost one took back recorded (it lowers the mentor's earnings) (`dispute`).

A payment's charge is its succeeded one (or the PaymentIntent's latest): a declined card
then a good one leaves a failed charge beside the paid one.

Nothing here changes a row: the audit reports, a person (or the code it points at) fixes.
"""
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property

from django.db import transaction
from django.db.models import Q

from backend import stripe_gateway
from backend.models import Checkout, Refund, Session
from backend.services.installation import installation
from backend.services.money import money_format
from backend.services.notifications import admin_alert
from backend.services.payouts_audit import payouts_audit
from backend.services.refunds import REFUND_STATUS

logger = logging.getLogger(__name__)

# Stripe's objects are created after our Checkout rows; clocks may disagree a little.
CLOCK_MARGIN = timedelta(minutes=10)
# Stripe's events that say a payment changed: completed or cleared, refunded (or a refund
# changed), disputed. Every payment they name in the period is audited, however old.
CHANGE_EVENTS = [
    "charge.dispute.closed", "charge.dispute.created", "charge.dispute.funds_reinstated",
    "charge.dispute.funds_withdrawn", "charge.refund.updated", "charge.refunded", "charge.succeeded",
    "checkout.session.async_payment_failed", "checkout.session.async_payment_succeeded",
    "checkout.session.completed", "refund.created", "refund.failed", "refund.updated",
]
# A refund of ours still on its way (Stripe's charge already counts what succeeded).
REFUND_ON_ITS_WAY = (Refund.Status.REQUESTED, Refund.Status.PENDING)


@dataclass(frozen=True)
class Discrepancy:
    # captured_without_session | unknown_to_stripe | refunded_amount | payment_status | refund_row
    # | not_refunded | dispute
    kind: str
    subject: str  # what to look up: "session 12 (pi_...)", "checkout 7 (cs_...)"
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.subject}: {self.detail}"


@dataclass
class AuditReport:
    since: datetime
    until: datetime
    checkouts: int = 0
    sessions: int = 0
    refunds: int = 0
    discrepancies: list[Discrepancy] = field(default_factory=list)

    def add(self, kind: str, subject: str, detail: str) -> None:
        self.discrepancies.append(Discrepancy(kind, subject, detail))


def _payment_intent_of(stripe_object: dict) -> str | None:
    if stripe_object.get("object") == "payment_intent":
        return stripe_object.get("id")
    payment_intent = stripe_object.get("payment_intent")
    return payment_intent.get("id") if isinstance(payment_intent, dict) else payment_intent


class AuditScope:
    """What the checks compare, read once: the period's rows of ours and Stripe's lists.
    Everything is read on first use, so a check that needs nothing costs nothing."""

    def __init__(self, *, since: datetime, until: datetime):
        self.since, self.until = since, until
        self.created_gte = int((since - CLOCK_MARGIN).timestamp())
        self._charges: dict[str, dict | None] = {}
        self._refunds: dict[str, list[dict]] = {}
        self._disputes: dict[str, list[dict]] = {}

    # ---- Stripe's side -------------------------------------------------------------

    @cached_property
    def events(self) -> list[dict]:
        """Stripe's events of the period that say a payment changed, newest first."""
        return list(stripe_gateway.events_list(types=CHANGE_EVENTS, created_gte=self.created_gte))

    @cached_property
    def changed_payments(self) -> set[str]:
        """Every PaymentIntent that Stripe created or changed in the period."""
        named = {_payment_intent_of(event["data"]["object"]) for event in self.events}
        named |= set(self.charges_listed) | set(self.refunds_listed) | set(self.disputes_by_payment)
        named.discard(None)
        return named

    @cached_property
    def stripe_checkout_sessions(self) -> dict[str, dict]:
        """Checkout Sessions created in the period, as they are now, and those Stripe's
        events of the period show (an older one whose debit cleared), as the newest event has it."""
        found = {s["id"]: s for s in stripe_gateway.checkout_sessions_list(created_gte=self.created_gte)}
        for event in self.events:  # newest first: the first seen is the latest state
            stripe_object = event["data"]["object"]
            if stripe_object.get("object") == "checkout.session":
                found.setdefault(stripe_object["id"], stripe_object)
        return found

    @cached_property
    def charges_listed(self) -> dict[str, dict]:
        """The charge of each payment charged in the period: the succeeded one if any."""
        charges: dict[str, dict] = {}
        for charge in stripe_gateway.charges_list(created_gte=self.created_gte):  # newest first
            payment_intent = charge.get("payment_intent")
            if payment_intent and _charge_rank(charge) > _charge_rank(charges.get(payment_intent)):
                charges[payment_intent] = charge
        return charges

    @cached_property
    def refunds_listed(self) -> dict[str, list[dict]]:
        listed = defaultdict(list)
        for refund in stripe_gateway.refunds_list(created_gte=self.created_gte):
            listed[refund.get("payment_intent")].append(refund)
        return listed

    @cached_property
    def disputes_by_payment(self) -> dict[str, list[dict]]:
        """Disputes created in the period, and those the period's events show (as the newest
        of those events has them: a dispute lost this week on a payment of last month)."""
        found = {d["id"]: d for d in stripe_gateway.disputes_list(created_gte=self.created_gte)}
        for event in self.events:
            stripe_object = event["data"]["object"]
            if stripe_object.get("object") == "dispute":
                found.setdefault(stripe_object["id"], stripe_object)
        by_payment = defaultdict(list)
        for dispute in found.values():
            by_payment[_payment_intent_of(dispute)].append(dispute)
        return by_payment

    def charge_of(self, payment_intent: str | None) -> dict | None:
        """The payment's charge: from the period's list, else its PaymentIntent's latest
        charge (one read, for a payment made before the period)."""
        if not payment_intent:
            return None
        if payment_intent in self.charges_listed:
            return self.charges_listed[payment_intent]
        if payment_intent not in self._charges:
            intent = stripe_gateway.payment_intent_retrieve(payment_intent)
            charge = (intent or {}).get("latest_charge")
            self._charges[payment_intent] = charge if isinstance(charge, dict) else None
        return self._charges[payment_intent]

    def refunds_of(self, session: Session) -> list[dict]:
        """Every Stripe refund of the session's payment. The period's list holds them all
        for a session booked in the period; an older one's are read in full (once)."""
        payment_intent = session.stripe_payment_id
        listed = self.refunds_listed.get(payment_intent, [])
        if session.created_at >= self.since:
            return listed
        charge = self.charge_of(payment_intent) or {}
        if not (listed or charge.get("amount_refunded") or session.refunds.all()):
            return []
        if payment_intent not in self._refunds:
            self._refunds[payment_intent] = list(stripe_gateway.refunds_list(payment_intent=payment_intent))
        return self._refunds[payment_intent]

    def disputes_of(self, session: Session) -> list[dict]:
        payment_intent = session.stripe_payment_id
        if payment_intent in self.disputes_by_payment:
            return self.disputes_by_payment[payment_intent]
        if not session.is_disputed:
            return []
        if payment_intent not in self._disputes:  # flagged here, nothing in the period: read them
            self._disputes[payment_intent] = list(stripe_gateway.disputes_list(payment_intent=payment_intent))
        return self._disputes[payment_intent]

    # ---- Our side --------------------------------------------------------------------

    @cached_property
    def checkouts(self) -> list[Checkout]:
        return list(Checkout.objects.filter(created_at__gte=self.since, created_at__lt=self.until))

    @cached_property
    def sessions(self) -> list[Session]:
        """Every session that changed in the period, here or at Stripe."""
        period = {"gte": self.since, "lt": self.until}
        changed = (Q(checkout__in=[c.pk for c in self.checkouts])
                   | Q(created_at__gte=period["gte"], created_at__lt=period["lt"])
                   | Q(updated_at__gte=period["gte"], updated_at__lt=period["lt"])
                   | Q(refunds__created_at__gte=period["gte"], refunds__created_at__lt=period["lt"])
                   | Q(refunds__updated_at__gte=period["gte"], refunds__updated_at__lt=period["lt"])
                   | Q(stripe_payment_id__in=sorted(self.changed_payments)))
        ids = Session.objects.filter(changed).values_list("pk", flat=True).distinct()
        return list(Session.objects.filter(pk__in=ids).order_by("pk").prefetch_related("refunds"))


def _charge_rank(charge: dict | None) -> int:
    """Which of a payment's charges speaks for it: succeeded, else pending, else any."""
    if charge is None:
        return 0
    return {"succeeded": 3, "pending": 2}.get(charge.get("status"), 1)


def _subject(session: Session) -> str:
    return f"session {session.pk} ({session.stripe_payment_id or session.stripe_checkout_session_id})"


# ---- The checks --------------------------------------------------------------------


def captured_without_session(scope: AuditScope, report: AuditReport) -> None:
    """A Checkout Session of ours that Stripe says is paid, with no Session here and its
    charge not refunded in full."""
    report.checkouts = len(scope.checkouts)
    stripe_sessions = scope.stripe_checkout_sessions
    paid = {cs_id: s for cs_id, s in stripe_sessions.items() if s.get("payment_status") == "paid"}
    booked = set(Session.objects.filter(stripe_checkout_session_id__in=list(paid)).values_list(
        "stripe_checkout_session_id", flat=True))
    unbooked = {cs_id: s for cs_id, s in paid.items() if cs_id not in booked}
    by_stripe_id = {c.stripe_checkout_session_id: c for c in Checkout.objects.filter(
        stripe_checkout_session_id__in=list(unbooked))}
    metadata_ids = {int(s["metadata"]["checkout_id"]) for s in unbooked.values()
                    if str((s.get("metadata") or {}).get("checkout_id") or "").isdigit()
                    and (s.get("metadata") or {}).get("install_id") in (None, "", installation().install_id)}
    by_pk = {c.pk: c for c in Checkout.objects.filter(pk__in=metadata_ids)}
    for cs_id, stripe_session in unbooked.items():
        metadata_id = str((stripe_session.get("metadata") or {}).get("checkout_id") or "")
        checkout = by_stripe_id.get(cs_id) or (by_pk.get(int(metadata_id)) if metadata_id.isdigit() else None)
        if checkout is None:
            continue  # another integration's
        payment_intent = _payment_intent_of(stripe_session)
        charge = scope.charge_of(payment_intent)
        captured = (charge or {}).get("amount_captured", stripe_session.get("amount_total") or 0)
        refunded = (charge or {}).get("amount_refunded", 0)
        currency = stripe_session.get("currency") or checkout.currency
        if refunded < captured:
            report.add("captured_without_session", f"checkout {checkout.pk} ({cs_id})",
                       f"Stripe captured {money_format(captured, currency)} (payment {payment_intent}), "
                       f"refunded {money_format(refunded, currency)}, and we have no session")


def sessions_against_stripe(scope: AuditScope, report: AuditReport) -> None:
    """Each session's payment, refunded amount, payment status and refund rows."""
    report.sessions = len(scope.sessions)
    report.refunds = sum(len(s.refunds.all()) for s in scope.sessions)
    for session in scope.sessions:
        _session_against_stripe(scope, report, session)


def _session_against_stripe(scope: AuditScope, report: AuditReport, session: Session) -> None:
    subject = _subject(session)

    def money(amount) -> str:
        return money_format(amount, session.currency) if isinstance(amount, int) else repr(amount)

    payment_intent = session.stripe_payment_id
    if not payment_intent:
        if session.payment_status != Session.PaymentStatus.PENDING:
            report.add("unknown_to_stripe", subject, f"payment_status {session.payment_status} but no payment id")
        return
    charge = scope.charge_of(payment_intent)
    if session.payment_status == Session.PaymentStatus.PENDING:
        if charge and charge.get("status") == "succeeded":
            report.add("payment_status", subject, "pending here, but Stripe's charge succeeded")
        return  # still clearing, or failed (the session is then cancelled, nothing was captured)
    if charge is None or charge.get("status") != "succeeded":
        state = "no charge" if charge is None else f"charge {charge['id']} is {charge.get('status')}"
        report.add("unknown_to_stripe", subject, f"{session.payment_status} here, but Stripe has {state}")
        return

    stripe_refunded = charge.get("amount_refunded") or 0
    if session.refunded_amount != stripe_refunded:
        report.add("refunded_amount", subject, f"refunded {money(session.refunded_amount)} here, {money(stripe_refunded)} at Stripe")
    fully = stripe_refunded >= session.amount
    if fully != (session.payment_status == Session.PaymentStatus.REFUNDED):
        report.add("payment_status", subject, f"payment_status {session.payment_status} here, "
                                              f"Stripe refunded {money(stripe_refunded)} of {money(session.amount)}")

    stripe_refunds = {r["id"]: r for r in scope.refunds_of(session)}
    rows = {r.stripe_refund_id: r for r in session.refunds.all() if r.stripe_refund_id}
    for refund_id, refund in stripe_refunds.items():
        row = rows.get(refund_id)
        want = REFUND_STATUS.get(refund.get("status"), Refund.Status.PENDING)
        if row is None:
            report.add("refund_row", subject, f"Stripe refund {refund_id} ({refund.get('status')}, "
                                              f"{money(refund.get('amount'))}) has no refund row here")
        elif (row.status, row.amount) != (want, refund.get("amount")):
            report.add("refund_row", subject, f"refund {row.pk} is {row.status} {money(row.amount)} here, "
                                              f"Stripe's {refund_id} is {refund.get('status')} "
                                              f"{money(refund.get('amount'))}")
    for refund_id in set(rows) - set(stripe_refunds):
        report.add("refund_row", subject, f"refund {rows[refund_id].pk} names Stripe refund {refund_id}, which "
                                          "Stripe does not have for this payment")


def kept_after_cancel(scope: AuditScope, report: AuditReport) -> None:
    """A cancelled session is refunded what its cancellation promised: in full, or the tier of
    its cancellation policy a mentee's late cancellation earned (`cancellation_refund_amount`);
    the settling of refunds tops up to it. Money Stripe still holds beyond that, with no refund
    on its way, is reported, whether none was ever asked for or the ones asked failed or were canceled."""
    for session in scope.sessions:
        if session.status != Session.Status.CANCELLED or session.payment_status != Session.PaymentStatus.PAID:
            continue
        charge = scope.charge_of(session.stripe_payment_id) or {}
        if charge.get("status") != "succeeded":
            continue  # reported by sessions_against_stripe
        promised = session.amount if session.cancellation_refund_amount is None else min(
            session.amount, session.cancellation_refund_amount)
        kept = promised - (charge.get("amount_refunded") or 0)
        if kept <= 0 or any(r.status in REFUND_ON_ITS_WAY for r in session.refunds.all()):
            continue
        asked = sorted(f"{r.pk} {r.status}" for r in session.refunds.all())
        why = (f"no refund is on its way (refunds {', '.join(asked)})" if asked
               else "no refund was ever asked for")
        report.add("not_refunded", _subject(session), f"cancelled, {money_format(kept, session.currency)} of "
                                                      f"{money_format(promised, session.currency)} kept: {why}")


def disputes_against_stripe(scope: AuditScope, report: AuditReport) -> None:
    """Every dispute Stripe has on a payment of ours is flagged here, and what a lost one
    took back is recorded (it is taken off the mentor's earnings)."""
    for session in scope.sessions:
        if not session.stripe_payment_id:
            continue
        disputes = scope.disputes_of(session)
        lost = sum(d.get("amount") or 0 for d in disputes if d.get("status") == "lost")
        subject = _subject(session)
        if disputes and not session.is_disputed:
            report.add("dispute", subject, f"Stripe has dispute {disputes[0]['id']} ({disputes[0].get('status')}), "
                                           "not flagged here")
        elif session.is_disputed and not disputes:
            report.add("dispute", subject, "flagged disputed here, but Stripe has no dispute on this payment")
        if session.dispute_lost_amount != lost:
            report.add("dispute", subject, f"{money_format(session.dispute_lost_amount, session.currency)} lost in "
                                           f"disputes here, {money_format(lost, session.currency)} at Stripe")


def payouts_against_stripe(scope: AuditScope, report: AuditReport) -> None:
    """Payouts paid, created or reversed in the window against Stripe's transfers and
    reversals (services/payouts_audit.py): missing, doubled, amounts that differ."""
    for kind, subject, detail in payouts_audit(since=scope.since, until=scope.until):
        report.add(kind, subject, detail)


AuditCheck = Callable[[AuditScope, AuditReport], None]
# The report's checks, in order. Each is independent of the others: add one, remove one.
AUDIT_CHECKS: tuple[AuditCheck, ...] = (
    captured_without_session,
    sessions_against_stripe,
    kept_after_cancel,
    disputes_against_stripe,
    payouts_against_stripe,
)


def payments_audit(*, since: datetime, until: datetime) -> AuditReport:
    """Compare everything that changed in [since, until), here or at Stripe, with Stripe."""
    scope = AuditScope(since=since, until=until)
    report = AuditReport(since=since, until=until)
    for check in AUDIT_CHECKS:
        check(scope, report)
    found = report.discrepancies
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
