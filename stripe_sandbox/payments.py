"""What happens to Checkout Sessions, PaymentIntents, Charges, Refunds and Disputes,
and the events each change emits, in the order Stripe emits them.

Every function runs under the store lock and leaves the store consistent.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from . import objects
from .cards import AUTHENTICATION_FAILED_MESSAGE, TestCard, card_for_number
from .errors import StripeApiError, parameter_invalid, parameter_missing, resource_missing
from .events import EventLog
from .ids import new_id
from .params import require_one_of
from .store import Store

MIN_EXPIRY_SECONDS = 30 * 60
MAX_EXPIRY_SECONDS = 24 * 60 * 60
# The caller computes expires_at a moment before the request reaches us.
EXPIRY_SLACK_SECONDS = 60
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")


@dataclass
class PaymentSettings:
    public_url: str
    bank_debit_delay: int = 60  # sandbox seconds before a bank debit succeeds or fails
    refund_failure_delay: int = 30  # sandbox seconds before a 5126-card refund fails


class Payments:
    def __init__(self, store: Store, events: EventLog, settings: PaymentSettings):
        self.store = store
        self.events = events
        self.settings = settings

    # ---- Checkout Sessions -------------------------------------------------------

    def checkout_session_create(self, params: dict) -> dict:
        mode = params.get("mode")
        if not mode:
            raise parameter_missing("mode")
        if mode != "payment":
            raise parameter_invalid("mode", "The sandbox supports mode=payment only.")
        line_items = params.get("line_items") or []
        if not line_items:
            raise parameter_missing("line_items")
        currency, amount_total = self._line_items_total(line_items)
        for url_param in ("success_url", "cancel_url"):
            url = params.get(url_param)
            if url is not None and not url.startswith(("http://", "https://")):
                raise StripeApiError(400, "Not a valid URL", code="url_invalid", param=url_param)
        email = params.get("customer_email")
        if email is not None and "@" not in email:
            raise StripeApiError(400, f"Invalid email address: {email}", code="email_invalid",
                                 param="customer_email")
        if len(params.get("client_reference_id") or "") > 200:
            raise parameter_invalid("client_reference_id", "client_reference_id must be at most "
                                    "200 characters.", code="string_length_too_long")
        _check_metadata(params.get("metadata"), "metadata")
        _check_metadata((params.get("payment_intent_data") or {}).get("metadata"),
                        "payment_intent_data[metadata]")
        expires_in = self._expires_in(params.get("expires_at"))

        with self.store.lock:
            now = self.store.now()
            session_id = new_id("cs_test_", 58)
            session = objects.checkout_session(
                session_id=session_id, created=now, expires_at=now + expires_in,
                url=f"{self.settings.public_url}/c/pay/{session_id}", params=params,
                amount_total=amount_total, currency=currency)
            items = [objects.line_item(currency=currency, line=line) for line in line_items]
            self.store.put(session, line_items=items,
                           payment_intent_data=params.get("payment_intent_data") or {})
            self.store.save()
            return session

    def _line_items_total(self, line_items: list) -> tuple[str, int]:
        currencies, total = set(), 0
        for index, line in enumerate(line_items):
            prefix = f"line_items[{index}]"
            if line.get("price"):
                raise resource_missing("price", line["price"], f"{prefix}[price]")
            price_data = line.get("price_data")
            if not price_data:
                raise parameter_missing(f"{prefix}[price_data]")
            if "quantity" not in line:
                raise parameter_missing(f"{prefix}[quantity]")
            if "unit_amount" not in price_data:
                raise parameter_missing(f"{prefix}[price_data][unit_amount]")
            if not (price_data.get("product_data") or price_data.get("product")):
                raise parameter_missing(f"{prefix}[price_data][product_data]")
            if price_data["unit_amount"] < 0:
                raise parameter_invalid(f"{prefix}[price_data][unit_amount]",
                                        "Invalid non-negative integer")
            if line["quantity"] < 1:
                raise parameter_invalid(f"{prefix}[quantity]", "Invalid positive integer")
            currencies.add(price_data["currency"].lower())
            total += price_data["unit_amount"] * line["quantity"]
        if len(currencies) > 1:
            raise parameter_invalid("line_items", "All line items must use the same currency.")
        return currencies.pop(), total

    def _expires_in(self, expires_at: int | None) -> int:
        """Seconds until expiry. The bounds are checked against the caller's wall clock
        (it cannot know how far the sandbox clock was advanced); the session then expires
        that many seconds later on the sandbox clock."""
        if expires_at is None:
            return MAX_EXPIRY_SECONDS
        expires_in = expires_at - int(time.time())
        if expires_in < MIN_EXPIRY_SECONDS - EXPIRY_SLACK_SECONDS:
            raise parameter_invalid("expires_at", "The `expires_at` timestamp must be at least "
                                    "30 minutes from Checkout Session creation.")
        if expires_in > MAX_EXPIRY_SECONDS + EXPIRY_SLACK_SECONDS:
            raise parameter_invalid("expires_at", "The `expires_at` timestamp must be less than "
                                    "24 hours from Checkout Session creation.")
        return expires_in

    def checkout_session_line_items(self, session_id: str) -> list[dict]:
        self.store.get(session_id, "checkout.session")
        return self.store.internal[session_id]["line_items"]

    def checkout_session_expire(self, session_id: str) -> dict:
        with self.store.lock:
            session = self.store.get(session_id, "checkout.session", param="session")
            if session["status"] != "open":
                raise StripeApiError(
                    400, 'Only Checkout Sessions with a status in ["open"] can be expired. This '
                         f'Checkout Session has a status of "{session["status"]}".', param="session")
            self._expire(session)
            self.store.save()
            return session

    def checkout_session_expire_now(self, session_id: str) -> dict:
        """Expire an open session as its clock deadline would, without moving the clock."""
        with self.store.lock:
            session = self.store.get(session_id, "checkout.session")
            if session["status"] == "open":
                session["expires_at"] = min(session["expires_at"], self.store.now())
                self._expire(session)
                self.store.save()
            return session

    def _expire(self, session: dict) -> None:
        session["status"] = "expired"
        session["url"] = None
        intent = self.store.find(session["payment_intent"])
        if intent and intent["status"] in ("requires_payment_method", "requires_action"):
            intent.update(status="canceled", canceled_at=self.store.now(),
                          cancellation_reason="abandoned", next_action=None)
            self.events.emit("payment_intent.canceled", intent)
        self.events.emit("checkout.session.expired", session)

    def checkout_session_for_payment(self, session_id: str) -> dict:
        """The session, if a payment may still be attempted on it."""
        self.clock_tick()
        session = self.store.get(session_id, "checkout.session")
        if session["status"] != "open":
            raise StripeApiError(400, f"This Checkout Session is {session['status']}; it can no "
                                      "longer be paid.", code="checkout_session_inactive")
        return session

    # ---- Paying --------------------------------------------------------------------

    def checkout_session_pay_card(self, session_id: str, *, number: str, email: str | None = None,
                                  name: str | None = None, three_d_secure: str | None = None) -> dict:
        """One payment attempt, as submitted on the hosted page. Returns what the page
        shows: {"outcome": succeeded|declined|requires_action, ...}."""
        with self.store.lock:
            session = self.checkout_session_for_payment(session_id)
            if self.store.find(session["payment_intent"]) and \
                    self.store.find(session["payment_intent"])["status"] == "requires_action":
                raise StripeApiError(400, "This payment is waiting for authentication.",
                                     code="payment_intent_unexpected_state")
            card = card_for_number(number)
            email = session["customer_email"] or email or "customer@example.com"
            intent = self._intent_for(session)
            method = self.store.put(objects.card_payment_method(
                created=self.store.now(), card={"number": card.number, "brand": card.brand,
                                                "funding": card.funding,
                                                "fingerprint": card.fingerprint},
                email=email, name=name))
            intent["payment_method"] = method["id"]
            if card.decline:
                result = self._decline(session, intent, method, card)
            elif card.requires_authentication and three_d_secure is None:
                intent.update(status="requires_action", next_action={
                    "type": "use_stripe_sdk", "use_stripe_sdk": {"type": "three_d_secure_redirect"}})
                self.store.internal[session_id]["pending_card"] = {
                    "number": card.number, "email": email, "name": name}
                self.events.emit("payment_intent.requires_action", intent)
                result = {"outcome": "requires_action"}
            elif card.requires_authentication and three_d_secure == "fail":
                result = self._authentication_failed(intent)
            else:
                result = self._capture_card(session, intent, method, card, email, name)
            self.store.save()
            return {**result, "session": session, "payment_intent": intent}

    def checkout_session_authenticate(self, session_id: str, outcome: str) -> dict:
        """The customer completes or fails the 3D Secure step of a 3155 card."""
        if outcome not in ("complete", "fail"):
            raise parameter_invalid("outcome", "outcome must be complete or fail")
        with self.store.lock:
            session = self.checkout_session_for_payment(session_id)
            intent = self.store.find(session["payment_intent"])
            pending = self.store.internal[session_id].pop("pending_card", None)
            if not intent or intent["status"] != "requires_action" or not pending:
                raise StripeApiError(400, "This Checkout Session has no payment awaiting "
                                          "authentication.", code="payment_intent_unexpected_state")
            if outcome == "fail":
                result = self._authentication_failed(intent)
            else:
                method = self.store.find(intent["payment_method"])
                result = self._capture_card(session, intent, method, card_for_number(pending["number"]),
                                            pending["email"], pending["name"])
            self.store.save()
            return {**result, "session": session, "payment_intent": intent}

    def checkout_session_pay_bank_debit(self, session_id: str, *, outcome: str,
                                        email: str | None = None, name: str | None = None,
                                        settle_after: int | None = None) -> dict:
        """A delayed payment method: the session completes unpaid; the debit succeeds or
        fails when the sandbox clock passes the settlement time."""
        if outcome not in ("succeeded", "failed"):
            raise parameter_invalid("outcome", "outcome must be succeeded or failed")
        with self.store.lock:
            session = self.checkout_session_for_payment(session_id)
            email = session["customer_email"] or email or "customer@example.com"
            intent = self._intent_for(session)
            method = self.store.put(objects.bank_debit_payment_method(
                created=self.store.now(), email=email, name=name))
            charge = self.store.put(objects.charge(created=self.store.now(), intent=intent,
                                                   payment_method=method, status="pending"))
            intent.update(status="processing", payment_method=method["id"],
                          latest_charge=charge["id"], last_payment_error=None,
                          payment_method_types=["sepa_debit"])
            session.update(status="complete", payment_status="unpaid", url=None,
                           customer_details=objects.customer_details(email, name))
            delay = self.settings.bank_debit_delay if settle_after is None else settle_after
            self.store.internal[session["id"]].update(
                bank_debit_outcome=outcome, bank_debit_settles_at=self.store.now() + delay)
            self.events.emit("charge.pending", charge)
            self.events.emit("payment_intent.processing", intent)
            self.events.emit("checkout.session.completed", session)
            self.store.save()
            return {"outcome": "processing", "session": session, "payment_intent": intent}

    def _intent_for(self, session: dict) -> dict:
        """Checkout creates the PaymentIntent at the first payment attempt."""
        intent = self.store.find(session["payment_intent"])
        if intent:
            return intent
        intent_data = self.store.internal[session["id"]]["payment_intent_data"]
        intent = self.store.put(objects.payment_intent(
            created=self.store.now(), amount=session["amount_total"], currency=session["currency"],
            metadata=intent_data.get("metadata") or {}, description=intent_data.get("description"),
            receipt_email=intent_data.get("receipt_email"),
            payment_method_types=session["payment_method_types"]))
        session["payment_intent"] = intent["id"]
        self.events.emit("payment_intent.created", intent)
        return intent

    def _decline(self, session: dict, intent: dict, method: dict, card: TestCard) -> dict:
        code, decline_code, message = card.decline
        charge = self.store.put(objects.charge(
            created=self.store.now(), intent=intent, payment_method=method, status="failed",
            failure_code=code, failure_message=message,
            outcome=objects.outcome_declined(decline_code or code, "The bank did not return any "
                                             "further details with this decline.")))
        intent.update(status="requires_payment_method", latest_charge=charge["id"],
                      payment_method=None, last_payment_error={
                          "type": "card_error", "code": code, "decline_code": decline_code,
                          "message": message, "charge": charge["id"], "payment_method": method,
                          "doc_url": f"https://docs.stripe.com/error-codes/{code.replace('_', '-')}"})
        self.events.emit("charge.failed", charge)
        self.events.emit("payment_intent.payment_failed", intent)
        return {"outcome": "declined", "error": {"code": code, "decline_code": decline_code,
                                                 "message": message}}

    def _authentication_failed(self, intent: dict) -> dict:
        method = self.store.find(intent["payment_method"])
        intent.update(status="requires_payment_method", next_action=None, payment_method=None,
                      last_payment_error={
                          "type": "invalid_request_error",
                          "code": "payment_intent_authentication_failure",
                          "message": AUTHENTICATION_FAILED_MESSAGE, "payment_method": method,
                          "doc_url": "https://docs.stripe.com/error-codes/"
                                     "payment-intent-authentication-failure"})
        self.events.emit("payment_intent.payment_failed", intent)
        return {"outcome": "declined", "error": {"code": "payment_intent_authentication_failure",
                                                 "decline_code": None,
                                                 "message": AUTHENTICATION_FAILED_MESSAGE}}

    def _capture_card(self, session: dict, intent: dict, method: dict, card: TestCard,
                      email: str, name: str | None) -> dict:
        charge = self.store.put(
            objects.charge(created=self.store.now(), intent=intent, payment_method=method,
                           status="succeeded"),
            refunds_fail_later=card.refunds_fail_later)
        intent.update(status="succeeded", amount_received=intent["amount"],
                      latest_charge=charge["id"], last_payment_error=None, next_action=None,
                      payment_method=method["id"])
        session.update(status="complete", payment_status="paid", url=None,
                       customer_details=objects.customer_details(email, name))
        self.events.emit("charge.succeeded", charge)
        self.events.emit("payment_intent.succeeded", intent)
        self.events.emit("checkout.session.completed", session)
        if card.disputed_after_payment:
            self.dispute_create(charge["id"], reason="fraudulent")
        return {"outcome": "succeeded"}

    def _settle_bank_debit(self, session: dict) -> None:
        internal = self.store.internal[session["id"]]
        outcome = internal.pop("bank_debit_outcome")
        internal.pop("bank_debit_settles_at")
        intent = self.store.find(session["payment_intent"])
        charge = self.store.find(intent["latest_charge"])
        if outcome == "succeeded":
            charge.update(status="succeeded", paid=True, captured=True,
                          amount_captured=charge["amount"], balance_transaction=new_id("txn_"))
            intent.update(status="succeeded", amount_received=intent["amount"])
            session["payment_status"] = "paid"
            self.events.emit("charge.succeeded", charge)
            self.events.emit("payment_intent.succeeded", intent)
            self.events.emit("checkout.session.async_payment_succeeded", session)
        else:
            message = "The customer's account has insufficient funds to cover this payment."
            charge.update(status="failed", failure_code="insufficient_funds", failure_message=message,
                          outcome=objects.outcome_declined("insufficient_funds", message))
            intent.update(status="requires_payment_method", last_payment_error={
                "type": "card_error", "code": "insufficient_funds", "decline_code": None,
                "message": message, "charge": charge["id"],
                "payment_method": self.store.find(intent["payment_method"]),
                "doc_url": "https://docs.stripe.com/error-codes/insufficient-funds"},
                payment_method=None)
            self.events.emit("charge.failed", charge)
            self.events.emit("payment_intent.payment_failed", intent)
            self.events.emit("checkout.session.async_payment_failed", session)

    # ---- Refunds and disputes ------------------------------------------------------

    def refund_create(self, params: dict) -> dict:
        require_one_of(params, "charge", "payment_intent")
        with self.store.lock:
            charge = self._refundable_charge(params)
            remaining = charge["amount"] - charge["amount_refunded"]
            if charge["refunded"] or remaining == 0:
                raise StripeApiError(400, f"Charge {charge['id']} has already been refunded.",
                                     code="charge_already_refunded", param="charge")
            amount = params.get("amount", remaining)
            if amount <= 0:
                raise parameter_invalid("amount", "Invalid positive integer",
                                        code="parameter_invalid_integer")
            if amount > remaining:
                raise StripeApiError(
                    400, f"Refund amount ({_money(amount, charge['currency'])}) is greater than "
                         f"unrefunded amount on charge ({_money(remaining, charge['currency'])})",
                    code="amount_too_large", param="amount")
            reason = params.get("reason")
            if reason is not None and reason not in REFUND_REASONS:
                raise parameter_invalid("reason", f"Invalid reason: must be one of "
                                        f"{', '.join(REFUND_REASONS)}")
            _check_metadata(params.get("metadata"), "metadata")
            is_bank_debit = charge["payment_method_details"]["type"] != "card"
            refund = self.store.put(objects.refund(
                created=self.store.now(), charge=charge, amount=amount, reason=reason,
                metadata=params.get("metadata") or {},
                status="pending" if is_bank_debit else "succeeded"))
            if is_bank_debit:
                self.store.internal[refund["id"]]["becomes"] = (
                    "succeeded", self.store.now() + self.settings.bank_debit_delay)
            elif self.store.internal[charge["id"]].get("refunds_fail_later"):
                self.store.internal[refund["id"]]["becomes"] = (
                    "failed", self.store.now() + self.settings.refund_failure_delay)
            previous = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
            charge["amount_refunded"] += amount
            charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
            charge["refunds"]["data"].insert(0, self.store.snapshot(refund))
            charge["refunds"]["total_count"] += 1
            self.events.emit("charge.refunded", charge, previous_attributes=previous)
            self.events.emit("refund.created", refund)
            self.store.save()
            return refund

    def _refundable_charge(self, params: dict) -> dict:
        if params.get("charge"):
            charge = self.store.get(params["charge"], "charge", param="charge")
        else:
            intent = self.store.get(params["payment_intent"], "payment_intent", param="payment_intent")
            charge = self.store.find(intent["latest_charge"])
            if intent["status"] != "succeeded" or charge is None:
                raise StripeApiError(
                    400, f"This PaymentIntent ({intent['id']}) does not have a successful charge "
                         "to refund.", code="charge_not_refundable", param="payment_intent")
        if charge["status"] != "succeeded":
            raise StripeApiError(400, f"Charge {charge['id']} has not succeeded; it cannot be "
                                      "refunded.", code="charge_not_refundable", param="charge")
        if charge["disputed"]:
            raise StripeApiError(400, f"Charge {charge['id']} has been charged back; cannot issue "
                                      "a refund.", code="charge_disputed", param="charge")
        return charge

    def _refund_transition(self, refund: dict, status: str) -> None:
        previous = {"status": refund["status"]}
        refund["status"] = status
        charge = self.store.find(refund["charge"])
        if status == "failed":
            refund.update(failure_reason="expired_or_canceled_card",
                          failure_balance_transaction=new_id("txn_"))
            charge["amount_refunded"] -= refund["amount"]
            charge["refunded"] = False
        for listed in charge["refunds"]["data"]:
            if listed["id"] == refund["id"]:
                listed.update(self.store.snapshot(refund))
        self.events.emit("refund.updated", refund, previous_attributes=previous)
        if status == "failed":
            self.events.emit("refund.failed", refund)

    def dispute_create(self, charge_id: str, reason: str = "fraudulent") -> dict:
        with self.store.lock:
            charge = self.store.get(charge_id, "charge")
            if charge["status"] != "succeeded":
                raise StripeApiError(400, f"Charge {charge_id} has not succeeded; it cannot be "
                                          "disputed.", param="charge")
            if charge["disputed"]:
                raise StripeApiError(400, f"Charge {charge_id} is already disputed.", param="charge")
            if charge["refunded"]:
                raise StripeApiError(400, f"Charge {charge_id} is fully refunded; it cannot be "
                                          "disputed.", param="charge")
            now = self.store.now()
            dispute = self.store.put(objects.dispute(created=now, charge=charge, reason=reason,
                                                     evidence_due_by=now + 7 * 24 * 3600))
            charge["disputed"] = True
            self.events.emit("charge.dispute.created", dispute)
            self.store.save()
            return dispute

    # ---- Time ------------------------------------------------------------------------

    def clock_tick(self) -> None:
        """Apply what the sandbox clock has made due: expiries, bank-debit outcomes,
        refund status changes. Cheap when nothing is due."""
        with self.store.lock:
            now = self.store.now()
            changed = False
            for session in self.store.newest_first("checkout.session")[::-1]:
                internal = self.store.internal[session["id"]]
                if session["status"] == "open" and session["expires_at"] <= now:
                    self._expire(session)
                    changed = True
                elif internal.get("bank_debit_settles_at") and internal["bank_debit_settles_at"] <= now:
                    self._settle_bank_debit(session)
                    changed = True
            for refund in self.store.newest_first("refund")[::-1]:
                becomes = self.store.internal[refund["id"]].get("becomes")
                if becomes and becomes[1] <= now:
                    del self.store.internal[refund["id"]]["becomes"]
                    self._refund_transition(refund, becomes[0])
                    changed = True
            if changed:
                self.store.save()


def _money(amount: int, currency: str) -> str:
    symbol = {"usd": "$", "eur": "€", "gbp": "£"}.get(currency, "")
    return f"{symbol}{amount / 100:.2f}" if symbol else f"{amount / 100:.2f} {currency.upper()}"


def _check_metadata(metadata, param: str) -> None:
    if not metadata:
        return
    if len(metadata) > 50:
        raise parameter_invalid(param, "You can specify up to 50 keys in metadata.")
    for key, value in metadata.items():
        if len(key) > 40:
            raise parameter_invalid(f"{param}[{key}]", "Metadata keys can be at most 40 characters.")
        if len(str(value)) > 500:
            raise parameter_invalid(f"{param}[{key}]", "Metadata values can be at most 500 characters.")
