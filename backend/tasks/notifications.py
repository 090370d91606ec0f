import smtplib

from celery import shared_task
from django.db import OperationalError

from backend.services.dispatch import SEND_SESSION_NOTIFICATION
from backend.services.notifications import notification_send


@shared_task(
    name=SEND_SESSION_NOTIFICATION,
    autoretry_for=(smtplib.SMTPException, OSError, OperationalError),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def send_session_notification(session_id: int, kind: str) -> int:
    """Send one kind of session email; each recipient at most once, so retries are safe."""
    return notification_send(session_id=session_id, kind=kind)
