from django.core.management.base import BaseCommand

from backend.services.payouts import payouts_run


class Command(BaseCommand):
    help = ("Send the mentors' payouts that are due (one Stripe transfer per session), as beat's payouts_run "
            "does every minute; safe beside it. Prints what it did.")

    def add_arguments(self, parser):
        parser.add_argument("--mentor", type=int, help="only this mentor's payouts (Mentor id)")
        parser.add_argument("--budget", type=float, default=300.0,
                            help="seconds to spend sending before leaving the rest for the next run (default 300)")

    def handle(self, *args, mentor, budget, **options):
        counts = payouts_run(mentor_id=mentor, budget_seconds=budget)
        self.stdout.write("payouts_run: " + ", ".join(f"{name} {value}" for name, value in counts.items()))
