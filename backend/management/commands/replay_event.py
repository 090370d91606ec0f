from django.core.management.base import BaseCommand

from backend.services.webhooks import webhook_event_replay


class Command(BaseCommand):
    help = "Process one Stripe event again now (fetched from Stripe if we never stored it)."

    def add_arguments(self, parser):
        parser.add_argument("event_id", help="evt_...")

    def handle(self, *args, event_id, **options):
        self.stdout.write(f"{event_id}: {webhook_event_replay(stripe_event_id=event_id)}")
