import logging

from celery import shared_task

from backend.services.sessions import sessions_complete_past

logger = logging.getLogger(__name__)


@shared_task(name="sessions_complete")
def sessions_complete_task() -> int:
    """Beat, hourly: scheduled sessions that have ended become completed."""
    count = sessions_complete_past()
    logger.info("sessions_complete: %d session(s) completed", count)
    return count
