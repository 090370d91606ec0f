"""One screen for an operator: readiness figures and the last hour's counts."""
import time

from django.core.management.base import BaseCommand, CommandError

from backend.services.operations import last_hour_counts, operations_state, readiness

CHECK_ALIASES = {"beat": "beat_last_tick_age_seconds", "events": "oldest_unprocessed_event_age_seconds"}


class Command(BaseCommand):
    help = ("The readiness checks (as /api/health/ready), pipeline state and the last hour's counts. "
            "Exit status 1 when a check is over its threshold.")

    def add_arguments(self, parser):
        parser.add_argument("--check", action="append", default=[],
                            help="only this check decides the exit status (beat, events, workers, database, ...); "
                                 "repeatable. For container healthchecks.")

    def handle(self, *args, check, **options):
        ok, checks = readiness()
        if check:
            wanted = [CHECK_ALIASES.get(name, name) for name in check]
            unknown = [name for name in wanted if name not in checks]
            if unknown:
                raise CommandError(f"unknown check {', '.join(unknown)}; one of {', '.join(checks)}")
            checks = {name: checks[name] for name in wanted}
            ok = all(c["ok"] for c in checks.values())
        self.stdout.write(f"readiness: {'ok' if ok else 'DEGRADED'}")
        for name, result in checks.items():
            figure = "" if "value" not in result else f" {result['value']} (threshold {result['threshold']})"
            self.stdout.write(f"  {'ok  ' if result['ok'] else 'OVER'} {name}{figure}")
        if check or not checks["database"]["ok"]:
            if not ok:
                raise SystemExit(1)
            return
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
