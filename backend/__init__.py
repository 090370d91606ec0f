# Importing the Celery app here makes it the current app in every process that
# loads Django (gunicorn, manage.py), so `delay_on_commit` uses the configured broker.
from worker import app as celery_app

__all__ = ["celery_app"]
