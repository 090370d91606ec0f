"""The payouts part of `payments_audit`: our payouts against Stripe's transfers, reversals and
connected accounts, for a period. Every Stripe object we create has its place here:

- transfer_missing: a payout names a transfer Stripe does not have;
- transfer_doubled: Stripe has more than one transfer for one of our payouts (or sessions);
- transfer_unrecorded: a transfer of ours (our install id in its metadata) that no payout names;
- transfer_amount: amount, destination or reversed amount differ from our row;
- reversal_row: a reversal Stripe made that we have no row for, or ours that Stripe lacks or
  that differs in amount;
- payout_owed: what the mentor holds for a session (transferred + debt recovered - taken back)
  is not their share by the money rule;
- payout_overdue (owed but unpaid): payable for over an hour to an account that can take it,
  and not paid;
- account_missing / account_unrecorded: a payout account Stripe lacks, or a connected account
  of ours no row names.

Nothing is changed here; each finding is (kind, subject, detail), the report's Discrepancy.
"""
import logging
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from django.db.models import Q

from backend import stripe_gateway
from backend.models import Payout, PayoutAccount, PayoutReversal
from backend.services.installation import installation
from backend.services.payouts import DUE, OPEN, PAID, payout_owed, payout_state, sessions_refunding

logger = logging.getLogger(__name__)

CLOCK_MARGIN = timedelta(minutes=10)
OVERDUE_AFTER = timedelta(hours=1)


def payouts_audit(*, since: datetime, until: datetime) -> list[tuple[str, str, str]]:
    """Every payout paid, created or reversed in [since, until), and every payout account
    created then, against Stripe."""
    created_gte = int((since - CLOCK_MARGIN).timestamp())
    install_id = installation().install_id
    window = Q(created_at__gte=since, created_at__lt=until) | Q(paid_at__gte=since, paid_at__lt=until) | Q(
        reversals__updated_at__gte=since, reversals__updated_at__lt=until)
    payouts = list(Payout.objects.filter(window).distinct().select_related("session").prefetch_related("reversals"))
    transfers = {t["id"]: t for t in stripe_gateway.transfers_list(created_gte=created_gte)}
    found: list[tuple[str, str, str]] = []
    found += _transfers_doubled_or_unrecorded(transfers.values(), install_id)
    accounts = {a.mentor_id: a for a in PayoutAccount.objects.filter(mentor_id__in={p.mentor_id for p in payouts})}
    in_flight = sessions_refunding([p.session_id for p in payouts])
    for payout in payouts:
        found += _payout_against_stripe(payout, transfers, accounts.get(payout.mentor_id),
                                        refund_in_flight=payout.session_id in in_flight, until=until)
    found += _accounts_against_stripe(since=since, until=until, created_gte=created_gte, install_id=install_id)
    logger.log(logging.ERROR if found else logging.INFO, "payouts audit %s..%s: %d payout(s), %d transfer(s), "
               "%d discrepancies", since.isoformat(), until.isoformat(), len(payouts), len(transfers), len(found))
    return found


def _subject(payout: Payout) -> str:
    return f"payout {payout.pk} (session {payout.session_id}{', ' + payout.stripe_transfer_id if payout.stripe_transfer_id else ''})"


def _transfers_doubled_or_unrecorded(transfers, install_id: str) -> list[tuple[str, str, str]]:
    by_payout = defaultdict(list)
    for transfer in transfers:
        metadata = transfer.get("metadata") or {}
        if metadata.get("install_id") == install_id and str(metadata.get("payout_id") or "").isdigit():
            by_payout[int(metadata["payout_id"])].append(transfer["id"])
    rows = dict(Payout.objects.filter(pk__in=list(by_payout)).values_list("pk", "stripe_transfer_id"))
    found = []
    for payout_id, ids in by_payout.items():
        if len(ids) > 1:
            found.append(("transfer_doubled", f"payout {payout_id}",
                          f"Stripe has {len(ids)} transfers for it: {', '.join(sorted(ids))}"))
        recorded = rows.get(payout_id)
        for transfer_id in ids:
            if transfer_id != recorded and len(ids) == 1:
                found.append(("transfer_unrecorded", f"payout {payout_id}",
                              f"Stripe's transfer {transfer_id} is ours, but the payout names "
                              f"{recorded or 'no transfer'}"))
    return found


def _payout_against_stripe(payout: Payout, transfers: dict, account, *, refund_in_flight: bool,
                           until: datetime) -> list[tuple[str, str, str]]:
    subject = _subject(payout)
    found = []
    if payout.status in OPEN and payout.sending_since is None:
        state = payout_state(payout, payout.session, account, refund_in_flight=refund_in_flight, now=until)
        if state == DUE and payout.payable_at and payout.payable_at < until - OVERDUE_AFTER:
            found.append(("payout_overdue", subject, f"payable since {payout.payable_at:%Y-%m-%d %H:%M} UTC to a "
                          f"ready account, still {payout.status}: owed {payout.amount} but unpaid"))
        return found
    if payout.status not in PAID:
        return found
    reversals = list(payout.reversals.all())
    if payout.stripe_transfer_id:
        transfer = transfers.get(payout.stripe_transfer_id) or stripe_gateway.transfer_retrieve(
            payout.stripe_transfer_id)
        if transfer is None:
            return [("transfer_missing", subject, "Stripe has no such transfer")]
        ours = (payout.amount, payout.destination, payout.amount_reversed)
        theirs = (transfer.get("amount"), transfer.get("destination"), transfer.get("amount_reversed"))
        if ours != theirs:
            found.append(("transfer_amount", subject, f"amount, destination, reversed {ours} here, {theirs} at Stripe"))
        found += _reversals_against_stripe(subject, transfer, reversals)
    elif payout.amount:
        found.append(("transfer_missing", subject, f"paid {payout.amount} with no transfer id"))
    in_flight = any(r.status == PayoutReversal.Status.REQUESTED for r in reversals)
    if not in_flight and not payout.last_error.startswith("Owed more"):
        holds = payout.amount + payout.debt_recovered - sum(r.amount for r in reversals)
        owed = payout_owed(payout, payout.session)
        if holds != owed:
            found.append(("payout_owed", subject, f"the mentor holds {holds} for it, their share is {owed}"))
    return found


def _reversals_against_stripe(subject: str, transfer: dict, reversals: list[PayoutReversal]):
    listed = transfer.get("reversals") or {}
    stripe_reversals = listed.get("data") if "data" in listed and not listed.get("has_more") else list(
        stripe_gateway.transfer_reversals_list(transfer["id"]))
    theirs = {r["id"]: r for r in stripe_reversals}
    ours = {r.stripe_reversal_id: r for r in reversals if r.stripe_reversal_id}
    found = []
    for reversal_id, reversal in theirs.items():
        row = ours.get(reversal_id)
        if row is None:
            found.append(("reversal_row", subject, f"Stripe's reversal {reversal_id} of {reversal.get('amount')} "
                                                   "has no row here"))
        elif (row.amount, row.status) != (reversal.get("amount"), PayoutReversal.Status.SUCCEEDED):
            found.append(("reversal_row", subject, f"reversal {row.pk} is {row.status} {row.amount} here, Stripe's "
                                                   f"{reversal_id} is {reversal.get('amount')}"))
    for reversal_id in set(ours) - set(theirs):
        found.append(("reversal_row", subject, f"reversal {ours[reversal_id].pk} names {reversal_id}, which Stripe "
                                               "does not have for this transfer"))
    return found


def _accounts_against_stripe(*, since, until, created_gte: int, install_id: str) -> list[tuple[str, str, str]]:
    rows = list(PayoutAccount.objects.filter(created_at__gte=since, created_at__lt=until,
                                             stripe_account_id__isnull=False))
    theirs = {a["id"]: a for a in stripe_gateway.accounts_list(created_gte=created_gte)}
    known = set(PayoutAccount.objects.filter(stripe_account_id__in=list(theirs)).values_list(
        "stripe_account_id", flat=True))
    found = []
    for row in rows:
        if row.stripe_account_id not in theirs and stripe_gateway.account_retrieve(row.stripe_account_id) is None:
            found.append(("account_missing", f"payout account {row.pk} (mentor {row.mentor_id})",
                          f"Stripe has no account {row.stripe_account_id}"))
    for account_id, account in theirs.items():
        created = datetime.fromtimestamp(account.get("created") or 0, tz=UTC)
        if (account.get("metadata") or {}).get("install_id") == install_id and account_id not in known \
                and created < until:
            found.append(("account_unrecorded", f"connected account {account_id}",
                          f"ours (mentor {(account.get('metadata') or {}).get('mentor_id')}), but no payout account "
                          "names it"))
    return found
