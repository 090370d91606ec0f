"""Webhook ingest throughput: signed, distinct checkout.session.completed events against
the API under gunicorn (PostgreSQL + Redis), compared in the same run with a bare ninja
endpoint that returns {} on the same server.

    make bench            # or: DATABASE_URL=... .venv/bin/python bench/webhook_ingest.py
"""
import hashlib
import hmac
import json
import os
import sys
import time
import uuid

from _support import BROKER_URL, Gunicorn, bench_database, flush_broker, run_load, write_results

SECRET = "whsec_bench_only"
EVENTS = int(os.environ.get("BENCH_EVENTS", "1500"))
CONCURRENCY = [int(c) for c in os.environ.get("BENCH_CONCURRENCY", "1,8,32").split(",")]


def signed_event() -> tuple[bytes, dict]:
    event = {
        "id": f"evt_bench_{uuid.uuid4().hex}",
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": "checkout.session.completed",
        "data": {"object": {"id": f"cs_test_{uuid.uuid4().hex}", "object": "checkout.session",
                            "amount_total": 12000, "currency": "usd", "payment_status": "paid",
                            "metadata": {"checkout_id": "1"}}},
    }
    payload = json.dumps(event).encode()
    t = int(time.time())
    signature = hmac.new(SECRET.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return payload, {"Content-Type": "application/json", "Stripe-Signature": f"t={t},v1={signature}"}


def measure(env: dict) -> list[dict]:
    rows = []
    with Gunicorn(env, workers=int(os.environ.get("BENCH_WORKERS", "4"))) as api:
        # Warm up both paths (connections, imports) before measuring.
        run_load(api.port, [("GET", "/api/health/live", None, {})] * 50, 4)
        run_load(api.port, [("POST", "/api/payments/webhook", *signed_event())] * 50, 4)
        for concurrency in CONCURRENCY:
            webhooks = [("POST", "/api/payments/webhook", *signed_event()) for _ in range(EVENTS)]
            bare = [("GET", "/api/health/live", None, {})] * EVENTS
            w = run_load(api.port, webhooks, concurrency)
            b = run_load(api.port, bare, concurrency)
            ratio = round(w["per_second"] / b["per_second"], 2)
            rows.append({"concurrency": concurrency, "webhook": w, "bare": b, "ratio": ratio})
            print(f"c={concurrency:<3} webhook {w['per_second']:>7} ev/s p50 {w['p50_ms']:>6} ms p99 {w['p99_ms']:>7} ms"
                  f" | bare {b['per_second']:>7} req/s p50 {b['p50_ms']:>6} ms p99 {b['p99_ms']:>7} ms"
                  f" | ratio {ratio}  statuses {w['statuses']}", flush=True)
    return rows


def main() -> None:
    database_url = bench_database("bench_webhook_ingest")
    env = {"DATABASE_URL": database_url, "CELERY_BROKER_URL": BROKER_URL,
           "STRIPE_SECRET_KEY": "sk_test_bench_only", "STRIPE_WEBHOOK_SECRET": SECRET}
    flush_broker()
    try:
        rows = measure(env)
    finally:
        # The run enqueued tasks nobody will process: leave our Redis db empty.
        flush_broker()
    best = max(r["ratio"] for r in rows)
    goal_met = best >= 0.6
    print(f"webhook/bare ratio: {', '.join(str(r['ratio']) for r in rows)} (goal >= 0.6; best {best}: "
          f"{'MET' if goal_met else 'NOT MET'})")
    path = write_results("webhook_ingest", {"events_per_level": EVENTS, "levels": rows,
                                            "goal": "webhook/bare >= 0.6", "best_ratio": best, "goal_met": goal_met})
    print(f"results: {path.relative_to(path.parents[2])}")
    if any(sum(v for k, v in r["webhook"]["statuses"].items() if k != 200) for r in rows):
        sys.exit("some webhook deliveries were not answered 200")


if __name__ == "__main__":
    main()
