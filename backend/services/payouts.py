"""Paying the mentors (flow 9, Stripe's "separate charges and transfers").

A session earns its mentor one Payout row and at most one Stripe Transfer. payouts_run
(beat, and `manage.py payouts_run`) sends the transfers that are due:

- payable: the session took place (its current `ends_at` + PAYOUT_DELAY_HOURS has passed,
  read at every run, so a rescheduled session's payout follows it), it is paid and not
  cancelled, no refund of it is in flight, no dispute is open, no admin holds it;
- the mentor's connected account can receive transfers; else it waits (`waiting`) and goes
  as soon as account.updated says payouts are enabled;
- amount: the mentor's share of what the platform kept (paid - refunded - lost to a
  dispute), less any debt of the mentor's (a reversal Stripe refused) it recovers.

The money rule, the only one, used for transfers and reversals alike (mentor_share):
the platform's fee on an amount is floor(amount x PLATFORM_FEE_PERCENT / 100), computed in
integers; the mentor's share is the rest. The percent is frozen on the payout when its
transfer is sent. After money goes back to the mentee (a refund, a lost dispute, a cancel),
the mentor keeps the share of what is left, so the reversal is what was transferred less
that share: the share of the refund, computed on the totals so that several partial
refunds never drift by a cent.

Exactly one transfer per session, whatever runs twice or dies: a payout's amount is
frozen and committed (`sending_since`) before Stripe is called; the call is made under the
payout's row lock (a second runner skips it) with the idempotency key f"transfer:{id}" (a
new key only after Stripe definitely refused the last request); a runner that dies after
Stripe made the transfer leaves the payout frozen, and the next run repeats the same
request (Stripe answers with the same transfer) or, past the key's 24 hours, finds it by
its transfer group and metadata. Reversals work the same way with f"reversal:{id}".
"""
import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet, Sum
from django.utils import timezone

from backend import stripe_gateway
from backend.errors import NotOurs, PaymentProviderError, PrerequisiteMissing
from backend.models import Mentor, Payout, PayoutAccount, PayoutReversal, Refund, Session, User
from backend.services.dispatch import (
    admin_alert_on_commit,
    payout_notification_on_commit,
    payout_settle_on_commit,
    payouts_run_on_commit,
)
from backend.services.installation import idempotency_key, installation, stripe_metadata
from backend.services.payout_accounts import mentor_of, payout_accounts_refresh
from backend.services.sessions import session_for_payment

logger = logging.getLogger(__name__)

Status = Payout.Status
# Not paid yet: payouts_run looks at these every time (a cancelled one comes back if a refund fails).
OPEN = (Status.SCHEDULED, Status.WAITING, Status.HELD, Status.CANCELLED)
PAID = (Status.PAID, Status.PARTIALLY_REVERSED, Status.REVERSED)
DUE = "due"
REFUND_IN_FLIGHT = (Refund.Status.REQUESTED, Refund.Status.PENDING)
# Stripe's refusals that mean "the account can't take transfers yet": the payout waits.
ACCOUNT_NOT_READY = ("insufficient_capabilities_for_transfer", "account_invalid")
# The charge holds less than the frozen amount: a refund landed at Stripe after the amount was
# decided. The next run decides it again from the refund's event; a few times, then an admin looks.
CHARGE_HOLDS_LESS = ("amount_too_large",)
MAX_REFUSALS_BEFORE_FAILED = 3
RUN_BATCH = 200
CREATE_BATCH = 1000
# A requested reversal or an unsent email this old was lost on its way to the broker.
STUCK_AFTER = timedelta(minutes=1)
EMAIL_WINDOW = timedelta(days=3)


# ---- The money rule ---------------------------------------------------------------------


def platform_fee(amount: int, *, fee_percent: int | None = None) -> int:
    """The platform's fee on `amount` minor units: floor(amount x percent / 100), in integers."""
    percent = settings.PLATFORM_FEE_PERCENT if fee_percent is None else fee_percent
    return amount * percent // 100


def mentor_share(amount: int, *, fee_percent: int | None = None) -> int:
    """The mentor's share of `amount` minor units: all of it less the platform's fee."""
    return amount - platform_fee(amount, fee_percent=fee_percent)


def session_kept(session: Session, payout: Payout) -> int:
    """What the platform keeps of the session's payment: paid - refunded - lost to a dispute."""
    if session.payment_status != Session.PaymentStatus.PAID:
        return 0
    return max(0, session.amount - session.refunded_amount - payout.dispute_lost_amount)


def payout_owed(payout: Payout, session: Session) -> int:
    """What the mentor should end up with for this session, by the money rule: nothing for a
    session that did not take place (cancelled), else the share of what the platform kept."""
    if session.status == Session.Status.CANCELLED:
        return 0
    return mentor_share(session_kept(session, payout), fee_percent=payout.fee_percent)


def payable_at(session: Session):
    return session.ends_at + timedelta(hours=settings.PAYOUT_DELAY_HOURS)


# ---- Rows ------------------------------------------------------------------------------------


def payout_for_session(session: Session) -> Payout:
    """The session's payout, created if it has none yet, locked (call inside a transaction)."""
    payout, _ = Payout.objects.get_or_create(session=session, defaults={
        "mentor_id": session.mentor_id, "currency": session.currency, "payable_at": payable_at(session)})
    return Payout.objects.select_for_update().get(pk=payout.pk)


def payouts_create_missing(*, mentor_id: int | None = None) -> int:
    """A payout row for each paid session that has none yet (booked since the last run)."""
    sessions = Session.objects.filter(payment_status=Session.PaymentStatus.PAID, payout__isnull=True)
    if mentor_id is not None:
        sessions = sessions.filter(mentor_id=mentor_id)
    rows = [Payout(session=s, mentor_id=s.mentor_id, currency=s.currency, payable_at=payable_at(s))
            for s in sessions.only("id", "mentor_id", "currency", "ends_at")[:CREATE_BATCH]]
    Payout.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def payout_state(payout: Payout, session: Session, account: PayoutAccount | None, *, refund_in_flight: bool,
                 now) -> str:
    """What an unpaid payout is now: DUE (send it), or the status it waits in."""
    if session.status == Session.Status.CANCELLED or session.payment_status == Session.PaymentStatus.REFUNDED:
        return Status.CANCELLED
    if payout.dispute == Payout.Dispute.OPEN or payout.held_by_admin:
        return Status.HELD
    if session.payment_status != Session.PaymentStatus.PAID:
        return Status.SCHEDULED  # a delayed debit still clearing
    if payout_owed(payout, session) <= 0:
        return Status.CANCELLED  # refunded in full, or lost to a dispute
    if refund_in_flight or payable_at(session) > now:
        return Status.SCHEDULED
    if account is None or not account.ready:
        return Status.WAITING
    return DUE


def sessions_refunding(session_ids) -> set[int]:
    """Which of these sessions have a refund on its way (asked, or pending at Stripe)."""
    return set(Refund.objects.filter(session_id__in=session_ids, status__in=REFUND_IN_FLIGHT)
               .values_list("session_id", flat=True))


def payouts_refresh(*, mentor_id: int | None = None) -> list[int]:
    """Bring every unpaid payout's status, estimate and payable_at up to date (sessions move,
    get refunded, accounts become ready); return the ids to send now: those due, and those
    whose sending started and did not finish (a runner died, Stripe was away)."""
    now = timezone.now()
    frozen = Payout.objects.filter(sending_since__isnull=False, stripe_transfer_id__isnull=True)
    # A cancelled payout is looked at again only when its session changed since (a refund failed).
    unpaid = Payout.objects.filter(status__in=OPEN, sending_since__isnull=True).exclude(
        status=Status.CANCELLED, updated_at__gte=F("session__updated_at"))
    if mentor_id is not None:
        frozen, unpaid = frozen.filter(mentor_id=mentor_id), unpaid.filter(mentor_id=mentor_id)
    due = list(frozen.order_by("sending_since").values_list("pk", flat=True)[:RUN_BATCH])
    payouts = list(unpaid.select_related("session").order_by("payable_at", "pk")[:5000])
    accounts = {a.mentor_id: a for a in PayoutAccount.objects.filter(mentor_id__in={p.mentor_id for p in payouts})}
    in_flight = sessions_refunding([p.session_id for p in payouts])
    for payout in payouts:
        session = payout.session
        state = payout_state(payout, session, accounts.get(payout.mentor_id),
                       refund_in_flight=payout.session_id in in_flight, now=now)
        kept = session_kept(session, payout) if state != Status.CANCELLED else 0
        changes = {"status": Status.SCHEDULED if state == DUE else state, "payable_at": payable_at(session),
                   "amount": payout_owed(payout, session) if state != Status.CANCELLED else 0,
                   "fee": platform_fee(kept)}
        if any(getattr(payout, name) != value for name, value in changes.items()) or state == Status.CANCELLED:
            # Guarded: a payout another runner started sending meanwhile is left to it.
            Payout.objects.filter(pk=payout.pk, status=payout.status, sending_since__isnull=True).update(
                **changes, updated_at=now)
        if state == DUE and len(due) < RUN_BATCH:
            due.append(payout.pk)
    return due


def mentor_debt(*, mentor_id: int, currency: str) -> int:
    """What the mentor owes back: reversals Stripe refused (or that exceeded what a transfer
    held) less what later payouts recovered. Negative never happens; 0 when square."""
    failed = PayoutReversal.objects.filter(payout__mentor_id=mentor_id, payout__currency=currency,
                                           status=PayoutReversal.Status.FAILED).aggregate(s=Sum("amount"))["s"] or 0
    recovered = Payout.objects.filter(mentor_id=mentor_id, currency=currency).filter(
        Q(sending_since__isnull=False) | Q(status__in=PAID)).aggregate(s=Sum("debt_recovered"))["s"] or 0
    return failed - recovered


# ---- Sending a transfer -------------------------------------------------------------------


def payout_send(*, payout_id: int) -> str:
    """Send one payout if it is due: freeze its amount (committed), then the transfer under
    the row's lock. Returns what happened: paid, netted (all of it recovered a debt),
    not_due, busy (another runner has it), refused, or retry (Stripe unreachable)."""
    if not _payout_freeze(payout_id):
        return "not_due"
    try:
        return _payout_transfer(payout_id)
    except PaymentProviderError as exc:
        _payout_refused(payout_id, exc)
        return "refused"


def _payout_freeze(payout_id: int) -> bool:
    """Phase 1: decide the transfer (amount, debt recovered, fee, source charge, destination)
    and commit it before Stripe hears of it. True when the payout is (now or already) frozen."""
    with transaction.atomic():
        payout = Payout.objects.select_for_update(skip_locked=True, of=("self",)).filter(
            pk=payout_id, stripe_transfer_id__isnull=True).first()
        if payout is None:
            return False
        if payout.sending_since is None:
            if payout.status not in (Status.SCHEDULED, Status.WAITING):
                return False
            # Locked: one mentor's debt is netted by one payout at a time.
            account = PayoutAccount.objects.select_for_update().filter(mentor_id=payout.mentor_id).first()
            session = Session.objects.get(pk=payout.session_id)
            state = payout_state(payout, session, account, refund_in_flight=bool(sessions_refunding([session.pk])),
                           now=timezone.now())
            if state != DUE:
                if payout.status != state:
                    payout.status = state
                    payout.save(update_fields=["status", "updated_at"])
                return False
            kept = session_kept(session, payout)
            share = mentor_share(kept)
            recovered = min(max(mentor_debt(mentor_id=payout.mentor_id, currency=payout.currency), 0), share)
            payout.amount, payout.debt_recovered = share - recovered, recovered
            payout.fee, payout.fee_percent = platform_fee(kept), settings.PLATFORM_FEE_PERCENT
            payout.stripe_charge_id = _source_charge(session) if payout.amount else ""
            payout.destination = account.stripe_account_id
            payout.sending_since = timezone.now()
            payout.last_error = ""
        payout.transfer_attempts += 1
        payout.save()
        return True


def _source_charge(session: Session) -> str:
    """The charge that paid the session (the transfer's source_transaction)."""
    intent = stripe_gateway.payment_intent_retrieve(session.stripe_payment_id) if session.stripe_payment_id else None
    charge = (intent or {}).get("latest_charge")
    charge_id = charge.get("id") if isinstance(charge, dict) else charge
    if not charge_id:
        raise PaymentProviderError(f"Stripe has no charge for payment {session.stripe_payment_id}",
                                   code="source_charge_missing")
    return charge_id


def _transfer_key(payout: Payout) -> str:
    # The first request is f"transfer:{id}"; after Stripe definitely refused one, the next is new.
    return idempotency_key("transfer", payout.pk if not payout.refusals else f"{payout.pk}:{payout.refusals}")


def _payout_transfer(payout_id: int) -> str:
    """Phase 2: the transfer, made (or found, if an earlier attempt may have made it) and
    recorded in one transaction that holds the payout's row lock."""
    with transaction.atomic():
        payout = Payout.objects.select_for_update(skip_locked=True, of=("self",)).select_related("session").filter(
            pk=payout_id, sending_since__isnull=False, stripe_transfer_id__isnull=True).first()
        if payout is None:
            return "busy"
        if payout.amount == 0:
            _payout_recorded(payout, None)
            return "netted"
        transfer = _transfer_made_before(payout) if payout.transfer_attempts > 1 else None
        if transfer is None:
            session = payout.session
            transfer = stripe_gateway.transfer_create(
                idempotency_key=_transfer_key(payout), amount=payout.amount, currency=payout.currency,
                destination=payout.destination, source_transaction=payout.stripe_charge_id,
                transfer_group=f"session_{session.pk}", description=f"MyRoadmap session {session.pk}",
                metadata=stripe_metadata(payout_id=payout.pk, session_id=session.pk, mentor_id=payout.mentor_id))
        _payout_recorded(payout, transfer)
    return "paid"


def _transfer_made_before(payout: Payout) -> dict | None:
    """A transfer an earlier attempt made for this payout (its answer never reached us), found by
    the session's transfer group and our metadata: adopted instead of asked for again."""
    install_id = installation().install_id
    for transfer in stripe_gateway.transfers_list(transfer_group=f"session_{payout.session_id}"):
        metadata = transfer.get("metadata") or {}
        if metadata.get("install_id") == install_id and metadata.get("payout_id") == str(payout.pk):
            logger.warning("payout %s: transfer %s was made by an earlier attempt; recorded", payout.pk, transfer["id"])
            return transfer
    return None


def _payout_recorded(payout: Payout, transfer: dict | None) -> None:
    payout.stripe_transfer_id = transfer["id"] if transfer else None
    payout.status = Status.PAID
    payout.paid_at = timezone.now()
    payout.sending_since = None
    payout.save()
    if transfer:
        payout_notification_on_commit("payout_sent", payout.pk)
    # A refund that landed while the transfer was on its way is reversed now, not in a minute.
    payout_settle_on_commit(payout.session_id)
    logger.info("payout %s: %s %s to %s (transfer %s, %s of debt recovered)", payout.pk, payout.amount,
                payout.currency, payout.destination, payout.stripe_transfer_id, payout.debt_recovered)


def _payout_refused(payout_id: int, error: PaymentProviderError) -> None:
    """Stripe definitely refused the transfer (nothing was made): unfreeze it. An account not
    ready yet makes it wait; anything else fails it for an admin (alerted once)."""
    with transaction.atomic():
        payout = Payout.objects.select_for_update().filter(
            pk=payout_id, sending_since__isnull=False, stripe_transfer_id__isnull=True).first()
        if payout is None:
            return
        waits = error.code in ACCOUNT_NOT_READY
        again = error.code in CHARGE_HOLDS_LESS and payout.refusals + 1 < MAX_REFUSALS_BEFORE_FAILED
        payout.sending_since = None
        payout.debt_recovered = 0
        payout.refusals += 1
        payout.status = Status.WAITING if waits else Status.SCHEDULED if again else Status.FAILED
        payout.last_error = f"Stripe refused the transfer ({error.code}): {error.message}"[:4000]
        payout.save()
        if waits:
            # Our mirror said ready; Stripe says not: read the account again at the next run.
            PayoutAccount.objects.filter(mentor_id=payout.mentor_id).update(synced_at=None)
        elif not again:
            admin_alert_on_commit(
                subject=f"Payout {payout.pk} to mentor {payout.mentor_id} failed",
                message=(f"Stripe refused the transfer of payout {payout.pk} (session {payout.session_id}): "
                         f"{payout.last_error}\nNothing was sent. Fix the cause, then retry it from the admin "
                         "(Payouts, \"Retry selected\")."))
    logger.warning("payout %s: %s", payout_id, payout.last_error)


def _payout_error(payout_id: int, error: BaseException) -> None:
    """Stripe or the database was away: the payout stays frozen, the next run sends it again."""
    Payout.objects.filter(pk=payout_id).update(last_error=f"{error.__class__.__name__}: {error}"[:4000],
                                               updated_at=timezone.now())


# ---- Reversals --------------------------------------------------------------------------------


def payout_settle(*, session_id: int) -> list[int]:
    """After money went back to the mentee (a refund, a lost dispute, a cancellation) of a paid
    payout: take the mentor's share of it back with a reversal, and send it. What Stripe refuses
    (the mentor's balance is short) becomes a debt the next payouts net off. (An unpaid payout
    is sent for what is owed when it is sent.) Returns the reversals made."""
    with transaction.atomic():
        payout = Payout.objects.select_for_update(of=("self",)).select_related("session").filter(
            session_id=session_id).first()
        if payout is None or payout.status not in PAID:
            return []
        created = _reversals_due(payout)
        Payout.objects.filter(pk=payout.pk).update(updated_at=timezone.now())  # looked at since the session changed
    for reversal_id in created:
        payout_reversal_execute(reversal_id=reversal_id)
    return created


def _reversals_due(payout: Payout) -> list[int]:
    session = payout.session
    owed = payout_owed(payout, session)
    share_paid = payout.amount + payout.debt_recovered
    reversals = list(payout.reversals.all())
    taken_back = sum(r.amount for r in reversals)
    due_back = share_paid - taken_back - owed
    if due_back < 0:
        # More is owed than was paid (a refund failed after its reversal, a Dashboard reversal):
        # one transfer per session, so a person settles it.
        if not payout.last_error.startswith("Owed more"):
            payout.last_error = f"Owed more: the ledger says {owed}, the mentor has {share_paid - taken_back}"
            payout.save(update_fields=["last_error", "updated_at"])
            admin_alert_on_commit(
                subject=f"Mentor {payout.mentor_id} is owed {-due_back} more on session {session.pk}",
                message=(f"Payout {payout.pk} paid {share_paid - taken_back} {payout.currency.upper()} net, but the "
                         f"mentor's share of session {session.pk} is now {owed} (a refund failed after its reversal, "
                         "or a transfer was reversed in the Dashboard). Pay the difference by hand."))
        return []
    if due_back == 0:
        return []
    reversible = payout.amount - sum(r.amount for r in reversals if r.status != PayoutReversal.Status.FAILED)
    reason = _reversal_reason(payout, session)
    created = []
    to_reverse = min(due_back, max(reversible, 0))
    if to_reverse:
        created.append(PayoutReversal.objects.create(payout=payout, amount=to_reverse, reason=reason).pk)
    if due_back > to_reverse:
        # The transfer holds less than is due back (earlier debts were netted from it): the rest is a debt.
        PayoutReversal.objects.create(payout=payout, amount=due_back - to_reverse, reason=reason,
                                      status=PayoutReversal.Status.FAILED, failure_code="exceeds_transfer",
                                      last_error="More is due back than the transfer still holds")
        _debt_alert(payout, due_back - to_reverse, "more is due back than the transfer still holds")
    logger.info("payout %s: %d due back (%s)", payout.pk, due_back, reason)
    return created


def _reversal_reason(payout: Payout, session: Session) -> str:
    if session.status == Session.Status.CANCELLED:
        return "the session was cancelled"
    if payout.dispute == Payout.Dispute.LOST:
        return "the mentee's bank decided a dispute against the payment"
    return f"the mentee was refunded {session.refunded_amount} of {session.amount}"


def _debt_alert(payout: Payout, amount: int, why: str) -> None:
    admin_alert_on_commit(
        subject=f"Mentor {payout.mentor_id} owes {amount} {payout.currency.upper()} back",
        message=(f"{amount} {payout.currency.upper()} of payout {payout.pk} (session {payout.session_id}) could not be "
                 f"taken back: {why}. It is recorded as the mentor's debt and netted off their next payouts."))


def payout_reversal_execute(*, reversal_id: int) -> PayoutReversal | None:
    """Send one requested reversal to Stripe (key f"reversal:{id}"), or find the one an earlier
    attempt made. Stripe refusing it (balance_insufficient) records a debt; unreachable: raises,
    and the task (or payouts_run) tries again."""
    PayoutReversal.objects.filter(pk=reversal_id, status=PayoutReversal.Status.REQUESTED).update(
        attempts=F("attempts") + 1, updated_at=timezone.now())
    payout_id = PayoutReversal.objects.filter(pk=reversal_id).values_list("payout_id", flat=True).first()
    try:
        with transaction.atomic():
            # The payout first, as transfer.reversed does: the two never wait on each other's rows.
            payout = Payout.objects.select_for_update().get(pk=payout_id)
            reversal = PayoutReversal.objects.select_for_update(skip_locked=True).filter(
                pk=reversal_id, status=PayoutReversal.Status.REQUESTED).first()
            if reversal is None:
                return None
            reversal.payout = payout
            made = _reversal_made_before(reversal) if reversal.attempts > 1 else None
            if made is None:
                made = stripe_gateway.transfer_reversal_create(
                    idempotency_key=idempotency_key("reversal", reversal.pk), transfer_id=payout.stripe_transfer_id,
                    amount=reversal.amount, metadata=stripe_metadata(reversal_id=reversal.pk, payout_id=payout.pk))
            _reversal_recorded(reversal, made)
            return reversal
    except PaymentProviderError as exc:
        _reversal_refused(reversal_id, exc)
        return None


def _reversal_made_before(reversal: PayoutReversal) -> dict | None:
    for made in stripe_gateway.transfer_reversals_list(reversal.payout.stripe_transfer_id):
        if (made.get("metadata") or {}).get("reversal_id") == str(reversal.pk):
            return made
    return None


def _reversal_recorded(reversal: PayoutReversal, made: dict) -> None:
    reversal.stripe_reversal_id = made["id"]
    reversal.status = PayoutReversal.Status.SUCCEEDED
    reversal.last_error = ""
    reversal.save()
    _payout_reversed_total(reversal.payout)
    payout_notification_on_commit("payout_reversed", reversal.pk)
    logger.info("payout %s: reversal %s of %d made (%s)", reversal.payout_id, reversal.pk, reversal.amount, made["id"])


def _payout_reversed_total(payout: Payout) -> None:
    """amount_reversed and the status from the reversals Stripe made."""
    reversed_total = payout.reversals.filter(status=PayoutReversal.Status.SUCCEEDED).aggregate(
        s=Sum("amount"))["s"] or 0
    payout.amount_reversed = reversed_total
    if reversed_total:
        payout.status = Status.REVERSED if reversed_total >= payout.amount else Status.PARTIALLY_REVERSED
    payout.save(update_fields=["amount_reversed", "status", "updated_at"])


def _reversal_refused(reversal_id: int, error: PaymentProviderError) -> None:
    with transaction.atomic():
        reversal = PayoutReversal.objects.select_for_update().select_related("payout").filter(
            pk=reversal_id, status=PayoutReversal.Status.REQUESTED).first()
        if reversal is None:
            return
        reversal.status = PayoutReversal.Status.FAILED
        reversal.failure_code = (error.code or "refused")[:100]
        reversal.last_error = f"Stripe refused the reversal ({error.code}): {error.message}"[:4000]
        reversal.save()
        _debt_alert(reversal.payout, reversal.amount,
                    "the mentor's Stripe balance is too short" if error.code == "balance_insufficient"
                    else reversal.last_error)
    logger.warning("reversal %s: %s; recorded as the mentor's debt", reversal_id, error.code)


def transfer_reversed_apply(*, transfer: dict) -> Payout | None:
    """transfer.reversed: reversals of one of our transfers, ours (already recorded, or whose
    answer we never got) or made in the Stripe Dashboard, recorded once each."""
    payout = Payout.objects.select_for_update().filter(stripe_transfer_id=transfer.get("id")).first()
    if payout is None:
        metadata = transfer.get("metadata") or {}
        if metadata.get("install_id") != installation().install_id:
            raise NotOurs(f"transfer {transfer.get('id')} is not one of ours")
        raise PrerequisiteMissing(f"transfer {transfer.get('id')} is not recorded on its payout yet")
    listed = transfer.get("reversals") or {}
    made = listed.get("data") if "data" in listed and not listed.get("has_more") else list(
        stripe_gateway.transfer_reversals_list(transfer["id"]))
    # Read under the payout's lock, which our own reversals hold until they are recorded.
    known = set(payout.reversals.exclude(stripe_reversal_id=None).values_list("stripe_reversal_id", flat=True))
    for stripe_reversal in made:
        if stripe_reversal["id"] in known:
            continue
        ours = str((stripe_reversal.get("metadata") or {}).get("reversal_id") or "")
        row = payout.reversals.filter(pk=int(ours)).first() if ours.isdigit() else None
        if row is not None and row.status != PayoutReversal.Status.REQUESTED:
            logger.warning("reversal %s: Stripe's %s names it but it is %s; left as it is", row.pk,
                           stripe_reversal["id"], row.status)
            continue
        if row is None:
            row = PayoutReversal(payout=payout, amount=stripe_reversal["amount"],
                                 reason="reversed in the Stripe Dashboard")
        _reversal_recorded(row, stripe_reversal)
    return payout


# ---- Disputes ---------------------------------------------------------------------------------


def payout_dispute_opened(*, session: Session) -> None:
    """charge.dispute.created: the session's payout is held until the dispute is decided."""
    payout = payout_for_session(session)
    if payout.dispute != Payout.Dispute.NONE:
        return
    payout.dispute = Payout.Dispute.OPEN
    if payout.status in OPEN:
        payout.status = Status.HELD
    payout.save(update_fields=["dispute", "status", "updated_at"])


def dispute_closed_apply(*, dispute: dict) -> Session:
    """charge.dispute.closed: won, the payout goes on; lost, the disputed amount is gone, so the
    mentor's share of it is not paid (or is reversed if it was). Later closings change nothing."""
    session = session_for_payment(dispute.get("payment_intent"))
    outcome = dispute.get("status")
    if outcome not in ("won", "lost", "warning_closed"):
        return session
    payout = payout_for_session(session)
    if payout.dispute in (Payout.Dispute.WON, Payout.Dispute.LOST):
        return session
    payout.dispute = Payout.Dispute.LOST if outcome == "lost" else Payout.Dispute.WON
    if outcome == "lost":
        payout.dispute_lost_amount = int(dispute.get("amount") or 0)
    if payout.status == Status.HELD and not payout.held_by_admin:
        payout.status = Status.SCHEDULED
    payout.save()
    if payout.status in PAID:
        payout_settle_on_commit(session.pk)
    else:
        payouts_run_on_commit(payout.mentor_id)
    admin_alert_on_commit(subject=f"Dispute {outcome} on session {session.pk}",
                          message=(f"Dispute {dispute.get('id')} on session {session.pk} closed: {outcome}. "
                                   + ("The mentor's share of it is taken back." if outcome == "lost"
                                      else "The payout goes ahead.")))
    return session


# ---- payouts_run --------------------------------------------------------------------------------


def payouts_run(*, mentor_id: int | None = None, budget_seconds: float | None = None) -> dict[str, int]:
    """What beat runs every minute (and `manage.py payouts_run`): payout rows for new paid
    sessions, accounts read again where events may have been missed, every unpaid payout's
    status brought up to date, the due ones sent, and what went missing put right (reversals
    due, requested reversals, emails). Safe to run twice at once: rows are claimed with
    SKIP LOCKED and Stripe requests carry keys from our rows."""
    started = time.monotonic()
    budget = budget_seconds if budget_seconds is not None else settings.CELERY_TASK_SOFT_TIME_LIMIT / 2
    counts = {"created": payouts_create_missing(mentor_id=mentor_id), "accounts_read": 0, "paid": 0, "netted": 0,
              "refused": 0, "errors": 0, "reversals": 0, "left_for_next_run": 0}
    counts["accounts_read"] = payout_accounts_refresh(mentor_id=mentor_id)
    due = payouts_refresh(mentor_id=mentor_id)
    for position, payout_id in enumerate(due):
        if time.monotonic() - started > budget:
            counts["left_for_next_run"] = len(due) - position
            break
        try:
            outcome = payout_send(payout_id=payout_id)
        except Exception as exc:
            logger.warning("payout %s: not sent this run (%s: %s)", payout_id, exc.__class__.__name__, exc)
            _payout_error(payout_id, exc)
            counts["errors"] += 1
            continue
        if outcome in counts:
            counts[outcome] += 1
    if time.monotonic() - started <= budget:
        counts["reversals"] = _reversals_catch_up(mentor_id=mentor_id)
        _emails_catch_up(mentor_id=mentor_id)
    if any(counts[k] for k in ("paid", "netted", "refused", "errors", "reversals", "left_for_next_run")):
        logger.info("payouts_run: %s", counts)
    return counts


def _reversals_catch_up(*, mentor_id: int | None) -> int:
    """Paid payouts whose session changed since they were last looked at (a refund whose
    settle message was lost) and reversals left requested."""
    paid = Payout.objects.filter(status__in=PAID).filter(
        Q(session__updated_at__gt=F("updated_at")) | Q(dispute=Payout.Dispute.LOST))
    stuck = PayoutReversal.objects.filter(status=PayoutReversal.Status.REQUESTED,
                                          updated_at__lt=timezone.now() - STUCK_AFTER)
    if mentor_id is not None:
        paid, stuck = paid.filter(mentor_id=mentor_id), stuck.filter(payout__mentor_id=mentor_id)
    made = 0
    for session_id in paid.values_list("session_id", flat=True)[:RUN_BATCH]:
        try:
            made += len(payout_settle(session_id=session_id))
        except Exception:
            logger.exception("payouts: settling session %s failed; next run tries again", session_id)
    for reversal_id in stuck.values_list("pk", flat=True)[:RUN_BATCH]:
        try:
            made += payout_reversal_execute(reversal_id=reversal_id) is not None
        except Exception:
            logger.exception("payouts: reversal %s failed; next run tries again", reversal_id)
    return made


def _emails_catch_up(*, mentor_id: int | None) -> None:
    settled, recent = timezone.now() - STUCK_AFTER, timezone.now() - EMAIL_WINDOW
    sent = Payout.objects.filter(status__in=PAID, stripe_transfer_id__isnull=False, email_sent_at__isnull=True,
                                 paid_at__lt=settled, paid_at__gte=recent)
    reversed_ = PayoutReversal.objects.filter(status=PayoutReversal.Status.SUCCEEDED, email_sent_at__isnull=True,
                                              updated_at__lt=settled, updated_at__gte=recent)
    if mentor_id is not None:
        sent, reversed_ = sent.filter(mentor_id=mentor_id), reversed_.filter(payout__mentor_id=mentor_id)
    for payout_id in sent.values_list("pk", flat=True)[:RUN_BATCH]:
        payout_notification_on_commit("payout_sent", payout_id)
    for reversal_id in reversed_.values_list("pk", flat=True)[:RUN_BATCH]:
        payout_notification_on_commit("payout_reversed", reversal_id)


# ---- What mentors and admins see and do -------------------------------------------------------------


def payouts_for_mentor(*, user: User) -> QuerySet[Payout]:
    """The caller's payouts, newest first (mentors only)."""
    return Payout.objects.filter(mentor=mentor_of(user)).select_related("session").order_by("-created_at", "-id")


def mentor_payout_summary(*, mentor: Mentor) -> dict[str, int | str]:
    """The mentor's money in minor units of their currency:
    earned = paid_out + waiting - debt: their share of every session that counts;
    paid_out = transferred less reversed; waiting = not paid yet (scheduled, waiting, held);
    reversed = taken back by reversals; debt = reversals Stripe refused, not yet netted off."""
    paid = Payout.objects.filter(mentor=mentor, status__in=PAID).aggregate(amount=Sum("amount"),
                                                                            reversed=Sum("amount_reversed"))
    waiting = Payout.objects.filter(mentor=mentor, status__in=(Status.SCHEDULED, Status.WAITING, Status.HELD)
                                    ).aggregate(s=Sum("amount"))["s"] or 0
    paid_out = (paid["amount"] or 0) - (paid["reversed"] or 0)
    debt = max(0, mentor_debt(mentor_id=mentor.pk, currency=mentor.currency))
    return {"earned": paid_out + waiting - debt, "paid_out": paid_out, "waiting": waiting,
            "reversed": paid["reversed"] or 0, "debt": debt, "currency": mentor.currency}


def payouts_hold(*, payout_ids: list[int]) -> list[Payout]:
    """Admin "Hold": unpaid payouts not being sent stay unpaid until released."""
    held = []
    for payout_id in payout_ids:
        with transaction.atomic():
            payout = Payout.objects.select_for_update().filter(pk=payout_id, status__in=(*OPEN, Status.FAILED),
                                                               sending_since__isnull=True).first()
            if payout is None or payout.held_by_admin:
                continue
            payout.held_by_admin = True
            payout.status = Status.HELD
            payout.save(update_fields=["held_by_admin", "status", "updated_at"])
            held.append(payout)
    return held


def payouts_release(*, payout_ids: list[int]) -> list[Payout]:
    """Admin "Release": held payouts go back to the schedule (a dispute still open keeps holding)."""
    released = []
    for payout_id in payout_ids:
        with transaction.atomic():
            payout = Payout.objects.select_for_update().filter(pk=payout_id, held_by_admin=True).first()
            if payout is None:
                continue
            payout.held_by_admin = False
            if payout.status == Status.HELD and payout.dispute != Payout.Dispute.OPEN:
                payout.status = Status.SCHEDULED
            payout.save(update_fields=["held_by_admin", "status", "updated_at"])
            payouts_run_on_commit(payout.mentor_id)
            released.append(payout)
    return released


def payouts_retry(*, payout_ids: list[int]) -> list[Payout]:
    """Admin "Retry": failed payouts go back to the schedule (a new request to Stripe)."""
    retried = []
    for payout_id in payout_ids:
        with transaction.atomic():
            payout = Payout.objects.select_for_update().filter(pk=payout_id, status=Status.FAILED).first()
            if payout is None:
                continue
            payout.status = Status.SCHEDULED
            payout.save(update_fields=["status", "updated_at"])
            payouts_run_on_commit(payout.mentor_id)
            retried.append(payout)
    return retried


def mentor_payout_balances(*, mentor_id: int, currency: str) -> dict[str, int]:
    """For the admin: what the platform still owes the mentor, and what the mentor owes back."""
    owed = Payout.objects.filter(mentor_id=mentor_id, status__in=(Status.SCHEDULED, Status.WAITING, Status.HELD,
                                                                  Status.FAILED)).aggregate(s=Sum("amount"))["s"] or 0
    return {"owed": owed, "debt": max(0, mentor_debt(mentor_id=mentor_id, currency=currency))}
