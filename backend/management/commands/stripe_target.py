"""Print which Stripe this configuration talks to, and what is missing (make run calls it)."""
from django.core.management.base import BaseCommand

from backend import stripe_gateway


class Command(BaseCommand):
    help = "Say which Stripe (sandbox, real test or live) the settings point at and warn about missing settings."

    def handle(self, *args, **options):
        self.stdout.write(stripe_gateway.target_describe())
        for warning in stripe_gateway.configuration_warnings():
            self.stdout.write(self.style.WARNING(f"WARNING: {warning}"))
