"""Webhook ingest throughput (issue 13, goal 1): signed, distinct checkout.session.completed
events POSTed to `/api/payments/webhook` under gunicorn (PostgreSQL + Redis), against two
baselines on the same server in the same run (bench/server/urls.py, never in production URLs):

- floor: reads the body, one autocommit INSERT ... ON CONFLICT DO NOTHING (goal: webhook >= 0.9 x floor)
- bare:  a ninja endpoint that answers {} (goal: webhook >= 0.5 x bare)

At concurrency 1, 8 and 32, with a new connection per request (as Stripe delivers: gunicorn's
sync workers) and with keep-alive (gthread workers, which keep connections open). Server CPU
per request is the gunicorn process tree's user+system time over the requests.

The webhook leaves the Celery publish to the outbox relay (backend/tasks/relay.py),
so a relay runs beside gunicorn (`manage.py webhook_relay`, as a worker would run it): it
shares the 2 cores, its CPU per event is reported, and every level checks that it queued
every stored event.

    make bench            # or: DATABASE_URL=... .venv/bin/python bench/webhook_ingest.py
    BENCH_EVENTS=1000  BENCH_CONCURRENCY=1,8,32  BENCH_WORKERS=2
"""
import hashlib
import hmac
import json
import os
import sys
import time
import uuid

import psycopg2
from _support import (
    BROKER_URL,
    Gunicorn,
    Relay,
    bench_database,
    flush_broker,
    process_tree_cpu_seconds,
    run_load,
    write_results,
)

SECRET = "whsec_bench_only"
EVENTS = int(os.environ.get("BENCH_EVENTS", "1000"))
CONCURRENCY = [int(c) for c in os.environ.get("BENCH_CONCURRENCY", "1,8,32").split(",")]
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
GOAL_FLOOR, GOAL_BARE = 0.9, 0.5
# Stripe's example checkout.session.completed is ~4.5 KB: pad ours to that size.
_PADDING = {"custom_fields": [], "custom_text": {"after_submit": None, "shipping_address": None, "submit": None},
            "customer_details": {"address": {"city": "South San Francisco", "country": "US", "line1": "354 Oyster Point Blvd",
                                             "line2": None, "postal_code": "94080", "state": "CA"},
                                 "email": "jenny.rosen@example.com", "name": "Jenny Rosen", "phone": None,
                                 "tax_exempt": "none", "tax_ids": []},
            "payment_method_types": ["card"], "filler": "x" * 3300}


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
                            "metadata": {"checkout_id": "1"}, **_PADDING}},
    }
    payload = json.dumps(event).encode()
    t = int(time.time())
    signature = hmac.new(SECRET.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return payload, {"Content-Type": "application/json", "Stripe-Signature": f"t={t},v1={signature}"}


def _unqueued(database_url: str) -> int:
    """Stored webhook events the relay has not queued yet."""
    with psycopg2.connect(database_url) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM backend_webhookevent WHERE status = 'received' AND queued_at IS NULL")
        return cursor.fetchone()[0]


def _level(api, relay, requests, concurrency, keep_alive, database_url) -> dict:
    cpu_before = process_tree_cpu_seconds(api.process.pid)
    relay_before = process_tree_cpu_seconds(relay.process.pid)
    figures = run_load(api.port, requests, concurrency, keep_alive=keep_alive)
    cpu = process_tree_cpu_seconds(api.process.pid) - cpu_before
    # The relay catches up within its poll interval; its CPU is counted once it has.
    deadline = time.monotonic() + 10
    while (unqueued := _unqueued(database_url)) and time.monotonic() < deadline:
        time.sleep(0.05)
    relay_cpu = process_tree_cpu_seconds(relay.process.pid) - relay_before
    per_request = max(1, figures["requests"])
    return {**figures, "server_cpu_ms_per_request": round(cpu * 1000 / per_request, 3),
            "relay_cpu_ms_per_request": round(relay_cpu * 1000 / per_request, 3), "left_unqueued": unqueued}


def measure(env: dict, keep_alive: bool) -> list[dict]:
    rows = []
    threads = 4 if keep_alive else 1  # threads > 1: gunicorn's gthread worker, which keeps connections open
    database_url = env["DATABASE_URL"]
    with Gunicorn(env, workers=WORKERS, threads=threads) as api, Relay(env) as relay:
        for path in ("/bench/bare", "/bench/floor", "/api/payments/webhook"):  # warm up every path
            run_load(api.port, [("POST", path, *signed_event()) for _ in range(50)], 4)
        for concurrency in CONCURRENCY:
            row = {"connection": "keep-alive" if keep_alive else "new", "concurrency": concurrency}
            for name, path in (("webhook", "/api/payments/webhook"), ("floor", "/bench/floor"), ("bare", "/bench/bare")):
                row[name] = _level(api, relay, [("POST", path, *signed_event()) for _ in range(EVENTS)], concurrency,
                                   keep_alive, database_url)
            row["vs_floor"] = round(row["webhook"]["per_second"] / row["floor"]["per_second"], 2)
            row["vs_bare"] = round(row["webhook"]["per_second"] / row["bare"]["per_second"], 2)
            rows.append(row)
            print(f"{row['connection']:<10} c={concurrency:<3} " + " | ".join(
                f"{n} {row[n]['per_second']:>7}/s p50 {row[n]['p50_ms']:>6} p99 {row[n]['p99_ms']:>6} ms "
                f"cpu {row[n]['server_cpu_ms_per_request']:.2f} ms" for n in ("webhook", "floor", "bare"))
                + f" | vs floor {row['vs_floor']} vs bare {row['vs_bare']} | relay cpu "
                f"{row['webhook']['relay_cpu_ms_per_request']:.2f} ms/event, unqueued {row['webhook']['left_unqueued']}"
                f" | statuses {row['webhook']['statuses']}",
                flush=True)
    return rows


def main() -> None:
    database_url = bench_database("bench_webhook_ingest")
    env = {"DATABASE_URL": database_url, "CELERY_BROKER_URL": BROKER_URL, "DJANGO_SETTINGS_MODULE": "bench.server.settings",
           "STRIPE_SECRET_KEY": "sk_test_bench_only", "STRIPE_WEBHOOK_SECRET": SECRET, "RATE_LIMIT_ENABLED": "false"}
    flush_broker()
    try:
        rows = measure(env, keep_alive=False) + measure(env, keep_alive=True)
    finally:
        # The run enqueued tasks nobody will process: leave our Redis db empty.
        flush_broker()
    worst_floor = min(r["vs_floor"] for r in rows)
    worst_bare = min(r["vs_bare"] for r in rows)
    floor_met, bare_met = worst_floor >= GOAL_FLOOR, worst_bare >= GOAL_BARE
    print(f"goal 1a webhook/floor >= {GOAL_FLOOR} at every level: worst {worst_floor}: {'met' if floor_met else 'not met'}")
    print(f"goal 1b webhook/bare >= {GOAL_BARE} at every level: worst {worst_bare}: {'met' if bare_met else 'not met'}")
    path = write_results("webhook_ingest", {"events_per_level": EVENTS, "gunicorn_workers": WORKERS, "levels": rows,
                                            "goals": {"webhook/floor >= 0.9": floor_met, "webhook/bare >= 0.5": bare_met},
                                            "worst_vs_floor": worst_floor, "worst_vs_bare": worst_bare})
    print(f"results: {path.relative_to(path.parents[2])}")
    if any(sum(v for k, v in r["webhook"]["statuses"].items() if k != 200) for r in rows):
        sys.exit("some webhook deliveries were not answered 200")
    if any(r["webhook"]["left_unqueued"] for r in rows):
        sys.exit("the relay left stored events unqueued")


if __name__ == "__main__":
    main()
