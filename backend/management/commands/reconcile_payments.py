from datetime import timedelta

from django.core.management.base import BaseCommand

from backend.services.reconciliation import RECONCILE_WINDOW, payments_reconcile


class Command(BaseCommand):
    help = "Ingest Stripe events our webhook missed and settle open checkouts (what beat runs every 10 minutes)."

    def add_arguments(self, parser):
        parser.add_argument("--since", type=float, default=RECONCILE_WINDOW.total_seconds() / 3600,
                            help="hours to look back (default 72)")

    def handle(self, *args, since, **options):
        fixed = payments_reconcile(since=timedelta(hours=since))
        self.stdout.write(f"events ingested: {fixed['events_ingested']}, checkouts settled: {fixed['checkouts_settled']}")
