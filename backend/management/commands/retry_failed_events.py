from django.core.management.base import BaseCommand

from backend.models import WebhookEvent
from backend.services.webhooks import webhook_events_retry


class Command(BaseCommand):
    help = "Queue every failed webhook event again."

    def handle(self, *args, **options):
        failed = list(WebhookEvent.objects.filter(status=WebhookEvent.Status.FAILED).values_list("stripe_event_id", flat=True))
        queued = webhook_events_retry(stripe_event_ids=failed)
        self.stdout.write(f"{len(failed)} failed event(s), {queued} queued")
