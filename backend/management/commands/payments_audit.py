from datetime import datetime, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from backend.services.audit import payments_audit, payments_audit_alert


def _moment(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


class Command(BaseCommand):
    help = ("Compare every Checkout, Session and Refund of a period with Stripe; print each discrepancy, "
            "mail the admins, and exit 1 when there is one (what beat runs daily).")

    def add_arguments(self, parser):
        parser.add_argument("--days", type=float, default=1, help="the period is the last DAYS days (default 1)")
        parser.add_argument("--since", type=_moment, help="start of the period, ISO 8601 (overrides --days)")
        parser.add_argument("--until", type=_moment, help="end of the period, ISO 8601 (default now)")
        parser.add_argument("--no-mail", action="store_true", help="print only, do not mail the admins")

    def handle(self, *args, days, since, until, no_mail, **options):
        until = until or timezone.now()
        since = since or until - timedelta(days=days)
        if since >= until:
            raise CommandError("--since must be before --until")
        report = payments_audit(since=since, until=until)
        for discrepancy in report.discrepancies:
            self.stdout.write(str(discrepancy))
        self.stdout.write(f"audited {report.checkouts} checkouts, {report.sessions} sessions, {report.refunds} refunds "
                          f"from {since.isoformat()} to {until.isoformat()}; "
                          f"audit discrepancies: {len(report.discrepancies)}")
        if report.discrepancies:
            if not no_mail:
                payments_audit_alert(report)
            raise SystemExit(1)
