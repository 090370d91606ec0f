"""`make run` on a fresh clone with no environment: installs, migrates, seeds, serves, and its worker works.

This is the README's first command, run for real: a `git clone` of this repository's
HEAD, a new virtualenv, SQLite and the filesystem broker, gunicorn, worker and beat
started by honcho. Only loopback is used; the stack is stopped at the end.
"""
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from stripe_sandbox.process import SandboxControl

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post_json(url: str, body: dict, token: str | None = None) -> dict:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, json.loads(response.read())


class Output:
    """Collects a process's output in a thread so the test can wait for a line."""

    def __init__(self, stream):
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream):
        for line in stream:
            self.lines.append(line)

    def wait_for(self, *parts: str, timeout: float) -> bool:
        """True once one line contains every part."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(all(p in line for p in parts) for line in self.lines):
                return True
            time.sleep(0.2)
        return False

    def tail(self, n=60) -> str:
        return "".join(self.lines[-n:])


def test_make_run_on_a_fresh_clone_serves_the_seeded_api_and_runs_tasks(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    api_port, sandbox_port = free_port(), free_port()
    # A bare environment: no DATABASE_URL, no broker URL, no Stripe key.
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "LANG": "C.UTF-8",
        "API_PORT": str(api_port),
        "SANDBOX_PORT": str(sandbox_port),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    stack = subprocess.Popen(
        ["make", "run"], cwd=clone, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )
    output = Output(stack.stdout)
    base = f"http://127.0.0.1:{api_port}"
    try:
        deadline = time.monotonic() + 420  # includes creating the virtualenv and installing
        health = None
        while time.monotonic() < deadline and stack.poll() is None:
            try:
                health = get_json(f"{base}/api/health")
                break
            except OSError:
                time.sleep(1)
        assert health is not None, f"API never answered; make run output:\n{output.tail()}"
        assert health == (200, {"status": "ok", "database": True, "broker": True})
        assert (clone / "var" / "db.sqlite3").exists()

        status, mentors = get_json(f"{base}/api/mentors?page_size=50")
        assert status == 200 and mentors["count"] == 12
        assert {m["currency"] for m in mentors["items"]} >= {"usd", "eur", "gbp"}

        assert output.wait_for("celery@", "ready", timeout=60), output.tail()
        # make run made its secret key once, under var/ (not in git), and handed it to its processes.
        secret_key = (clone / "var" / "django_secret_key").read_text().strip()
        assert len(secret_key) >= 50 and secret_key not in (ROOT / "Makefile").read_text()
        subprocess.run(
            [".venv/bin/python", "manage.py", "shell", "-c",
             "from backend.tasks import mentor_stats_recompute_task as t; t.delay(1)"],
            cwd=clone, env={**env, "DJANGO_SECRET_KEY": secret_key}, check=True, timeout=60,
        )
        assert output.wait_for("Task mentor_stats_recompute[", "succeeded", timeout=60), output.tail()
        status, mentor = get_json(f"{base}/api/mentors/1")
        assert mentor["stats"]["updated_at"] is not None

        # What a newcomer is told, and the pages and docs served by gunicorn (static files by whitenoise).
        assert output.wait_for("Stripe: the offline sandbox at", timeout=5), output.tail()
        assert output.wait_for("admin login:", "admin@demo.myroadmap.local", timeout=5), output.tail()
        with urllib.request.urlopen(f"{base}/mentors", timeout=10) as page:
            assert b"Ada Lovelace" in page.read()
        for asset in ("/static/web/site.css", "/static/ninja/swagger-ui-bundle.js"):
            with urllib.request.urlopen(f"{base}{asset}", timeout=10) as served:
                assert served.status == 200, asset

        # No STRIPE_SECRET_KEY: the sandbox stands in for Stripe, wired to our webhook.
        assert get_json(f"{base}/api/payments/config")[1]["publishable_key"].startswith("pk_test_")
        sandbox = SandboxControl(f"http://127.0.0.1:{sandbox_port}")
        token = post_json(f"{base}/api/auth/login", {"email": "mentee@demo.myroadmap.local", "password": "demo-pass-2026"})
        checkout = post_json(
            f"{base}/api/payments/create-checkout-session",
            {"mentor_id": 1, "title": "Smoke test", "description": "", "duration_minutes": 30,
             "scheduled_at": (datetime.now(timezone.utc) + timedelta(days=2)).replace(microsecond=0).isoformat()},
            token=token["access"],
        )
        assert checkout["checkout_url"].startswith(f"http://127.0.0.1:{sandbox_port}/")
        assert sandbox.pay(checkout["session_id"])["outcome"] == "succeeded"
        sandbox.wait_until_delivered(timeout=30)
        completed = sandbox.deliveries(event_type="checkout.session.completed")
        assert completed and completed[-1]["succeeded"], completed
    finally:
        os.killpg(stack.pid, signal.SIGTERM)
        try:
            stack.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(stack.pid, signal.SIGKILL)
            stack.wait()
