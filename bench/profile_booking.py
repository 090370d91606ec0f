"""Where a paid booking's worker CPU goes (issue 13, goal 2): N completed Checkouts, each
run through what the worker does for it, in this process under cProfile (CPU clock):
`process_webhook_event` for its checkout.session.completed (fulfilment, stats in the
same transaction, the confirmation queued on commit), then `send_session_notification`
for the two confirmations (locmem mail). The tasks run their real code through
`Task.__call__`; Celery's own per-message cost (receive, ack, prefork IPC) is not in here,
the end_to_end benchmark counts it. Needs PostgreSQL and Redis like the others.

    DATABASE_URL=... .venv/bin/python bench/profile_booking.py      # BENCH_PROFILE_BOOKINGS=300
    BENCH_PROFILE_TOP=30 also prints the top functions by own time.
"""
import cProfile
import os
import time
from datetime import timedelta

from _support import bench_database, django_setup, flush_broker, profiled_parts, write_results

BOOKINGS = int(os.environ.get("BENCH_PROFILE_BOOKINGS", "300"))
PARTS = {
    "process_webhook_event (whole task)": ("backend/tasks/webhooks.py", "process_webhook_event"),
    "  fulfilment (checkout_fulfil)": ("backend/services/fulfilment.py", "checkout_fulfil"),
    "  stats (mentor_stats_write; mentor_stats_recompute before)": ("backend/services/mentors.py", "mentor_stats_"),
    "  confirmation queued (apply_async)": ("celery/app/task.py", "apply_async"),
    "send_session_notification (whole task)": ("backend/tasks/notifications.py", "send_session_notification"),
    "  templates (render_to_string)": ("django/template/loader.py", "render_to_string"),
    "  calendar invite (_ics_build)": ("backend/services/notifications.py", "_ics_build"),
    "  mail (the locmem backend's send_messages)": ("django/core/mail/backends/locmem.py", "send_messages"),
    "SQL (cursor.execute, both tasks)": ("django/db/backends/utils.py", "_execute"),
    "logging (both tasks)": ("logging/__init__.py", "_log"),
}


def _bookings(n: int) -> list[tuple[dict, int]]:
    """n open Checkouts, one mentor each (as end_to_end books), with the event Stripe sends."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from backend.models import Checkout, Mentor

    mentee = get_user_model().objects.create_user(email="mentee@bench.test", password="x-bench-1", name="Mentee")
    start = (timezone.now() + timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
    made = []
    for i in range(n):
        user = get_user_model().objects.create_user(email=f"mentor{i}@bench.test", password="x-bench-1",
                                                    name=f"Mentor {i}")
        mentor = Mentor.objects.create(user=user, name=f"Mentor {i}", hourly_rate=12000, currency="usd")
        checkout = Checkout.objects.create(
            mentee=mentee, mentor=mentor, title="Career chat", description="Bench booking",
            scheduled_at=start, duration_minutes=60, ends_at=start + timedelta(minutes=60), amount=12000,
            currency="usd", stripe_checkout_session_id=f"cs_test_bench_{i}", expires_at=timezone.now() + timedelta(minutes=30))
        event = {
            "id": f"evt_bench_{i}", "object": "event", "type": "checkout.session.completed", "livemode": False,
            "api_version": "2024-06-20", "created": int(time.time()),
            "data": {"object": {
                "id": checkout.stripe_checkout_session_id, "object": "checkout.session", "mode": "payment",
                "amount_total": 12000, "currency": "usd", "payment_status": "paid", "status": "complete",
                "client_reference_id": str(checkout.pk), "metadata": {"checkout_id": str(checkout.pk)},
                "payment_intent": f"pi_bench_{i}"}},
        }
        made.append((event, checkout.pk))
    return made


def main() -> None:
    url = bench_database("bench_profile_booking")
    django_setup(url, EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend")
    from django.core import mail

    from backend.models import Notification, Session
    from backend.services.webhooks import webhook_event_store
    from backend.tasks.notifications import send_session_notification
    from backend.tasks.webhooks import process_webhook_event

    mail.outbox = []
    flush_broker()
    bookings = _bookings(2 * BOOKINGS + 20)
    for event, _ in bookings:
        webhook_event_store(event)

    def run(items):
        for event, _ in items:
            process_webhook_event(event["id"])
            session = Session.objects.only("pk").get(stripe_checkout_session_id=event["data"]["object"]["id"])
            send_session_notification(session.pk, "booked")

    run(bookings[:20])  # warm-up: imports, template loading, connections
    cpu = time.process_time()
    run(bookings[20:20 + BOOKINGS])
    cpu = (time.process_time() - cpu) * 1000 / BOOKINGS
    profiler = cProfile.Profile(time.process_time)
    profiled = time.process_time()
    profiler.enable()
    run(bookings[20 + BOOKINGS:])
    profiler.disable()
    profiled = (time.process_time() - profiled) * 1000 / BOOKINGS
    assert Notification.objects.filter(sent_at__isnull=False).count() == 2 * len(bookings), "every confirmation sent"
    assert len(mail.outbox) == 2 * len(bookings)
    flush_broker()

    parts = profiled_parts(profiler, PARTS, BOOKINGS)  # profiled ms
    print(f"{BOOKINGS} paid bookings in-process, the worker's two tasks: {cpu:.2f} ms CPU each "
          f"({profiled:.2f} ms under the profiler, which the parts below are shares of)")
    whole = parts["process_webhook_event (whole task)"] + parts["send_session_notification (whole task)"]
    for part, ms in parts.items():
        print(f"  {part:<44} {ms:8.3f} ms  {100 * ms / whole:5.1f}%")
    print("results:", write_results("profile_booking", {"bookings": BOOKINGS, "cpu_ms_per_booking": round(cpu, 3),
                                                         "cpu_ms_per_booking_profiled": round(profiled, 3),
                                                         "parts_ms_per_booking": parts}))


if __name__ == "__main__":
    main()
