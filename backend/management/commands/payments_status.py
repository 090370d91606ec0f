"""One screen for an operator: readiness figures and the last hour's counts."""
import time

from django.core.management.base import BaseCommand

from backend.services.operations import last_hour_counts, operations_state, readiness


class Command(BaseCommand):
    help = "The readiness checks (as /api/health/ready), pipeline state and the last hour's counts."

    def handle(self, *args, **options):
        ok, checks = readiness()
        self.stdout.write(f"readiness: {'ok' if ok else 'DEGRADED'}")
        for name, check in checks.items():
            figure = "" if "value" not in check else f" {check['value']} (threshold {check['threshold']})"
            self.stdout.write(f"  {'ok  ' if check['ok'] else 'OVER'} {name}{figure}")
        if not checks["database"]["ok"]:
            raise SystemExit(1)
        state = operations_state()
        self.stdout.write("webhook events: " + ", ".join(f"{s} {n}" for s, n in state["events_by_status"].items()))
        self.stdout.write("refunds: " + ", ".join(f"{s} {n}" for s, n in state["refunds_by_status"].items()))
        self.stdout.write(f"queue depth: {state['queue_depth'] if state['queue_depth'] is not None else 'unknown'}")
        now = time.time()
        for name, at in sorted(state["beat_last_run"].items()):
            self.stdout.write(f"  beat {name}: {'never' if not at else f'{int(now - at)} s ago'}")
        self.stdout.write("last hour: " + ", ".join(f"{k} {v}" for k, v in last_hour_counts().items()))
        if not ok:
            raise SystemExit(1)
