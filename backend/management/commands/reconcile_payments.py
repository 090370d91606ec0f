from datetime import timedelta

from django.core.management.base import BaseCommand

from backend.services.reconciliation import RECONCILE_WINDOW, payments_reconcile


class Command(BaseCommand):
    help = "Ingest Stripe events our webhook missed and settle open checkouts (what beat runs every 10 minutes)."

    def add_arguments(self, parser):
        parser.add_argument("--since", type=float, default=None,
                            help="hours of Stripe's events to read (default: from the last scan's high-water mark, "
                                 f"or {RECONCILE_WINDOW.total_seconds() / 3600:.0f} on the first)")

    def handle(self, *args, since, **options):
        fixed = payments_reconcile(since=None if since is None else timedelta(hours=since))
        self.stdout.write(f"events ingested: {fixed['events_ingested']}, checkouts settled: {fixed['checkouts_settled']}, "
                          f"errors: {fixed['errors']}")
