# Importing the Celery app here makes it the current app in every process that loads
# Django (gunicorn, manage.py), so tasks sent by name use the configured broker.
from backend.celery_app import app as celery_app

__all__ = ["celery_app"]
