"""Checkout creation: our overhead over the Stripe call.

The API under gunicorn with the Stripe sandbox as Stripe. Each round times, one after
the other on an otherwise idle stack:
  total   = POST /api/payments/create-checkout-session end to end (bearer token, a free slot),
  sandbox = the same Stripe call made directly, in this process, through the backend's own
            gateway (backend.stripe_gateway.checkout_session_create: same SDK, same params,
            same kind of cached client) against the same sandbox;
overhead = total - sandbox, paired per round (validation, auth, the row locks and the
overlap check, the hold's INSERT, the UPDATE with Stripe's id, JSON and HTTP).
The sandbox exposes no server-side timing header, hence the paired direct call.

    make bench      # or: DATABASE_URL=... .venv/bin/python bench/checkout_create.py
    BENCH_CHECKOUTS=300
"""
import os
import sys
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

from _support import (
    BROKER_URL,
    Gunicorn,
    bench_database,
    django_setup,
    flush_broker,
    percentiles,
    request_json,
    write_results,
)

PASSWORD = "bench-pass-2026-checkout"
ROUNDS = int(os.environ.get("BENCH_CHECKOUTS", "300"))
WARMUP = 20


def seed(mentors: int) -> list[int]:
    from django.contrib.auth.hashers import make_password

    from backend.models import Mentor, User

    User.objects.create(email="mentee@bench.local", name="Bench Mentee", password=make_password(PASSWORD))
    users = User.objects.bulk_create([User(email=f"mentor{i}@bench.local", name=f"Mentor {i}", password="!")
                                      for i in range(mentors)])
    return [m.pk for m in Mentor.objects.bulk_create(
        [Mentor(user=u, name=u.name, headline="bench", hourly_rate=9000, currency="usd") for u in users])]


def main() -> None:
    from stripe_sandbox.process import SandboxProcess

    database_url = bench_database("bench_checkout_create")
    env = {"DATABASE_URL": database_url, "CELERY_BROKER_URL": BROKER_URL, "STRIPE_SECRET_KEY": "sk_test_bench_only",
           "STRIPE_WEBHOOK_SECRET": "whsec_bench_checkout",
           "MAX_OPEN_HOLDS": "1000000"}  # each mentee books many at once here; the limit is not what is measured
    with ExitStack() as stack:
        stack.callback(flush_broker)
        sandbox = stack.enter_context(SandboxProcess())  # no webhook URL: events are stored, not sent
        env["STRIPE_API_BASE"] = sandbox.api_base
        django_setup(database_url, **env)
        from backend import stripe_gateway

        mentor_ids = seed(20)
        api = stack.enter_context(Gunicorn(env, workers=2))
        status, tokens = request_json("POST", api.port, "/api/auth/login",
                                      {"email": "mentee@bench.local", "password": PASSWORD})
        if status != 200:
            raise RuntimeError(f"login: {status} {tokens}")
        headers = {"Authorization": f"Bearer {tokens['access']}"}
        base = (datetime.now(UTC) + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
        totals, sandbox_times, overheads, statuses = [], [], [], {}
        for i in range(WARMUP + ROUNDS):
            starts = base + timedelta(minutes=30 * i)  # every booking its own slot
            body = {"mentor_id": mentor_ids[i % len(mentor_ids)], "title": f"Checkout bench {i}",
                    "description": "timing the overhead", "duration_minutes": 30,
                    "scheduled_at": starts.isoformat().replace("+00:00", "Z")}
            t = time.perf_counter()
            status, answer = request_json("POST", api.port, "/api/payments/create-checkout-session", body, headers)
            total = (time.perf_counter() - t) * 1000
            statuses[status] = statuses.get(status, 0) + 1
            t = time.perf_counter()
            stripe_gateway.checkout_session_create(
                idempotency_key=f"direct:{i}", amount=4500, currency="usd",
                product_name=f"Mentor {i % len(mentor_ids)}: Checkout bench {i}",
                description=f"30 min mentorship session on {starts:%Y-%m-%d %H:%M %Z}",
                customer_email="mentee@bench.local", client_reference_id=str(100000 + i),
                metadata={"checkout_id": str(100000 + i), "mentor_id": "1", "mentee_id": "1"},
                expires_at=datetime.now(UTC) + timedelta(minutes=31),
                success_url="http://localhost:3002/sessions?success=true&session_id={CHECKOUT_SESSION_ID}",
                cancel_url="http://localhost:3002/mentors/1?canceled=true")
            direct = (time.perf_counter() - t) * 1000
            if status != 200:
                raise RuntimeError(f"checkout {i}: {status} {answer}")
            if i >= WARMUP:
                totals.append(total)
                sandbox_times.append(direct)
                overheads.append(total - direct)

    figures = {"rounds": ROUNDS, "statuses": statuses, "total": percentiles(totals),
               "sandbox": percentiles(sandbox_times), "overhead": percentiles(overheads)}
    for name in ("total", "sandbox", "overhead"):
        f = figures[name]
        print(f"{name:<9} p50 {f['p50_ms']:>7} ms  p99 {f['p99_ms']:>7} ms  max {f['max_ms']:>7} ms")
    share = round(figures["overhead"]["p50_ms"] / figures["total"]["p50_ms"], 2)
    print(f"our overhead is {share:.0%} of a checkout's p50 ({ROUNDS} sequential rounds, after {WARMUP} warm-up)")
    path = write_results("checkout_create", {**figures, "overhead_share_p50": share})
    print(f"results: {path.relative_to(path.parents[2])}")
    if set(statuses) != {200}:
        sys.exit("some checkouts failed")


if __name__ == "__main__":
    main()
