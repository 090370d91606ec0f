from ninja import Router, Schema

from backend.services.health import broker_reachable, database_reachable
from backend.services.operations import readiness

router = Router(tags=["health"])


class HealthOut(Schema):
    status: str
    database: bool
    broker: bool


class Check(Schema):
    ok: bool
    value: float | None = None
    threshold: float | None = None


class ReadyOut(Schema):
    status: str
    checks: dict[str, Check]


@router.get("", response={200: HealthOut, 503: HealthOut}, auth=None)
def health(request):
    """200 when the database and the Celery broker both answer, else 503."""
    database, broker = database_reachable(), broker_reachable()
    ok = database and broker
    return (200 if ok else 503), {"status": "ok" if ok else "degraded", "database": database, "broker": broker}


@router.get("/ready", response={200: ReadyOut, 503: ReadyOut}, auth=None)
def ready(request):
    """Database, broker, a worker answering, beat's last tick, the oldest unprocessed event and
    the failed events / refunds, each against its threshold: 503 when one is over."""
    ok, checks = readiness()
    return (200 if ok else 503), {"status": "ok" if ok else "degraded", "checks": checks}


@router.get("/live", response=dict, auth=None)
def live(request):
    """Liveness: the process answers, nothing else is checked (also the benchmarks' bare baseline)."""
    return {}
