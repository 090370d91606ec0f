from celery import shared_task
from django.db import OperationalError

from backend.services.dispatch import MENTOR_STATS_RECOMPUTE
from backend.services.mentors import mentor_stats_recompute


@shared_task(
    name=MENTOR_STATS_RECOMPUTE,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def mentor_stats_recompute_task(mentor_id: int) -> None:
    """Recompute one mentor's stats; idempotent, so safe to run late or twice."""
    mentor_stats_recompute(mentor_id=mentor_id)
