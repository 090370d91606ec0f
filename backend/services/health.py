"""Reachability of what the API depends on."""
import logging

from django.conf import settings
from django.db import connection

from backend.celery_app import app as celery_app

logger = logging.getLogger(__name__)


def database_reachable() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        logger.warning("health: database unreachable", exc_info=True)
        return False


def broker_reachable() -> bool:
    try:
        with celery_app.connection_for_write(settings.CELERY_BROKER_URL) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=2)
        return True
    except Exception:
        logger.warning("health: broker unreachable", exc_info=True)
        return False
