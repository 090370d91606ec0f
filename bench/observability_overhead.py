"""What metrics and structured logs cost the webhook: the same signed events POSTed to the API
under gunicorn, in the same run, with operations "off" (plain logs at WARNING, counters in
process memory) and "on" as production runs it (LOG_FORMAT=json at INFO, so each delivery
writes its JSON line, and Prometheus multiprocess mode, so each counter increment is an mmap
write). A third server, "metrics", has the
multiprocess counters without the JSON lines, to tell the two apart. Rounds alternate to
spread drift. Then, in-process, the cost of one
`metrics.webhook_delivery` call and of one formatted log record.

    make bench            # or: DATABASE_URL=... .venv/bin/python bench/observability_overhead.py
"""
import os
import statistics
import subprocess
import sys
import tempfile

from _support import BROKER_URL, Gunicorn, bench_database, flush_broker, run_load, write_results
from webhook_ingest import SECRET, signed_event

EVENTS = int(os.environ.get("BENCH_OBS_EVENTS", "1000"))
CONCURRENCY = [int(c) for c in os.environ.get("BENCH_OBS_CONCURRENCY", "1,8").split(",")]
ROUNDS = int(os.environ.get("BENCH_OBS_ROUNDS", "2"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "4"))


def server_round(env: dict, concurrency: int) -> dict:
    with Gunicorn(env, workers=WORKERS) as api:
        run_load(api.port, [("POST", "/api/payments/webhook", *signed_event())] * 50, 4)  # warm up
        return run_load(api.port, [("POST", "/api/payments/webhook", *signed_event()) for _ in range(EVENTS)],
                        concurrency)


def in_process_costs() -> dict:
    """µs per call, each measured in a fresh interpreter (multiprocess mode is fixed at import)."""
    code = r"""
import io, logging, os, sys, timeit
sys.path.insert(0, os.getcwd())
import django
django.setup()
from backend.observability import context, metrics
from backend.observability.logging import JsonLogFormatter, PlainFormatter, RedactingFilter
n = 20000
call = timeit.timeit(lambda: metrics.webhook_delivery(event_type="checkout.session.completed", outcome="stored"), number=n)
context.bind(request_id="0" * 32, stripe_event_id="evt_1NfakeEventId000", session_id="cs_test_a1B2c3D4")
record = logging.LogRecord("backend.services.webhooks", logging.INFO, "bench", 1,
                           "webhook %s (%s): stored as %s", ("evt_1NfakeEventId000", "checkout.session.completed", "received"), None)
context.ContextFilter().filter(record)
json_fmt, plain_fmt, redact = JsonLogFormatter(), PlainFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"), RedactingFilter()
json_cost = timeit.timeit(lambda: (redact.filter(record), json_fmt.format(record)), number=n)
plain_cost = timeit.timeit(lambda: plain_fmt.format(record), number=n)
print(round(call / n * 1e6, 2), round(json_cost / n * 1e6, 2), round(plain_cost / n * 1e6, 2))
"""
    results = {}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for mode, extra in (("in_memory", {}), ("multiprocess", {"PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp()})):
        env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        output = subprocess.run([sys.executable, "-c", code], cwd=root, env={**env, **extra, "DJANGO_SETTINGS_MODULE": "backend.settings"},
                                capture_output=True, text=True, check=True).stdout.split()
        results[mode] = {"counter_call_us": float(output[0]), "json_record_us": float(output[1]),
                         "plain_record_us": float(output[2])}
    return results


def main() -> None:
    database_url = bench_database("bench_webhook_ingest")
    base = {"DATABASE_URL": database_url, "CELERY_BROKER_URL": BROKER_URL,
            "STRIPE_SECRET_KEY": "sk_test_bench_only", "STRIPE_WEBHOOK_SECRET": SECRET}
    metrics_dir = tempfile.mkdtemp(prefix="bench_metrics_")
    configs = {
        "off": {**base, "LOG_LEVEL": "WARNING", "LOG_FORMAT": "plain"},
        "metrics": {**base, "LOG_LEVEL": "WARNING", "LOG_FORMAT": "plain", "PROMETHEUS_MULTIPROC_DIR": metrics_dir},
        "on": {**base, "LOG_LEVEL": "INFO", "LOG_FORMAT": "json", "PROMETHEUS_MULTIPROC_DIR": metrics_dir},
    }
    flush_broker()
    rows = []
    try:
        for concurrency in CONCURRENCY:
            runs = {name: [] for name in configs}
            for _ in range(ROUNDS):
                for name in configs:
                    runs[name].append(server_round(configs[name], concurrency))
            row = {"concurrency": concurrency}
            for name, results in runs.items():
                row[name] = {"per_second": round(statistics.median(r["per_second"] for r in results), 1),
                             "p50_ms": round(statistics.median(r["p50_ms"] for r in results), 2),
                             "p99_ms": round(statistics.median(r["p99_ms"] for r in results), 2),
                             "statuses": [r["statuses"] for r in results]}
            row["throughput_change_pct"] = round(100 * (row["on"]["per_second"] / row["off"]["per_second"] - 1), 1)
            rows.append(row)
            print(f"c={concurrency:<3} " + " | ".join(
                f"{name} {row[name]['per_second']:>7} ev/s p50 {row[name]['p50_ms']:>6} ms" for name in configs)
                + f" | on vs off {row['throughput_change_pct']:+}%", flush=True)
    finally:
        flush_broker()
    costs = in_process_costs()
    for mode, figures in costs.items():
        print(f"in-process ({mode} counters): webhook_delivery {figures['counter_call_us']} µs/call, "
              f"JSON record {figures['json_record_us']} µs, plain record {figures['plain_record_us']} µs")
    path = write_results("observability_overhead", {"events_per_round": EVENTS, "rounds": ROUNDS, "levels": rows,
                                                    "in_process": costs})
    print(f"results: {path.relative_to(path.parents[2])}")
    bad = [s for r in rows for name in configs for st in r[name]["statuses"] for code, s in st.items() if code != 200]
    if bad:
        sys.exit("some webhook deliveries were not answered 200")


if __name__ == "__main__":
    main()
