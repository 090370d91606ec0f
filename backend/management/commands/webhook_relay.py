"""Run the webhook outbox relay on its own (every Celery worker already runs one; this is
for a deployment that wants it apart from the workers, and for the benchmarks)."""
import signal
import threading

from django.core.management.base import BaseCommand

from backend.tasks.relay import WebhookRelay


class Command(BaseCommand):
    help = "Queue stored Stripe events for the workers until stopped (SIGTERM or Ctrl-C)."

    def handle(self, *args, **options):
        stopped = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stopped.set())
        relay = WebhookRelay().start()
        self.stdout.write("webhook relay running", self.style.SUCCESS)
        self.stdout.flush()
        stopped.wait()
        relay.stop()
