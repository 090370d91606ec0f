"""The Celery app: `celery -A worker worker` and `celery -A worker beat`.

Configured from Django settings (the CELERY_* names), tasks autodiscovered from
`backend.tasks`.
"""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")

app = Celery("myroadmap")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["backend"])
