from ninja import Router, Schema

from backend.services.health import broker_reachable, database_reachable

router = Router(tags=["health"])


class HealthOut(Schema):
    status: str
    database: bool
    broker: bool


@router.get("", response={200: HealthOut, 503: HealthOut}, auth=None)
def health(request):
    """200 when the database and the Celery broker both answer, else 503."""
    database, broker = database_reachable(), broker_reachable()
    ok = database and broker
    return (200 if ok else 503), {"status": "ok" if ok else "degraded", "database": database, "broker": broker}


@router.get("/live", response=dict, auth=None)
def live(request):
    """Liveness: the process answers, nothing else is checked (also the benchmarks' bare baseline)."""
    return {}
