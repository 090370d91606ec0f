"""Mentors' Stripe connected accounts: created once, onboarded through Stripe's hosted pages
(account links), and mirrored from what Stripe says (account.updated, reads of the account).

Events of connected accounts arrive on the Connect endpoint with the account's id in
`account`; an id we don't know is not ours (NotOurs: stored and ignored). An account whose
payouts become enabled gets its waiting payouts sent at once (payouts_run for that mentor).
"""
import logging
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from backend import stripe_gateway
from backend.errors import ApplicationError, Conflict, NotOurs, PermissionDenied
from backend.models import Mentor, Payout, PayoutAccount, User
from backend.services.dispatch import admin_alert_on_commit, payouts_run_on_commit
from backend.services.installation import idempotency_key, stripe_metadata

logger = logging.getLogger(__name__)

# Where Stripe's hosted onboarding sends the mentor back (our page), and where a used or
# expired link sends them for a new one.
RETURN_PATH = "/mentor/payouts?onboarding=return"
REFRESH_PATH = "/mentor/payouts/onboarding/refresh"
# Stripe's reasons for disabling an account that onboarding alone does not lift.
RESTRICTING_REASONS = ("rejected.", "platform_paused", "under_review", "listed", "other", "paused.")
# payouts_run reads an account not ready yet whose mentor has payouts waiting at most this
# often: the safety net for a Connect event that never reached us.
REFRESH_EVERY = timedelta(minutes=10)
REFRESH_BATCH = 20


class Status:
    NONE = "none"
    PENDING = "pending"
    ENABLED = "enabled"
    RESTRICTED = "restricted"


def mentor_of(user: User) -> Mentor:
    """The caller's Mentor row; payouts are for mentors only (403 for anyone else)."""
    mentor = Mentor.objects.filter(user=user).first() if user.is_authenticated else None
    if mentor is None:
        raise PermissionDenied("Only mentors have a payout account")
    return mentor


def payout_account_status(account: PayoutAccount | None) -> str:
    """none before the first onboarding link, enabled once Stripe pays the account out,
    restricted when Stripe disabled it (or the mentor disconnected us), pending otherwise."""
    if account is None or not account.stripe_account_id:
        return Status.NONE
    if account.deauthorized_at is not None:
        return Status.RESTRICTED
    if account.payouts_enabled:
        return Status.ENABLED
    if account.payouts_enabled_at is not None or account.disabled_reason.startswith(RESTRICTING_REASONS):
        return Status.RESTRICTED
    return Status.PENDING


def payout_account_get(*, user: User) -> dict:
    """The caller's payout account as the API and the page show it."""
    account = PayoutAccount.objects.filter(mentor=mentor_of(user)).first()
    failure = None
    if account is not None and account.bank_payout_failed_at is not None:
        failure = {"code": account.bank_payout_failure_code, "message": account.bank_payout_failure_message,
                   "failed_at": account.bank_payout_failed_at}
    return {
        "status": payout_account_status(account),
        "charges_enabled": bool(account and account.charges_enabled),
        "payouts_enabled": bool(account and account.payouts_enabled),
        "requirements_due": list(account.requirements_due) if account else [],
        "disabled_reason": (account.disabled_reason or None) if account else None,
        "stripe_account_id": account.stripe_account_id if account else None,
        "bank_payout_failure": failure,
    }


def payout_account_onboarding_link(*, user: User, site_url: str = "") -> str:
    """A fresh link to Stripe's hosted onboarding for the caller's connected account, which is
    created the first time (idempotency key from our row: a retry after a crash gets the
    same account back). Later calls make a new link for the same account. Stripe sends the
    mentor back to our pages at `site_url` (FRONTEND_URL when set, else the request's origin)."""
    mentor = mentor_of(user)
    with transaction.atomic():
        PayoutAccount.objects.get_or_create(mentor=mentor)
        account = PayoutAccount.objects.select_for_update().get(mentor=mentor)
        if account.deauthorized_at is not None:
            raise Conflict("Your Stripe account was disconnected from MyRoadmap; contact support to connect "
                           "another one", code="payout_account_disconnected")
        if not account.stripe_account_id:
            created = stripe_gateway.account_create(
                idempotency_key=idempotency_key("account", account.pk), email=user.email,
                metadata=stripe_metadata(mentor_id=mentor.pk, payout_account_id=account.pk))
            account.stripe_account_id = created["id"]
            _mirror(account, created)
            logger.info("payout account %s: Stripe account %s created for mentor %s", account.pk, created["id"],
                        mentor.pk)
        account.links_created += 1
        account.save()
    base = (settings.FRONTEND_URL or site_url).rstrip("/")
    link = stripe_gateway.account_link_create(
        idempotency_key=idempotency_key("account_link", f"{account.pk}:{account.links_created}"),
        account_id=account.stripe_account_id, refresh_url=base + REFRESH_PATH, return_url=base + RETURN_PATH)
    return link["url"]


def payout_account_sync(*, user: User) -> dict:
    """The mentor is back from onboarding: read the account from Stripe now rather than wait
    for its event, so the page says what Stripe says. Stripe unreachable: our mirror stands."""
    account = PayoutAccount.objects.filter(mentor=mentor_of(user), stripe_account_id__isnull=False).first()
    if account is not None:
        try:
            payout_account_refresh(payout_account_id=account.pk)
        except ApplicationError as exc:
            logger.warning("payout account %s: could not read it from Stripe (%s)", account.pk, exc)
    return payout_account_get(user=user)


def payout_account_refresh(*, payout_account_id: int) -> bool:
    """Mirror one account from Stripe's current object; True when it became ready for transfers."""
    with transaction.atomic():
        account = PayoutAccount.objects.select_for_update().get(pk=payout_account_id)
        current = stripe_gateway.account_retrieve(account.stripe_account_id)
        if current is None:
            logger.error("payout account %s: Stripe has no account %s", account.pk, account.stripe_account_id)
            return False
        return _mirror(account, current, save=True)


def payout_accounts_refresh(*, mentor_id: int | None = None) -> int:
    """The safety net for Connect events that never arrived: accounts not ready whose mentor
    has payouts waiting, read from Stripe at most every REFRESH_EVERY. Returns how many were read."""
    stale = timezone.now() - REFRESH_EVERY
    accounts = PayoutAccount.objects.filter(stripe_account_id__isnull=False, payouts_enabled=False,
                                            deauthorized_at__isnull=True,
                                            mentor__payouts__status=Payout.Status.WAITING).exclude(synced_at__gt=stale)
    if mentor_id is not None:
        accounts = accounts.filter(mentor_id=mentor_id)
    read = 0
    for account_id in accounts.values_list("pk", flat=True).distinct()[:REFRESH_BATCH]:
        try:
            payout_account_refresh(payout_account_id=account_id)
            read += 1
        except Exception:
            logger.exception("payout account %s: refresh failed; next run tries again", account_id)
    return read


def _mirror(account: PayoutAccount, stripe_account: dict, *, save: bool = False) -> bool:
    """Copy what we keep of Stripe's account object; True when it just became ready for transfers
    (its waiting payouts are then sent, after commit)."""
    was_ready = account.ready
    requirements = stripe_account.get("requirements") or {}
    account.charges_enabled = bool(stripe_account.get("charges_enabled"))
    account.payouts_enabled = bool(stripe_account.get("payouts_enabled"))
    account.details_submitted = bool(stripe_account.get("details_submitted"))
    account.requirements_due = list(requirements.get("currently_due") or [])
    account.disabled_reason = (requirements.get("disabled_reason") or "")[:100]
    if account.payouts_enabled and account.payouts_enabled_at is None:
        account.payouts_enabled_at = timezone.now()
    account.synced_at = timezone.now()
    if save:
        account.save()
    became_ready = account.ready and not was_ready
    if became_ready:
        logger.info("payout account %s (%s): payouts enabled; sending what waits", account.pk,
                    account.stripe_account_id)
        payouts_run_on_commit(account.mentor_id)
    return became_ready


def _account_for_event(stripe_account: str | None) -> PayoutAccount:
    """Our row for a Connect event's `account`, locked; an account we don't know is not ours."""
    account = (PayoutAccount.objects.select_for_update().filter(stripe_account_id=stripe_account).first()
               if stripe_account else None)
    if account is None:
        raise NotOurs(f"connected account {stripe_account} is not one of ours")
    return account


def account_updated_apply(*, stripe_account: str | None, account: dict) -> PayoutAccount:
    """account.updated: mirror the account as Stripe has it now (read again, so events that
    arrive out of order can't leave an older state), its payouts sent if it became ready."""
    row = _account_for_event(stripe_account)
    current = stripe_gateway.account_retrieve(row.stripe_account_id) or account
    _mirror(row, current, save=True)
    return row


def account_deauthorized_apply(*, stripe_account: str | None, application: dict) -> PayoutAccount:
    """account.application.deauthorized: the mentor disconnected us; nothing more is sent to
    that account (payouts wait), and the admins hear of it."""
    row = _account_for_event(stripe_account)
    if row.deauthorized_at is None:
        row.deauthorized_at = timezone.now()
        row.payouts_enabled = False
        row.save()
        admin_alert_on_commit(
            subject=f"Mentor {row.mentor_id} disconnected their Stripe account",
            message=(f"The connected account {row.stripe_account_id} of mentor {row.mentor_id} deauthorized the "
                     "platform. Their payouts wait until they connect again (support resets the payout account)."))
    return row


def bank_payout_failed_apply(*, stripe_account: str | None, payout: dict) -> PayoutAccount:
    """payout.failed: Stripe could not pay the mentor's balance to their bank. Shown to the
    mentor (page and API) until a later payout of theirs succeeds."""
    row = _account_for_event(stripe_account)
    failed_at = _unix(payout.get("created"))
    if row.bank_payout_failed_at is None or failed_at >= row.bank_payout_failed_at:
        row.bank_payout_failure_code = (payout.get("failure_code") or "")[:100]
        row.bank_payout_failure_message = (payout.get("failure_message") or "Your bank refused the payout")[:500]
        row.bank_payout_failed_at = failed_at
        row.save()
        logger.warning("payout account %s: Stripe's payout %s to the bank failed (%s)", row.pk, payout.get("id"),
                       row.bank_payout_failure_code)
    return row


def bank_payout_paid_apply(*, stripe_account: str | None, payout: dict) -> PayoutAccount:
    """payout.paid: a payout to the bank arrived; an older failure is no longer news."""
    row = _account_for_event(stripe_account)
    if row.bank_payout_failed_at is not None and _unix(payout.get("created")) >= row.bank_payout_failed_at:
        row.bank_payout_failure_code = row.bank_payout_failure_message = ""
        row.bank_payout_failed_at = None
        row.save()
    return row


def _unix(value) -> datetime:
    return datetime.fromtimestamp(int(value), tz=UTC) if isinstance(value, int) else timezone.now()
