"""The hosted Checkout page at a session's `url`: line items, email and card fields,
Pay and Cancel; the 3D Secure step of card 3155; a test bank debit; redirects to
success_url / cancel_url."""

from __future__ import annotations

import html

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse
from starlette.routing import Route

from .errors import StripeApiError
from .forms import decode_form
from .sandbox import Sandbox

_STYLE = """
body{font-family:system-ui,sans-serif;background:#f6f9fc;color:#1a1f36;margin:0}
main{max-width:420px;margin:40px auto;background:#fff;padding:28px;border-radius:8px;
box-shadow:0 2px 8px rgba(0,0,0,.08)}
h1{font-size:18px} .amount{font-size:30px;font-weight:600;margin:6px 0 18px}
label{display:block;font-size:13px;margin:12px 0 4px} input{width:100%;padding:9px;
box-sizing:border-box;border:1px solid #ccd;border-radius:5px;font-size:15px}
.row{display:flex;gap:8px} button{width:100%;padding:11px;margin-top:18px;border:0;
border-radius:5px;background:#635bff;color:#fff;font-size:16px;cursor:pointer}
button.secondary{background:#e3e8ee;color:#1a1f36} .error{color:#df1b41;margin-top:12px}
.note{font-size:12px;color:#697386} table{width:100%;font-size:14px} td.r{text-align:right}
a.cancel{display:block;margin-top:14px;font-size:14px;color:#635bff}
"""


def routes(sandbox: Sandbox) -> list[Route]:
    store, payments = sandbox.store, sandbox.payments

    def session_or_none(session_id: str) -> dict | None:
        payments.clock_tick()
        obj = store.find(session_id)
        return obj if obj and obj["object"] == "checkout.session" else None

    async def show(request: Request):
        session = session_or_none(request.path_params["id"])
        if session is None:
            return _page("Not found", "<p>This checkout page does not exist.</p>", status=404)
        return _render(store, session)

    async def pay_card(request: Request):
        session_id = request.path_params["id"]
        form = decode_form((await request.body()).decode())
        try:
            result = payments.checkout_session_pay_card(
                session_id, number=form.get("cardnumber", ""), email=form.get("email") or None,
                name=form.get("name") or None)
        except StripeApiError as error:
            return _inactive_or_error(store, session_id, error)
        return _after_attempt(store, result, form)

    async def authenticate(request: Request):
        session_id = request.path_params["id"]
        form = decode_form((await request.body()).decode())
        try:
            result = payments.checkout_session_authenticate(session_id, form.get("outcome", ""))
        except StripeApiError as error:
            return _inactive_or_error(store, session_id, error)
        return _after_attempt(store, result, form)

    async def bank_debit(request: Request):
        session_id = request.path_params["id"]
        form = decode_form((await request.body()).decode())
        try:
            result = payments.checkout_session_pay_bank_debit(
                session_id, outcome=form.get("outcome", ""), email=form.get("email") or None,
                name=form.get("name") or None)
        except StripeApiError as error:
            return _inactive_or_error(store, session_id, error)
        return _after_attempt(store, result, form)

    return [
        Route("/c/pay/{id}", show, methods=["GET"]),
        Route("/c/pay/{id}", pay_card, methods=["POST"]),
        Route("/c/pay/{id}/authenticate", authenticate, methods=["POST"]),
        Route("/c/pay/{id}/bank_debit", bank_debit, methods=["POST"]),
    ]


def _after_attempt(store, result: dict, form: dict):
    session = result["session"]
    if result["outcome"] in ("succeeded", "processing"):
        return _redirect_to_success(session)
    if result["outcome"] == "requires_action":
        return RedirectResponse(f"/c/pay/{session['id']}", status_code=303)
    return _render(store, session, error=result["error"]["message"], form=form)


def _inactive_or_error(store, session_id: str, error: StripeApiError):
    session = store.find(session_id)
    if session is None:
        return _page("Not found", "<p>This checkout page does not exist.</p>", status=404)
    return _render(store, session, error=error.message)


def _redirect_to_success(session: dict):
    if not session["success_url"]:
        return RedirectResponse(f"/c/pay/{session['id']}", status_code=303)
    # Stripe substitutes the literal template {CHECKOUT_SESSION_ID} on redirect.
    return RedirectResponse(session["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"]),
                            status_code=303)


def _render(store, session: dict, error: str | None = None, form: dict | None = None):
    intent = store.find(session["payment_intent"])
    summary = _summary(store, session)
    if session["status"] == "expired":
        return _page("Session expired", summary + '<p data-testid="session-expired">This checkout '
                     "session has expired. Return to the merchant to start again.</p>")
    if session["status"] == "complete":
        link = (f'<a href="{_e(session["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"]))}">'
                "Return to the merchant</a>" if session["success_url"] else "")
        paid = "Payment complete." if session["payment_status"] == "paid" else \
            "Payment submitted: your bank debit is processing."
        return _page("Payment complete", summary + f'<p data-testid="session-complete">{paid}</p>{link}')
    if intent and intent["status"] == "requires_action":
        return _page("Authenticate your payment", summary + f"""
<h1>3D Secure 2 test page</h1>
<p class="note">Your bank asks you to confirm this payment.</p>
<form method="post" action="/c/pay/{_e(session['id'])}/authenticate">
<button name="outcome" value="complete" data-testid="authenticate-complete">Complete authentication</button>
<button name="outcome" value="fail" class="secondary" data-testid="authenticate-fail">Fail authentication</button>
</form>""")
    form = form or {}
    email = session["customer_email"]
    email_input = (f'<input id="email" name="email" type="email" value="{_e(email)}" readonly>'
                   if email else f'<input id="email" name="email" type="email" required '
                                 f'value="{_e(form.get("email", ""))}" placeholder="you@example.com">')
    error_html = f'<p class="error" role="alert" data-testid="payment-error">{_e(error)}</p>' if error else ""
    cancel = (f'<a class="cancel" href="{_e(session["cancel_url"])}" data-testid="cancel">Cancel and '
              "return</a>" if session["cancel_url"] else "")
    body = f"""{summary}
<form method="post" action="/c/pay/{_e(session['id'])}" id="payment-form">
<label for="email">Email</label>{email_input}
<label for="cardnumber">Card information</label>
<input id="cardnumber" name="cardnumber" inputmode="numeric" autocomplete="cc-number"
 placeholder="1234 1234 1234 1234" required>
<div class="row"><input id="cardexpiry" name="cardexpiry" placeholder="MM / YY" value="12 / 34">
<input id="cardcvc" name="cardcvc" placeholder="CVC" value="123"></div>
<label for="name">Cardholder name</label>
<input id="name" name="name" autocomplete="cc-name" value="{_e(form.get('name', ''))}">
<button type="submit" data-testid="pay">Pay {_e(_money(session['amount_total'], session['currency']))}</button>
{error_html}
</form>
<form method="post" action="/c/pay/{_e(session['id'])}/bank_debit">
<input type="hidden" name="email" value="{_e(email or '')}">
<p class="note">Test bank debit (delayed payment): the session completes now, the debit
settles later.</p>
<div class="row">
<button name="outcome" value="succeeded" class="secondary" data-testid="bank-debit-succeeds">Debit succeeds</button>
<button name="outcome" value="failed" class="secondary" data-testid="bank-debit-fails">Debit fails</button>
</div></form>
{cancel}"""
    return _page("Pay", body)


def _summary(store, session: dict) -> str:
    rows = "".join(
        f'<tr><td>{_e(item["description"])} × {item["quantity"]}</td>'
        f'<td class="r">{_e(_money(item["amount_total"], item["currency"]))}</td></tr>'
        for item in store.internal[session["id"]]["line_items"])
    return (f'<p class="note">Stripe sandbox · test mode</p><table data-testid="line-items">{rows}'
            f'</table><div class="amount" data-testid="amount">'
            f'{_e(_money(session["amount_total"], session["currency"]))}</div>')


def _money(amount: int, currency: str) -> str:
    symbol = {"usd": "$", "eur": "€", "gbp": "£"}.get(currency)
    return f"{symbol}{amount / 100:,.2f}" if symbol else f"{amount / 100:,.2f} {currency.upper()}"


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>{_e(title)}</title>
<style>{_STYLE}</style></head><body><main>{body}</main></body></html>""", status_code=status)
