"""Run the sandbox as a subprocess and drive its control API, for test suites and scripts.

    with SandboxProcess(webhook_url=receiver.url, webhook_secret="whsec_test") as sandbox:
        client = sandbox.stripe_client()
        session = client.v1.checkout.sessions.create(params={...})
        sandbox.pay(session.id, card="4242424242424242")

The backend never imports this; it only knows the sandbox's URL (STRIPE_API_BASE).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

_PACKAGE_PARENT = str(Path(__file__).resolve().parent.parent)


class SandboxControlError(Exception):
    def __init__(self, status_code: int, body):
        message = body.get("error", {}).get("message") if isinstance(body, dict) else body
        super().__init__(f"{status_code}: {message}")
        self.status_code = status_code
        self.body = body


class SandboxControl:
    """Client of the /_sandbox control API of a running sandbox."""

    def __init__(self, api_base: str, timeout: float = 10.0):
        self.api_base = api_base.rstrip("/")
        self.timeout = timeout

    def stripe_client(self, api_key: str = "sk_test_sandbox", **options):
        """The official SDK's client, pointed at this sandbox."""
        import stripe
        return stripe.StripeClient(api_key, base_addresses={"api": self.api_base}, **options)

    def _call(self, method: str, path: str, json: dict | None = None, params: dict | None = None):
        response = httpx.request(method, f"{self.api_base}/_sandbox{path}", json=json,
                                 params=params, timeout=self.timeout)
        body = response.json()
        if response.status_code >= 400:
            raise SandboxControlError(response.status_code, body)
        return body

    # ---- Payments, as a customer would make them on the hosted page -----------------

    def pay(self, session_id: str, card: str | None = "4242424242424242", *,
            method: str | None = None, outcome: str = "succeeded", email: str | None = None,
            name: str | None = None, three_d_secure: str | None = None,
            settle_after: int | None = None) -> dict:
        """Pay a Checkout Session with a test card, or with `method="bank_debit"` and the
        debit's later `outcome` ("succeeded" | "failed"). Card 4000002500003155 stops at
        authentication unless `three_d_secure` is "complete" or "fail". Returns
        {"outcome", "error"?, "session", "payment_intent"}."""
        if method == "bank_debit":
            body = {"method": "bank_debit", "outcome": outcome, "settle_after": settle_after}
        else:
            body = {"card": card, "three_d_secure": three_d_secure}
        body.update(email=email, name=name)
        return self._call("POST", f"/checkout/sessions/{session_id}/pay",
                          {key: value for key, value in body.items() if value is not None})

    def authenticate(self, session_id: str, outcome: str = "complete") -> dict:
        return self._call("POST", f"/checkout/sessions/{session_id}/authenticate", {"outcome": outcome})

    def expire_session(self, session_id: str) -> dict:
        """Expire an open session as its deadline would (no API request, clock unchanged)."""
        return self._call("POST", f"/checkout/sessions/{session_id}/expire")

    # ---- The Stripe Dashboard ---------------------------------------------------------

    def refund_charge(self, charge_id: str, amount: int | None = None,
                      reason: str | None = None) -> dict:
        body = {"amount": amount, "reason": reason}
        return self._call("POST", f"/charges/{charge_id}/refund",
                          {key: value for key, value in body.items() if value is not None})

    def dispute_charge(self, charge_id: str, reason: str = "fraudulent") -> dict:
        return self._call("POST", f"/charges/{charge_id}/dispute", {"reason": reason})

    # ---- Time --------------------------------------------------------------------------

    def advance_clock(self, seconds: float) -> dict:
        return self._call("POST", "/clock/advance", {"seconds": seconds})

    def clock(self) -> dict:
        return self._call("GET", "/clock")

    # ---- Webhook delivery ------------------------------------------------------------

    def set_faults(self, *, duplicate_rate: float | None = None, reorder_window: int | None = None,
                   delay_ms: int | None = None, fail_first: int | None = None,
                   seed: int | None = None) -> dict:
        body = {"duplicate_rate": duplicate_rate, "reorder_window": reorder_window,
                "delay_ms": delay_ms, "fail_first": fail_first, "seed": seed}
        return self._call("POST", "/webhooks/faults",
                          {key: value for key, value in body.items() if value is not None})

    def clear_faults(self) -> dict:
        return self._call("POST", "/webhooks/faults", {"duplicate_rate": 0, "reorder_window": 0,
                                                       "delay_ms": 0, "fail_first": 0, "seed": None})

    def set_api_faults(self, *, latency_ms: int = 0, path_prefix: str = "/v1/") -> dict:
        """Make the Stripe API slow: requests under `path_prefix` answer `latency_ms` later."""
        return self._call("POST", "/api/faults", {"latency_ms": latency_ms, "path_prefix": path_prefix})

    def pause(self) -> dict:
        return self._call("POST", "/webhooks/pause")

    def resume(self) -> dict:
        return self._call("POST", "/webhooks/resume")

    def webhook_status(self) -> dict:
        return self._call("GET", "/webhooks")

    def deliveries(self, event_id: str | None = None, event_type: str | None = None) -> list[dict]:
        """Every delivery attempt: event_id, event_type, attempt, status_code, succeeded, time (unix)"""
        query = {key: value for key, value in {"event_id": event_id, "event_type": event_type}.items()
                 if value is not None}
        return self._call("GET", "/deliveries", params=query)["data"]

    def resend(self, event_id: str) -> dict:
        return self._call("POST", f"/events/{event_id}/resend")

    def wait_until_delivered(self, timeout: float = 10.0) -> None:
        """Block until no delivery is queued or in flight (paused counts as not idle)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.webhook_status()
            if not status["queued"] and not status["in_flight"] and not status["paused"]:
                return
            time.sleep(0.05)
        raise TimeoutError(f"webhook deliveries still pending after {timeout}s: {status}")

    def reset(self) -> dict:
        return self._call("POST", "/reset")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SandboxProcess(SandboxControl):
    """`python -m stripe_sandbox` as a subprocess on 127.0.0.1, plus its control client."""

    def __init__(self, port: int | None = None, webhook_url: str | None = None,
                 webhook_secret: str | None = None, retry_base: float = 0.05, *,
                 max_attempts: int = 8, retry_max_delay: float = 2.0, webhook_timeout: float = 3.0,
                 bank_debit_delay: int = 60, api_key: str | None = None,
                 state_file: str | None = None, public_url: str | None = None,
                 webhook_events: list[str] | None = None,
                 startup_timeout: float = 20.0, extra_args: list[str] | None = None):
        self.port = port or free_port()
        super().__init__(f"http://127.0.0.1:{self.port}")
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.arguments = ["--host", "127.0.0.1", "--port", str(self.port),
                          "--retry-base", str(retry_base), "--retry-max-delay", str(retry_max_delay),
                          "--max-attempts", str(max_attempts), "--webhook-timeout", str(webhook_timeout),
                          "--bank-debit-delay", str(bank_debit_delay)]
        for flag, value in (("--webhook-url", webhook_url), ("--webhook-secret", webhook_secret),
                            ("--api-key", api_key), ("--state", state_file),
                            ("--public-url", public_url),
                            ("--webhook-events", ",".join(webhook_events or []))):
            if value:
                self.arguments += [flag, value]
        self.arguments += extra_args or []
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen | None = None
        self._log_path: str | None = None

    def start(self) -> "SandboxProcess":
        environment = dict(os.environ)
        # The sandbox's configuration is exactly its flags, whatever the caller's env says.
        for name in ("SANDBOX_WEBHOOK_URL", "STRIPE_WEBHOOK_SECRET", "SANDBOX_API_KEY",
                     "SANDBOX_STATE", "SANDBOX_PUBLIC_URL", "SANDBOX_WEBHOOK_EVENTS"):
            environment.pop(name, None)
        environment["PYTHONPATH"] = os.pathsep.join(
            filter(None, [_PACKAGE_PARENT, environment.get("PYTHONPATH")]))
        descriptor, self._log_path = tempfile.mkstemp(prefix="stripe_sandbox_", suffix=".log")
        os.close(descriptor)
        # Append mode: the child's writes never race with our reads of the same file.
        with open(self._log_path, "ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "stripe_sandbox", *self.arguments],
                stdout=log, stderr=subprocess.STDOUT, env=environment)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"stripe_sandbox exited with {self._process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.api_base}/_sandbox/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"stripe_sandbox did not answer within {self.startup_timeout}s:\n{self.log()}")

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=5)
        self._process = None
        if self._log_path and os.path.exists(self._log_path):
            os.unlink(self._log_path)
        self._log_path = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log(self) -> str:
        """The last lines the sandbox printed (errors, tracebacks)."""
        if not self._log_path or not os.path.exists(self._log_path):
            return ""
        with open(self._log_path, "rb") as log:
            return log.read().decode(errors="replace")[-4000:]

    def __enter__(self) -> "SandboxProcess":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
