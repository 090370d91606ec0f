"""Stripe Connect as a platform uses it for "separate charges and transfers": connected
accounts and their onboarding (account links to a hosted page), transfers from the
platform's charges to those accounts, reversals, each account's balance, and the payouts
Stripe makes from it to the account's bank.

Events of a connected account (account.updated, account.application.deauthorized,
payout.*) carry its id in `account` and go to the Connect endpoint; the platform's own
(transfer.created, transfer.reversed) go to the platform's endpoint, as on Stripe.
Every function runs under the store lock and leaves the store consistent.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import objects
from .errors import StripeApiError, parameter_invalid, parameter_missing, resource_missing
from .events import EventLog
from .ids import new_id
from .store import Store

ACCOUNT_LINK_LIFETIME = 300  # Stripe's account links expire after a few minutes
ACCOUNT_LINK_TYPES = ("account_onboarding", "account_update")
# A link to the hosted onboarding page: what the platform redirects its user to.
ONBOARDING_PATH = "/setup/e/{account}/{token}"
# Stripe's Connect platform application, as deauthorization events name it.
PLATFORM_APPLICATION = ("ca_sandboxPlatform000000000", "MyRoadmap (sandbox platform)")
# What onboarding "with requirements due" leaves for later: the bank account, and an ID.
REQUIREMENTS_LEFT_DUE = ["external_account", "individual.verification.document"]
# Disabled reasons an admin can set from the control API, as Stripe names them.
DISABLED_REASONS = ("rejected.fraud", "rejected.terms_of_service", "rejected.listed", "rejected.other",
                    "platform_paused", "under_review", "requirements.past_due")


@dataclass
class ConnectSettings:
    public_url: str


class Connect:
    def __init__(self, store: Store, events: EventLog, settings: ConnectSettings):
        self.store = store
        self.events = events
        self.settings = settings

    # ---- Accounts -------------------------------------------------------------------

    def account_create(self, params: dict) -> dict:
        if params.get("type") not in (None, "express", "custom", "standard"):
            raise parameter_invalid("type", "Invalid type: must be one of custom, express, or standard")
        if params.get("type") and params.get("controller"):
            raise StripeApiError(400, "You cannot specify `type` and `controller` together.", param="type")
        email = params.get("email")
        if email is not None and "@" not in email:
            raise StripeApiError(400, f"Invalid email address: {email}", code="email_invalid", param="email")
        _check_metadata(params.get("metadata"))
        with self.store.lock:
            account = self.store.put(objects.account(created=self.store.now(), params=params),
                                     balance={}, ever_enabled=False)
            self.store.save()
            return account

    def account(self, account_id: str, param: str = "account") -> dict:
        return self.store.get(account_id, "account", param=param)

    def account_link_create(self, params: dict) -> dict:
        link_type = params.get("type")
        if link_type not in ACCOUNT_LINK_TYPES:
            raise parameter_invalid("type", f"Invalid type: must be one of {', '.join(ACCOUNT_LINK_TYPES)}")
        for url_param in ("refresh_url", "return_url"):
            url = params.get(url_param)
            if not url:
                raise parameter_missing(url_param)
            if not url.startswith(("http://", "https://")):
                raise StripeApiError(400, "Not a valid URL", code="url_invalid", param=url_param)
        with self.store.lock:
            account = self.account(params["account"])
            if self.store.internal[account["id"]].get("deauthorized"):
                raise StripeApiError(400, f"The account {account['id']} has been disconnected from your "
                                          "platform.", code="account_invalid", param="account")
            now = self.store.now()
            token = new_id("", 24)
            url = self.settings.public_url + ONBOARDING_PATH.format(account=account["id"], token=token)
            links = self.store.internal[account["id"]].setdefault("links", {})
            links[token] = {"refresh_url": params["refresh_url"], "return_url": params["return_url"],
                            "expires_at": now + ACCOUNT_LINK_LIFETIME, "used": False}
            self.store.save()
            return objects.account_link(created=now, expires_at=now + ACCOUNT_LINK_LIFETIME, url=url)

    def onboarding_link(self, account_id: str, token: str) -> dict | None:
        """The link behind a hosted onboarding URL, if it exists (used or not)."""
        internal = self.store.internal.get(account_id) or {}
        return (internal.get("links") or {}).get(token)

    def onboarding_link_usable(self, account_id: str, token: str) -> bool:
        link = self.onboarding_link(account_id, token)
        return bool(link) and not link["used"] and link["expires_at"] > self.store.now()

    def onboarding_submit(self, account_id: str, token: str, outcome: str) -> str:
        """The account holder finishes the hosted page; returns where the browser goes next
        (return_url, or refresh_url for a link that expired or was used already)."""
        with self.store.lock:
            link = self.onboarding_link(account_id, token)
            if link is None:
                raise resource_missing("account_link", token)
            if not self.onboarding_link_usable(account_id, token):
                return link["refresh_url"]
            link["used"] = True
            self.account_onboard(account_id, outcome)
            return link["return_url"]

    def account_onboard(self, account_id: str, outcome: str) -> dict:
        """Onboarding submitted: "complete" enables charges, payouts and transfers;
        "requirements_due" leaves the bank account and an ID document due, so nothing is
        enabled yet. Emits account.updated (to the Connect endpoint) when anything changed."""
        if outcome not in ("complete", "requirements_due"):
            raise parameter_invalid("outcome", "outcome must be complete or requirements_due")
        with self.store.lock:
            account = self.account(account_id, param="id")
            if outcome == "complete":
                changes = {
                    "details_submitted": True, "charges_enabled": True, "payouts_enabled": True,
                    "business_type": account["business_type"] or "individual",
                    "capabilities": {name: "active" for name in account["capabilities"]} or {"transfers": "active"},
                    "requirements": objects.account_requirements([], None),
                    "tos_acceptance": {"date": self.store.now(), "ip": "127.0.0.1", "user_agent": "sandbox"},
                }
                if not account["external_accounts"]["data"]:
                    bank = objects.bank_account(account_id=account_id, currency=account["default_currency"],
                                                country=account["country"])
                    changes["external_accounts"] = {**account["external_accounts"], "data": [bank], "total_count": 1}
            else:
                changes = {
                    "details_submitted": True, "charges_enabled": False, "payouts_enabled": False,
                    "business_type": account["business_type"] or "individual",
                    "capabilities": {name: "pending" for name in account["capabilities"]},
                    "requirements": objects.account_requirements(REQUIREMENTS_LEFT_DUE, "requirements.past_due"),
                }
            return self._account_change(account, changes)

    def account_disable(self, account_id: str, reason: str) -> dict:
        """Stripe disables the account (a review, fraud, terms): nothing is enabled any more."""
        if reason not in DISABLED_REASONS:
            raise parameter_invalid("reason", f"reason must be one of {', '.join(DISABLED_REASONS)}")
        with self.store.lock:
            account = self.account(account_id, param="id")
            requirements = {**account["requirements"], "disabled_reason": reason}
            return self._account_change(account, {
                "charges_enabled": False, "payouts_enabled": False, "requirements": requirements,
                "capabilities": {name: "inactive" for name in account["capabilities"]}})

    def account_deauthorize(self, account_id: str) -> dict:
        """The account holder disconnects the platform: account.application.deauthorized."""
        with self.store.lock:
            account = self.account(account_id, param="id")
            internal = self.store.internal[account_id]
            if not internal.get("deauthorized"):
                internal["deauthorized"] = True
                application_id, name = PLATFORM_APPLICATION
                self.events.emit("account.application.deauthorized",
                                 objects.application(application_id=application_id, name=name), account=account_id)
                self.store.save()
            return account

    def _account_change(self, account: dict, changes: dict) -> dict:
        previous = {name: account[name] for name, value in changes.items() if account[name] != value}
        if previous:
            account.update(changes)
            if account["payouts_enabled"]:
                self.store.internal[account["id"]]["ever_enabled"] = True
            self.events.emit("account.updated", account, previous_attributes=previous, account=account["id"])
            self.store.save()
        return account

    # ---- Balances ---------------------------------------------------------------------

    def account_balance(self, account_id: str) -> dict[str, int]:
        """{currency: available minor units} of a connected account."""
        return self.store.internal[account_id].setdefault("balance", {})

    def balance(self, stripe_account: str | None) -> dict:
        """GET /v1/balance: a connected account's (with Stripe-Account), else the platform's:
        what its charges captured less refunds and transfers, plus reversals."""
        with self.store.lock:
            if stripe_account:
                self.account(stripe_account, param="Stripe-Account")
                return objects.balance(dict(self.account_balance(stripe_account)), {})
            available: dict[str, int] = {}
            for charge in self.store.newest_first("charge"):
                if charge["status"] == "succeeded":
                    net = charge["amount_captured"] - charge["amount_refunded"]
                    available[charge["currency"]] = available.get(charge["currency"], 0) + net
            for transfer in self.store.newest_first("transfer"):
                net = transfer["amount"] - transfer["amount_reversed"]
                available[transfer["currency"]] = available.get(transfer["currency"], 0) - net
            return objects.balance(available, {})

    # ---- Transfers and reversals ------------------------------------------------------

    def transfer_create(self, params: dict) -> dict:
        if "amount" not in params:
            raise parameter_missing("amount")
        amount, currency = params["amount"], params["currency"].lower()
        if amount <= 0:
            raise parameter_invalid("amount", "Invalid positive integer", code="parameter_invalid_integer")
        _check_metadata(params.get("metadata"))
        with self.store.lock:
            destination = self.store.find(params["destination"])
            if destination is None or destination["object"] != "account":
                raise StripeApiError(400, f"No such destination: '{params['destination']}'",
                                     code="resource_missing", param="destination")
            if self.store.internal[destination["id"]].get("deauthorized"):
                raise StripeApiError(400, f"The destination account {destination['id']} has been disconnected "
                                          "from your platform.", code="account_invalid", param="destination")
            if destination["capabilities"].get("transfers") != "active":
                raise StripeApiError(
                    400, "Your destination account needs to have at least one of the following capabilities "
                         "enabled: transfers, crypto_transfers, legacy_payments",
                    code="insufficient_capabilities_for_transfer", param="destination")
            source_type = "card"
            if params.get("source_transaction"):
                self._check_source_transaction(params["source_transaction"], amount, currency)
            transfer = self.store.put(objects.transfer(created=self.store.now(), params=params,
                                                       source_type=source_type))
            balance = self.account_balance(destination["id"])
            balance[currency] = balance.get(currency, 0) + amount
            self.events.emit("transfer.created", transfer)
            self.store.save()
            return transfer

    def _check_source_transaction(self, charge_id: str, amount: int, currency: str) -> None:
        """A transfer funded by a charge: the platform's own, succeeded, same currency, and
        no more than what the charge still holds (less refunds and earlier transfers)."""
        charge = self.store.find(charge_id)
        if charge is None or charge["object"] != "charge":
            # A connected account's charge, or none at all: not the platform's to transfer from.
            raise StripeApiError(400, f"No such charge: '{charge_id}'", code="resource_missing",
                                 param="source_transaction")
        if charge["status"] != "succeeded":
            raise StripeApiError(400, f"The source transaction {charge_id} has not succeeded; it cannot fund a "
                                      "transfer.", code="charge_not_succeeded", param="source_transaction")
        if charge["currency"] != currency:
            raise parameter_invalid("currency", f"The currency of source_transaction ({charge['currency']}) "
                                                f"must be the same as the transfer currency ({currency}).")
        transferred = sum(t["amount"] - t["amount_reversed"] for t in self.store.newest_first("transfer")
                          if t["source_transaction"] == charge_id)
        available = charge["amount"] - charge["amount_refunded"] - transferred
        if amount > available:
            raise StripeApiError(
                400, f"The transfer amount ({amount}) exceeds what the source transaction {charge_id} has "
                     f"available to transfer ({max(available, 0)}).", code="amount_too_large", param="amount")

    def transfer(self, transfer_id: str) -> dict:
        return self.store.get(transfer_id, "transfer")

    def reversal_create(self, transfer_id: str, params: dict) -> dict:
        _check_metadata(params.get("metadata"))
        with self.store.lock:
            transfer = self.store.get(transfer_id, "transfer")
            reversible = transfer["amount"] - transfer["amount_reversed"]
            amount = params.get("amount", reversible)
            if amount <= 0:
                raise parameter_invalid("amount", "Invalid positive integer", code="parameter_invalid_integer")
            if reversible == 0:
                raise StripeApiError(400, f"Transfer {transfer_id} has already been reversed.",
                                     code="transfer_already_reversed", param="amount")
            if amount > reversible:
                raise StripeApiError(
                    400, f"Transfer reversal amount ({amount}) is greater than the amount not yet reversed "
                         f"({reversible}).", code="amount_too_large", param="amount")
            balance = self.account_balance(transfer["destination"])
            if balance.get(transfer["currency"], 0) < amount:
                raise StripeApiError(
                    400, f"Insufficient funds in the connected account {transfer['destination']} to reverse "
                         f"{amount}: its available balance is {balance.get(transfer['currency'], 0)}.",
                    code="balance_insufficient", param="amount")
            reversal = self.store.put(objects.transfer_reversal(
                created=self.store.now(), transfer=transfer, amount=amount, metadata=params.get("metadata") or {}))
            balance[transfer["currency"]] -= amount
            previous = {"amount_reversed": transfer["amount_reversed"], "reversed": transfer["reversed"]}
            transfer["amount_reversed"] += amount
            transfer["reversed"] = transfer["amount_reversed"] >= transfer["amount"]
            transfer["reversals"]["data"].insert(0, self.store.snapshot(reversal))
            transfer["reversals"]["total_count"] += 1
            self.events.emit("transfer.reversed", transfer, previous_attributes=previous)
            self.store.save()
            return reversal

    def reversals_of(self, transfer_id: str) -> list[dict]:
        transfer = self.store.get(transfer_id, "transfer", param="id")
        return [self.store.objects[r["id"]] for r in transfer["reversals"]["data"]]

    # ---- Payouts of a connected account to its bank -------------------------------------

    def payout_balance(self, account_id: str, outcome: str) -> dict:
        """Stripe pays the account's available balance out to its bank: payout.created, then
        payout.paid (the balance is gone) or payout.failed (the money is back in it)."""
        if outcome not in ("paid", "failed"):
            raise parameter_invalid("outcome", "outcome must be paid or failed")
        with self.store.lock:
            account = self.account(account_id, param="id")
            balance = self.account_balance(account_id)
            currency = account["default_currency"]
            amount = balance.get(currency, 0)
            if amount <= 0:
                raise StripeApiError(400, f"The account {account_id} has no available balance to pay out.",
                                     code="balance_insufficient", param="amount")
            bank = (account["external_accounts"]["data"] or [{}])[0].get("id")
            payout = self.store.put(objects.payout(created=self.store.now(), amount=amount, currency=currency,
                                                   destination=bank), account=account_id)
            balance[currency] = 0
            self.events.emit("payout.created", payout, account=account_id)
            previous = {"status": payout["status"]}
            if outcome == "paid":
                payout["status"] = "paid"
                payout["reconciliation_status"] = "completed"
                self.events.emit("payout.paid", payout, previous_attributes=previous, account=account_id)
            else:
                payout.update(status="failed", failure_code="account_closed",
                              failure_message="The bank account has been closed.",
                              failure_balance_transaction=new_id("txn_"))
                balance[currency] = amount
                self.events.emit("payout.failed", payout, previous_attributes=previous, account=account_id)
            self.store.save()
            return payout


def _check_metadata(metadata) -> None:
    if not metadata:
        return
    if len(metadata) > 50:
        raise parameter_invalid("metadata", "You can specify up to 50 keys in metadata.")
    for key, value in metadata.items():
        if len(key) > 40:
            raise parameter_invalid(f"metadata[{key}]", "Metadata keys can be at most 40 characters.")
        if len(str(value)) > 500:
            raise parameter_invalid(f"metadata[{key}]", "Metadata values can be at most 500 characters.")
