"""Where one webhook request's CPU goes: N signed events through Django's WSGI handler
in this process (the same stack gunicorn calls, minus its socket work) under cProfile, then
the cumulative time of each part per request. Needs PostgreSQL and Redis like the others.

    DATABASE_URL=... .venv/bin/python bench/profile_webhook.py      # BENCH_PROFILE_EVENTS=2000
    BENCH_PROFILE_TOP=30 also prints the top functions by own time.
"""
import cProfile
import io
import os
import pstats
import sys
import time

from _support import bench_database, django_setup, flush_broker, profiled_parts, write_results
from webhook_ingest import SECRET, signed_event

EVENTS = int(os.environ.get("BENCH_PROFILE_EVENTS", "2000"))
# part -> (file fragment, function name) whose cumulative time is that part. Nested parts
# (the INSERT inside the ingest) are reported on their own and inside their parent.
PARTS = {
    "whole request (WSGI handler)": ("django/core/handlers/wsgi.py", "__call__"),
    "view (ninja operation, incl. ingest)": ("ninja/operation.py", "run"),
    "ingest service": ("backend/services/webhooks.py", "webhook_event_ingest"),
    "signature (verify_header, HMAC)": ("stripe/_webhook.py", "verify_header"),
    "parsing (json.loads)": ("json/__init__.py", "loads"),
    "re-serialising (json.dumps)": ("json/__init__.py", "dumps"),
    "SDK objects (construct_from)": ("stripe/_stripe_object.py", "construct_from"),
    "INSERT (cursor.execute)": ("django/db/backends/utils.py", "execute"),
    "Celery publish (apply_async)": ("celery/app/task.py", "apply_async"),
    "logging": ("logging/__init__.py", "info"),
    "response (JsonResponse + schema)": ("ninja/operation.py", "_result_to_response"),
}


def environ_for(payload: bytes, headers: dict) -> dict:
    return {
        "REQUEST_METHOD": "POST", "PATH_INFO": "/api/payments/webhook", "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000", "HTTP_HOST": "127.0.0.1", "wsgi.url_scheme": "http", "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(payload)), "HTTP_STRIPE_SIGNATURE": headers["Stripe-Signature"],
        "wsgi.input": io.BytesIO(payload), "wsgi.errors": sys.stderr, "REMOTE_ADDR": "127.0.0.1",
    }


def main() -> None:
    url = bench_database("bench_profile_webhook")
    django_setup(url, STRIPE_SECRET_KEY="sk_test_bench_only", STRIPE_WEBHOOK_SECRET=SECRET)
    from django.core.wsgi import get_wsgi_application

    application = get_wsgi_application()
    flush_broker()
    statuses = []

    def start_response(status, headers):
        statuses.append(status)

    def run(n):
        for payload, headers in [signed_event() for _ in range(n)]:
            for _ in application(environ_for(payload, headers), start_response):
                pass

    run(200)  # warm up: imports, connections
    requests = [signed_event() for _ in range(EVENTS)]
    profiler = cProfile.Profile(time.process_time)  # CPU, not time spent waiting on PostgreSQL or Redis
    started = time.process_time()
    profiler.enable()
    for payload, headers in requests:
        for _ in application(environ_for(payload, headers), start_response):
            pass
    profiler.disable()
    cpu_ms = (time.process_time() - started) * 1000 / EVENTS
    flush_broker()
    bad = [s for s in statuses if not s.startswith("200")]
    if bad:
        sys.exit(f"not all answered 200: {bad[:3]}")

    total = pstats.Stats(profiler).total_tt
    parts = profiled_parts(profiler, PARTS, EVENTS)
    whole = parts["whole request (WSGI handler)"]
    parts["middleware and routing (whole - view)"] = round(whole - parts["view (ninja operation, incl. ingest)"], 3)
    print(f"{EVENTS} webhook requests in-process: {cpu_ms:.3f} ms CPU per request "
          f"(under cProfile: {total * 1000 / EVENTS:.3f} ms; it inflates small calls)")
    for name, ms in parts.items():
        print(f"  {name:<42} {ms:>7.3f} ms  {ms / whole:>5.0%}")
    write_results("profile_webhook", {"events": EVENTS, "cpu_ms_per_request": round(cpu_ms, 3),
                                      "cumulative_ms_per_request": parts})


if __name__ == "__main__":
    main()
