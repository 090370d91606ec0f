"""Connect: connected accounts and their hosted onboarding, transfers funded by the
platform's charges, reversals against the account's balance, the account's own payouts,
and the Connect endpoint that receives its events (with `account`, its own secret)."""

import time

import httpx
import pytest
import stripe

from stripe_sandbox.process import SandboxControlError

from .conftest import CONNECT_WEBHOOK_SECRET, WEBHOOK_SECRET
from .factories import missing_fields, paid_session

EXPRESS = {"controller": {"stripe_dashboard": {"type": "express"}, "fees": {"payer": "application"},
                          "losses": {"payments": "application"}},
           "capabilities": {"transfers": {"requested": True}}}
RETURN_URL, REFRESH_URL = "https://mentors.example/mentor/payouts?onboarding=return", "https://mentors.example/refresh"


def new_account(client, **params):
    return client.v1.accounts.create(params={**EXPRESS, "email": "mentor@example.com",
                                             "metadata": {"mentor_id": "7"}, **params})


def link(client, account_id: str):
    return client.v1.account_links.create(params={"account": account_id, "type": "account_onboarding",
                                                  "refresh_url": REFRESH_URL, "return_url": RETURN_URL})


def ready_account(client, sandbox):
    account = new_account(client)
    sandbox.onboard_account(account.id)
    return account


def test_new_account_has_stripes_fields_and_waits_for_onboarding(client):
    account = new_account(client)

    assert account.id.startswith("acct_") and missing_fields(account, "account") == set()
    assert (account.charges_enabled, account.payouts_enabled, account.details_submitted) == (False, False, False)
    assert "external_account" in account.requirements.currently_due
    assert account.requirements.disabled_reason == "requirements.past_due"
    assert account.capabilities.to_dict() == {"transfers": "inactive"}
    assert account.controller.stripe_dashboard.type == "express" and account.metadata["mentor_id"] == "7"
    assert client.v1.accounts.retrieve(account.id).id == account.id


def test_an_account_link_opens_the_hosted_page_and_completing_it_enables_payouts(client, connect_receiver, receiver):
    account = new_account(client)
    account_link = link(client, account.id)
    assert missing_fields(account_link, "account_link") == set()
    assert account_link.expires_at > account_link.created

    page = httpx.get(account_link.url)
    assert page.status_code == 200 and 'data-testid="onboarding-complete"' in page.text
    assert "external_account" in page.text
    finished = httpx.post(account_link.url, data={"outcome": "complete"})

    assert (finished.status_code, finished.headers["location"]) == (303, RETURN_URL)
    account = client.v1.accounts.retrieve(account.id)
    assert (account.charges_enabled, account.payouts_enabled, account.details_submitted) == (True, True, True)
    assert account.requirements.currently_due == [] and account.requirements.disabled_reason is None
    assert account.capabilities.transfers == "active" and account.external_accounts.data[0].last4 == "6789"
    delivery = connect_receiver.wait_for(lambda ds: any(d.event["type"] == "account.updated" for d in ds))[0]
    event = stripe.Webhook.construct_event(delivery.body, delivery.signature, CONNECT_WEBHOOK_SECRET)
    assert event.account == account.id and event.data.object.payouts_enabled is True
    assert event.data.previous_attributes["payouts_enabled"] is False
    with pytest.raises(stripe.SignatureVerificationError):  # the Connect endpoint has its own secret
        stripe.Webhook.construct_event(delivery.body, delivery.signature, WEBHOOK_SECRET)
    assert all(e["type"] != "account.updated" for e in receiver.events())  # not the platform's endpoint


def test_leaving_requirements_due_keeps_payouts_disabled(client, connect_receiver):
    account = new_account(client)

    finished = httpx.post(link(client, account.id).url, data={"outcome": "requirements_due"})

    assert finished.headers["location"] == RETURN_URL
    account = client.v1.accounts.retrieve(account.id)
    assert (account.details_submitted, account.payouts_enabled, account.charges_enabled) == (True, False, False)
    assert account.requirements.currently_due == ["external_account", "individual.verification.document"]
    assert connect_receiver.wait_for_event("account.updated")["account"] == account.id


def test_a_used_or_expired_link_sends_the_browser_to_refresh_url(client, sandbox):
    account = new_account(client)
    used = link(client, account.id)
    httpx.post(used.url, data={"outcome": "requirements_due"})
    expired = link(client, account.id)
    sandbox.advance_clock(301)

    for account_link in (used, expired):
        page = httpx.get(account_link.url)
        assert (page.status_code, page.headers["location"]) == (303, REFRESH_URL)
    assert client.v1.accounts.retrieve(account.id).payouts_enabled is False
    assert httpx.get(used.url.rsplit("/", 1)[0] + "/nosuchlink").status_code == 404


def test_account_link_needs_an_account_and_urls(client):
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.account_links.create(params={"account": "acct_nope", "type": "account_onboarding",
                                               "refresh_url": REFRESH_URL, "return_url": RETURN_URL})
    assert (missing.value.code, missing.value.param) == ("resource_missing", "account")
    with pytest.raises(stripe.InvalidRequestError) as no_url:
        client.v1.account_links.create(params={"account": new_account(client).id, "type": "account_onboarding",
                                               "return_url": RETURN_URL})
    assert (no_url.value.code, no_url.value.param) == ("parameter_missing", "refresh_url")


def test_a_transfer_from_a_charge_moves_money_to_the_account(client, sandbox, receiver, connect_receiver):
    account = ready_account(client, sandbox)
    _, intent, charge = paid_session(sandbox, client)

    transfer = client.v1.transfers.create(params={
        "amount": 3825, "currency": "usd", "destination": account.id, "source_transaction": charge.id,
        "transfer_group": "session_12", "metadata": {"payout_id": "3"}}, options={"idempotency_key": "transfer:3"})

    assert missing_fields(transfer, "transfer") == set()
    assert (transfer.amount, transfer.destination, transfer.source_transaction, transfer.transfer_group) == (
        3825, account.id, charge.id, "session_12")
    assert (transfer.amount_reversed, transfer.reversed, transfer.metadata["payout_id"]) == (0, False, "3")
    assert sandbox.account_balance(account.id) == 3825
    connected_balance = client.v1.balance.retrieve(options={"stripe_account": account.id})
    assert missing_fields(connected_balance, "balance") == set() and connected_balance.available[0].amount == 3825
    assert client.v1.balance.retrieve().available[0].amount == 4500 - 3825  # the platform keeps its fee
    created = receiver.wait_for_event("transfer.created", id=transfer.id)
    assert "account" not in created  # the platform's own event
    assert [t.id for t in client.v1.transfers.list(params={"transfer_group": "session_12"}).data] == [transfer.id]
    assert [t.id for t in client.v1.transfers.list(params={"destination": account.id}).data] == [transfer.id]
    # The same key and parameters: Stripe's first answer, not a second transfer.
    again = client.v1.transfers.create(params={
        "amount": 3825, "currency": "usd", "destination": account.id, "source_transaction": charge.id,
        "transfer_group": "session_12", "metadata": {"payout_id": "3"}}, options={"idempotency_key": "transfer:3"})
    assert again.id == transfer.id and len(client.v1.transfers.list().data) == 1


def test_a_transfer_to_an_account_not_ready_or_unknown_is_refused(client, sandbox):
    _, _, charge = paid_session(sandbox, client)
    pending = new_account(client)

    with pytest.raises(stripe.InvalidRequestError) as not_ready:
        client.v1.transfers.create(params={"amount": 100, "currency": "usd", "destination": pending.id,
                                           "source_transaction": charge.id})
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.transfers.create(params={"amount": 100, "currency": "usd", "destination": "acct_nope"})

    assert (not_ready.value.code, not_ready.value.param) == ("insufficient_capabilities_for_transfer", "destination")
    assert (unknown.value.code, unknown.value.param) == ("resource_missing", "destination")
    assert client.v1.transfers.list().data == []


def test_a_transfer_is_refused_when_the_charge_is_not_the_platforms_or_holds_less(client, sandbox):
    account = ready_account(client, sandbox)
    _, _, charge = paid_session(sandbox, client)

    with pytest.raises(stripe.InvalidRequestError) as not_ours:
        client.v1.transfers.create(params={"amount": 100, "currency": "usd", "destination": account.id,
                                           "source_transaction": "ch_of_another_account"})
    with pytest.raises(stripe.InvalidRequestError) as too_much:
        client.v1.transfers.create(params={"amount": 4501, "currency": "usd", "destination": account.id,
                                           "source_transaction": charge.id})
    sandbox.refund_charge(charge.id, amount=1000)
    with pytest.raises(stripe.InvalidRequestError) as after_refund:
        client.v1.transfers.create(params={"amount": 3501, "currency": "usd", "destination": account.id,
                                           "source_transaction": charge.id})
    with pytest.raises(stripe.InvalidRequestError) as currency:
        client.v1.transfers.create(params={"amount": 100, "currency": "eur", "destination": account.id,
                                           "source_transaction": charge.id})

    assert (not_ours.value.code, not_ours.value.param) == ("resource_missing", "source_transaction")
    assert (too_much.value.code, too_much.value.param) == ("amount_too_large", "amount")
    assert after_refund.value.code == "amount_too_large"
    assert currency.value.param == "currency"
    assert client.v1.transfers.create(params={"amount": 3500, "currency": "usd", "destination": account.id,
                                              "source_transaction": charge.id}).amount == 3500


def test_a_reversal_takes_money_back_from_the_account(client, sandbox, receiver):
    account = ready_account(client, sandbox)
    _, _, charge = paid_session(sandbox, client)
    transfer = client.v1.transfers.create(params={"amount": 3825, "currency": "usd", "destination": account.id,
                                                  "source_transaction": charge.id})

    reversal = client.v1.transfers.reversals.create(transfer.id, params={"amount": 850, "metadata": {"reversal_id": "4"}},
                                                    options={"idempotency_key": "reversal:4"})

    assert missing_fields(reversal, "transfer_reversal") == set()
    assert (reversal.amount, reversal.transfer, reversal.metadata["reversal_id"]) == (850, transfer.id, "4")
    transfer = client.v1.transfers.retrieve(transfer.id)
    assert (transfer.amount_reversed, transfer.reversed) == (850, False)
    assert sandbox.account_balance(account.id) == 3825 - 850
    event = receiver.wait_for_event("transfer.reversed", id=transfer.id)
    assert event["data"]["previous_attributes"] == {"amount_reversed": 0, "reversed": False}
    assert [r.id for r in client.v1.transfers.reversals.list(transfer.id).data] == [reversal.id]
    assert client.v1.transfers.reversals.retrieve(transfer.id, reversal.id).amount == 850
    with pytest.raises(stripe.InvalidRequestError) as too_much:
        client.v1.transfers.reversals.create(transfer.id, params={"amount": 3000})
    assert too_much.value.code == "amount_too_large"
    rest = client.v1.transfers.reversals.create(transfer.id)  # no amount: all that is left
    assert rest.amount == 3825 - 850 and client.v1.transfers.retrieve(transfer.id).reversed is True


def test_a_reversal_is_refused_when_the_accounts_balance_is_too_short(client, sandbox, connect_receiver):
    account = ready_account(client, sandbox)
    _, _, charge = paid_session(sandbox, client)
    transfer = client.v1.transfers.create(params={"amount": 3825, "currency": "usd", "destination": account.id,
                                                  "source_transaction": charge.id})
    payout = sandbox.pay_out_balance(account.id, "paid")  # the mentor's money went to their bank

    with pytest.raises(stripe.InvalidRequestError) as short:
        client.v1.transfers.reversals.create(transfer.id, params={"amount": 850})

    assert missing_fields(payout, "payout") == set() and (payout["amount"], payout["status"]) == (3825, "paid")
    assert (short.value.http_status, short.value.code) == (400, "balance_insufficient")
    assert client.v1.transfers.retrieve(transfer.id).amount_reversed == 0
    assert connect_receiver.wait_for_event("payout.paid", id=payout["id"])["account"] == account.id


def test_a_failed_payout_is_an_event_of_the_account_and_puts_the_money_back(client, sandbox, connect_receiver):
    account = ready_account(client, sandbox)
    _, _, charge = paid_session(sandbox, client)
    client.v1.transfers.create(params={"amount": 2000, "currency": "usd", "destination": account.id,
                                       "source_transaction": charge.id})

    payout = sandbox.pay_out_balance(account.id, "failed")

    event = connect_receiver.wait_for_event("payout.failed", id=payout["id"])
    assert event["account"] == account.id
    assert (event["data"]["object"]["failure_code"], event["data"]["object"]["status"]) == ("account_closed", "failed")
    assert sandbox.account_balance(account.id) == 2000
    listed = client.v1.payouts.list(options={"stripe_account": account.id}).data
    assert [p.id for p in listed] == [payout["id"]] and client.v1.payouts.list().data == []
    with pytest.raises(SandboxControlError):
        sandbox.pay_out_balance(new_account(client).id)  # nothing to pay out


def test_disabling_and_deauthorizing_an_account_are_its_events(client, sandbox, connect_receiver):
    account = ready_account(client, sandbox)

    sandbox.disable_account(account.id, "rejected.fraud")
    sandbox.deauthorize_account(account.id)

    disabled = connect_receiver.wait_for(lambda ds: [d for d in ds if d.event["type"] == "account.updated"
                                                     and d.event["data"]["object"]["requirements"]["disabled_reason"]])
    updated = [d.event for d in disabled if d.event["type"] == "account.updated"][-1]["data"]["object"]
    assert (updated["payouts_enabled"], updated["requirements"]["disabled_reason"]) == (False, "rejected.fraud")
    deauthorized = connect_receiver.wait_for_event("account.application.deauthorized")
    assert deauthorized["account"] == account.id and deauthorized["data"]["object"]["object"] == "application"
    assert missing_fields(deauthorized["data"]["object"], "application") == set()
    with pytest.raises(stripe.InvalidRequestError) as gone:
        link(client, account.id)
    assert gone.value.code == "account_invalid"


def test_events_of_connected_accounts_are_listed_with_their_stripe_account_only(client, sandbox):
    account = ready_account(client, sandbox)

    platform = client.v1.events.list().data
    connected = client.v1.events.list(options={"stripe_account": account.id}).data

    assert [e.type for e in connected] == ["account.updated"] and connected[0].account == account.id
    assert all(e.type != "account.updated" for e in platform)


ROUTES = {
    "POST /v1/accounts": lambda client, ctx: client.v1.accounts.create(params=EXPRESS),
    "POST /v1/account_links": lambda client, ctx: link(client, ctx["account"].id),
    "POST /v1/transfers": lambda client, ctx: client.v1.transfers.create(params={
        "amount": 100, "currency": "usd", "destination": ctx["account"].id, "source_transaction": ctx["charge"].id}),
    "POST /v1/transfers/{id}/reversals": lambda client, ctx: client.v1.transfers.reversals.create(
        ctx["transfer"].id, params={"amount": 10}),
    "GET /v1/balance": lambda client, ctx: client.v1.balance.retrieve(options={"stripe_account": ctx["account"].id}),
    "GET /v1/accounts/{id}": lambda client, ctx: client.v1.accounts.retrieve(ctx["account"].id),
}


@pytest.mark.parametrize("route", list(ROUTES))
def test_every_connect_route_takes_injected_faults(client, sandbox, route):
    account = ready_account(client, sandbox)
    _, _, charge = paid_session(sandbox, client)
    transfer = client.v1.transfers.create(params={"amount": 1000, "currency": "usd", "destination": account.id,
                                                  "source_transaction": charge.id})
    context = {"account": account, "charge": charge, "transfer": transfer}
    path = route.split(" ")[1].split("{")[0].rstrip("/")
    no_retry = sandbox.stripe_client("sk_test_sandbox_suite", max_network_retries=0)

    sandbox.set_api_faults(path_prefix=path, error_status=503, error_count=1)
    with pytest.raises(stripe.APIError) as outage:
        ROUTES[route](no_retry, context)
    assert outage.value.http_status == 503
    ROUTES[route](no_retry, context)  # the next one goes through

    sandbox.set_api_faults(path_prefix=path, latency_ms=600, latency_phase="after")
    started = time.monotonic()
    ROUTES[route](no_retry, context)
    assert time.monotonic() - started >= 0.6
    sandbox.set_api_faults()


def test_with_latency_after_a_transfer_is_made_though_its_caller_gave_up(client, sandbox):
    account = ready_account(client, sandbox)
    _, _, charge = paid_session(sandbox, client)
    sandbox.set_api_faults(path_prefix="/v1/transfers", latency_ms=3000, latency_phase="after")

    with pytest.raises(stripe.APIConnectionError):
        sandbox.stripe_client("sk_test_sandbox_suite", max_network_retries=0,
                              http_client=stripe.RequestsClient(timeout=0.5)).v1.transfers.create(params={
                                  "amount": 500, "currency": "usd", "destination": account.id,
                                  "source_transaction": charge.id})

    sandbox.set_api_faults()
    assert [t.amount for t in client.v1.transfers.list().data] == [500]
