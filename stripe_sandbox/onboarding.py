"""The hosted Connect onboarding page an account link's `url` opens: the account holder
completes it (charges, payouts and transfers enabled) or leaves it with requirements
due, and is sent to the link's return_url. A link that expired or was used already
sends the browser to its refresh_url, where the platform makes a new one (as on Stripe)."""

from __future__ import annotations

import html

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse
from starlette.routing import Route

from .connect import ONBOARDING_PATH
from .forms import decode_form
from .page import _STYLE
from .sandbox import Sandbox


def routes(sandbox: Sandbox) -> list[Route]:
    store, connect = sandbox.store, sandbox.connect
    path = ONBOARDING_PATH.replace("{account}", "{account_id}")

    async def show(request: Request):
        account_id, token = request.path_params["account_id"], request.path_params["token"]
        with store.lock:
            link = connect.onboarding_link(account_id, token)
            if link is None:
                return _page("Not found", "<p>This onboarding link does not exist.</p>", status=404)
            if not connect.onboarding_link_usable(account_id, token):
                return RedirectResponse(link["refresh_url"], status_code=303)
            account = store.get(account_id, "account")
            due = account["requirements"]["currently_due"]
        items = "".join(f"<li>{_e(item)}</li>" for item in due) or "<li>nothing</li>"
        return _page("Set up payouts", f"""
<p class="note">Stripe sandbox · test mode · Connect onboarding</p>
<h1>Get paid by the platform</h1>
<p>Account <code data-testid="onboarding-account">{_e(account_id)}</code>{f" ({_e(account['email'])})" if account['email'] else ""}</p>
<p class="note">Stripe still needs:</p><ul data-testid="onboarding-due">{items}</ul>
<form method="post" action="{_e(request.url.path)}">
<label for="name">Legal name</label><input id="name" name="name" value="Test Mentor">
<label for="routing">Bank routing number</label><input id="routing" name="routing" value="110000000">
<label for="account_number">Bank account number</label><input id="account_number" name="account_number" value="000123456789">
<button name="outcome" value="complete" data-testid="onboarding-complete">Submit and finish</button>
<button name="outcome" value="requirements_due" class="secondary" data-testid="onboarding-leave-due">Save and finish later (leave requirements due)</button>
</form>""")

    async def submit(request: Request):
        account_id, token = request.path_params["account_id"], request.path_params["token"]
        form = decode_form((await request.body()).decode())
        with store.lock:
            if connect.onboarding_link(account_id, token) is None:
                return _page("Not found", "<p>This onboarding link does not exist.</p>", status=404)
            outcome = "complete" if form.get("outcome") == "complete" else "requirements_due"
            target = connect.onboarding_submit(account_id, token, outcome)
        return RedirectResponse(target, status_code=303)

    return [Route(path, show, methods=["GET"]), Route(path, submit, methods=["POST"])]


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>{_e(title)}</title>
<style>{_STYLE}</style></head><body><main>{body}</main></body></html>""", status_code=status)
