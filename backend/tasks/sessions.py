import logging

from celery import shared_task

from backend.services.sessions import sessions_complete_past, sessions_unpaid_at_start_cancel

logger = logging.getLogger(__name__)


@shared_task(name="sessions_complete")
def sessions_complete_task() -> int:
    """Beat, hourly: scheduled, paid sessions that have ended become completed."""
    count = sessions_complete_past()
    logger.info("sessions_complete: %d session(s) completed", count)
    return count


@shared_task(name="sessions_unpaid_at_start")
def sessions_unpaid_at_start_task() -> int:
    """Beat, every minute: sessions starting with their debit still pending are cancelled."""
    return sessions_unpaid_at_start_cancel()
