"""Builders of Stripe objects as plain dicts.

Each carries every top-level field of Stripe's example object of its type, with
values that fit a card or bank-debit payment made through a hosted Checkout Session.
"""

from __future__ import annotations

from .ids import new_id

_EMPTY_ADDRESS = {"city": None, "country": None, "line1": None, "line2": None,
                  "postal_code": None, "state": None}


def checkout_session(*, session_id: str, created: int, expires_at: int, url: str, params: dict,
                     amount_total: int, currency: str) -> dict:
    return {
        "id": session_id,
        "object": "checkout.session",
        "adaptive_pricing": {"enabled": False},
        "after_expiration": None,
        "allow_promotion_codes": params.get("allow_promotion_codes"),
        "amount_subtotal": amount_total,
        "amount_total": amount_total,
        "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
        "billing_address_collection": params.get("billing_address_collection"),
        "cancel_url": params.get("cancel_url"),
        "client_reference_id": params.get("client_reference_id"),
        "client_secret": None,
        "collected_information": None,
        "consent": None,
        "consent_collection": None,
        "created": created,
        "currency": currency,
        "currency_conversion": None,
        "custom_fields": [],
        "custom_text": {"after_submit": None, "shipping_address": None, "submit": None,
                        "terms_of_service_acceptance": None},
        "customer": params.get("customer"),
        "customer_creation": params.get("customer_creation", "if_required"),
        "customer_details": None,
        "customer_email": params.get("customer_email"),
        "discounts": [],
        "expires_at": expires_at,
        "invoice": None,
        "invoice_creation": {"enabled": False, "invoice_data": {
            "account_tax_ids": None, "custom_fields": None, "description": None, "footer": None,
            "issuer": None, "metadata": {}, "rendering_options": None}},
        "livemode": False,
        "locale": params.get("locale"),
        "metadata": dict(params.get("metadata") or {}),
        "mode": params.get("mode", "payment"),
        "origin_context": None,
        "payment_intent": None,
        "payment_link": None,
        "payment_method_collection": "if_required",
        "payment_method_configuration_details": None,
        "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
        "payment_method_types": list(params.get("payment_method_types") or ["card"]),
        "payment_status": "unpaid",
        "permissions": None,
        "phone_number_collection": {"enabled": False},
        "recovered_from": None,
        "saved_payment_method_options": None,
        "setup_intent": None,
        "shipping_address_collection": None,
        "shipping_cost": None,
        "shipping_options": [],
        "status": "open",
        "submit_type": params.get("submit_type"),
        "subscription": None,
        "success_url": params.get("success_url"),
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted",
        "url": url,
        "wallet_options": None,
    }


def customer_details(email: str | None, name: str | None) -> dict:
    return {"address": dict(_EMPTY_ADDRESS, country="US"), "email": email, "name": name,
            "phone": None, "tax_exempt": "none", "tax_ids": [], "business_name": None,
            "individual_name": None}


def line_item(*, currency: str, line: dict) -> dict:
    price_data = line.get("price_data") or {}
    quantity = int(line.get("quantity") or 1)
    unit_amount = int(price_data.get("unit_amount") or 0)
    product_data = price_data.get("product_data") or {}
    description = product_data.get("name") or "Item"
    return {
        "id": new_id("li_"),
        "object": "item",
        "amount_discount": 0,
        "amount_subtotal": unit_amount * quantity,
        "amount_tax": 0,
        "amount_total": unit_amount * quantity,
        "currency": currency,
        "description": description,
        "metadata": dict(line.get("metadata") or {}),
        "price": {
            "id": new_id("price_"), "object": "price", "active": False,
            "billing_scheme": "per_unit", "created": None, "currency": currency,
            "custom_unit_amount": None, "livemode": False, "lookup_key": None, "metadata": {},
            "nickname": None, "product": price_data.get("product") or new_id("prod_", 14),
            "recurring": None, "tax_behavior": price_data.get("tax_behavior", "unspecified"),
            "tiers_mode": None, "transform_quantity": None, "type": "one_time",
            "unit_amount": unit_amount, "unit_amount_decimal": str(unit_amount),
        },
        "quantity": quantity,
    }


def payment_intent(*, created: int, amount: int, currency: str, metadata: dict,
                   description: str | None, receipt_email: str | None,
                   payment_method_types: list[str]) -> dict:
    intent_id = new_id("pi_")
    return {
        "id": intent_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": None,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": "automatic",
        "client_secret": f"{intent_id}_secret_{new_id('', 25)}",
        "confirmation_method": "automatic",
        "created": created,
        "currency": currency,
        "customer": None,
        "description": description,
        "excluded_payment_method_types": None,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "metadata": dict(metadata),
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": None,
        "payment_method_configuration_details": None,
        "payment_method_options": {"card": {"installments": None, "mandate_options": None,
                                            "network": None, "request_three_d_secure": "automatic"}},
        "payment_method_types": payment_method_types,
        "processing": None,
        "receipt_email": receipt_email,
        "review": None,
        "setup_future_usage": None,
        "shipping": None,
        "source": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "requires_payment_method",
        "transfer_data": None,
        "transfer_group": None,
    }


def card_payment_method(*, created: int, card: dict, email: str | None, name: str | None) -> dict:
    return {
        "id": new_id("pm_"),
        "object": "payment_method",
        "allow_redisplay": "limited",
        "billing_details": _billing_details(email, name),
        "card": {
            "brand": card["brand"], "checks": {"address_line1_check": None,
                                               "address_postal_code_check": None, "cvc_check": "pass"},
            "country": "US", "display_brand": card["brand"], "exp_month": 12, "exp_year": 2034,
            "fingerprint": card["fingerprint"], "funding": card["funding"],
            "generated_from": None, "last4": card["number"][-4:],
            "networks": {"available": [card["brand"]], "preferred": None},
            "regulated_status": "unregulated",
            "three_d_secure_usage": {"supported": True}, "wallet": None,
        },
        "created": created,
        "customer": None,
        "livemode": False,
        "metadata": {},
        "type": "card",
    }


def bank_debit_payment_method(*, created: int, email: str | None, name: str | None) -> dict:
    return {
        "id": new_id("pm_"),
        "object": "payment_method",
        "allow_redisplay": "limited",
        "billing_details": _billing_details(email, name or "Jenny Rosen"),
        "card": None,
        "created": created,
        "customer": None,
        "livemode": False,
        "metadata": {},
        "sepa_debit": {"bank_code": "37040044", "branch_code": "", "country": "DE",
                       "fingerprint": "sandboxSepaFp01", "generated_from": {"charge": None,
                                                                             "setup_attempt": None},
                       "last4": "3000"},
        "type": "sepa_debit",
    }


def _billing_details(email: str | None, name: str | None) -> dict:
    return {"address": dict(_EMPTY_ADDRESS, country="US"), "email": email, "name": name,
            "phone": None, "tax_id": None}


def charge(*, created: int, intent: dict, payment_method: dict, status: str,
           failure_code: str | None = None, failure_message: str | None = None,
           outcome: dict | None = None) -> dict:
    charge_id = new_id("ch_")
    paid = status == "succeeded"
    return {
        "id": charge_id,
        "object": "charge",
        "amount": intent["amount"],
        "amount_captured": intent["amount"] if paid else 0,
        "amount_refunded": 0,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": new_id("txn_") if paid else None,
        "billing_details": payment_method["billing_details"],
        "calculated_statement_descriptor": "MYROADMAP",
        "captured": paid,
        "created": created,
        "currency": intent["currency"],
        "customer": None,
        "description": intent["description"],
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": failure_code,
        "failure_message": failure_message,
        "fraud_details": {},
        "livemode": False,
        "metadata": dict(intent["metadata"]),
        "on_behalf_of": None,
        "outcome": outcome or _outcome_authorized(),
        "paid": paid,
        "payment_intent": intent["id"],
        "payment_method": payment_method["id"],
        "payment_method_details": _payment_method_details(payment_method),
        "receipt_email": intent["receipt_email"],
        "receipt_number": None,
        "receipt_url": f"https://pay.stripe.com/receipts/payment/sandbox_{charge_id}",
        "refunded": False,
        "refunds": {"object": "list", "data": [], "has_more": False, "total_count": 0,
                    "url": f"/v1/charges/{charge_id}/refunds"},
        "review": None,
        "shipping": None,
        "source": None,
        "source_transfer": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": status,
        "transfer_data": None,
        "transfer_group": None,
    }


def _outcome_authorized() -> dict:
    return {"advice_code": None, "network_advice_code": None, "network_decline_code": None,
            "network_status": "approved_by_network", "reason": None, "risk_level": "normal",
            "risk_score": 12, "seller_message": "Payment complete.", "type": "authorized"}


def outcome_declined(reason: str, seller_message: str) -> dict:
    return {"advice_code": "try_again_later", "network_advice_code": None,
            "network_decline_code": None, "network_status": "declined_by_network",
            "reason": reason, "risk_level": "normal", "risk_score": 20,
            "seller_message": seller_message, "type": "issuer_declined"}


def _payment_method_details(payment_method: dict) -> dict:
    if payment_method["type"] == "sepa_debit":
        debit = payment_method["sepa_debit"]
        return {"type": "sepa_debit", "sepa_debit": {
            "bank_code": debit["bank_code"], "branch_code": "", "country": "DE",
            "fingerprint": debit["fingerprint"], "last4": debit["last4"], "mandate": new_id("mandate_")}}
    card = payment_method["card"]
    return {"type": "card", "card": {
        "amount_authorized": None, "authorization_code": None, "brand": card["brand"],
        "checks": card["checks"], "country": "US", "exp_month": card["exp_month"],
        "exp_year": card["exp_year"], "extended_authorization": {"status": "disabled"},
        "fingerprint": card["fingerprint"], "funding": card["funding"],
        "incremental_authorization": {"status": "unavailable"}, "installments": None,
        "last4": card["last4"], "mandate": None, "multicapture": {"status": "unavailable"},
        "network": card["brand"], "network_token": {"used": False},
        "network_transaction_id": None, "overcapture": {"maximum_amount_capturable": 0,
                                                         "status": "unavailable"},
        "regulated_status": "unregulated", "three_d_secure": None, "wallet": None}}


def refund(*, created: int, charge: dict, amount: int, reason: str | None, metadata: dict,
           status: str) -> dict:
    return {
        "id": new_id("re_"),
        "object": "refund",
        "amount": amount,
        "balance_transaction": new_id("txn_"),
        "charge": charge["id"],
        "created": created,
        "currency": charge["currency"],
        "destination_details": (
            {"type": "card", "card": {"reference": None, "reference_status": "pending",
                                      "reference_type": "acquirer_reference_number",
                                      "type": "refund"}}
            if charge["payment_method_details"]["type"] == "card"
            else {"type": "sepa_bank_transfer", "sepa_bank_transfer": {
                "reference": None, "reference_status": "pending", "reference_type": None}}),
        "failure_balance_transaction": None,
        "failure_reason": None,
        "metadata": dict(metadata),
        "payment_intent": charge["payment_intent"],
        "reason": reason,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": status,
        "transfer_reversal": None,
    }


def dispute(*, created: int, charge: dict, reason: str, evidence_due_by: int) -> dict:
    evidence_names = (
        "access_activity_log billing_address cancellation_policy cancellation_policy_disclosure "
        "cancellation_rebuttal customer_communication customer_email_address customer_name "
        "customer_purchase_ip customer_signature duplicate_charge_documentation "
        "duplicate_charge_explanation duplicate_charge_id product_description receipt "
        "refund_policy refund_policy_disclosure refund_refusal_explanation service_date "
        "service_documentation shipping_address shipping_carrier shipping_date "
        "shipping_documentation shipping_tracking_number uncategorized_file uncategorized_text")
    method_type = charge["payment_method_details"]["type"]
    return {
        "id": new_id("du_"),
        "object": "dispute",
        "amount": charge["amount"] - charge["amount_refunded"],
        "balance_transactions": [],
        "charge": charge["id"],
        "created": created,
        "currency": charge["currency"],
        "enhanced_eligibility_types": [],
        "evidence": {**{name: None for name in evidence_names.split()}, "enhanced_evidence": {}},
        "evidence_details": {"due_by": evidence_due_by, "enhanced_eligibility": {},
                             "has_evidence": False, "past_due": False, "submission_count": 0},
        "is_charge_refundable": False,
        "livemode": False,
        "metadata": {},
        "payment_intent": charge["payment_intent"],
        "payment_method_details": (
            {"type": "card", "card": {"brand": charge["payment_method_details"]["card"]["brand"],
                                      "case_type": "chargeback", "network_reason_code": "10.4"}}
            if method_type == "card" else {"type": method_type}),
        "reason": reason,
        "status": "needs_response",
    }


def event(*, created: int, api_version: str, event_type: str, data_object: dict,
          previous_attributes: dict | None, request: dict, pending_webhooks: int) -> dict:
    data = {"object": data_object}
    if previous_attributes:
        data["previous_attributes"] = previous_attributes
    return {
        "id": new_id("evt_"),
        "object": "event",
        "api_version": api_version,
        "created": created,
        "data": data,
        "livemode": False,
        "pending_webhooks": pending_webhooks,
        "request": request,
        "type": event_type,
    }


def list_object(data: list, has_more: bool, url: str) -> dict:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}
