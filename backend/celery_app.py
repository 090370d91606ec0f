"""The Celery app object, configured from Django settings (the CELERY_* names).

A foundation: it imports no services and no tasks, so services can publish by task name
(services/dispatch.py) and ask about the broker (health, operations) without pulling the
workers' code in. The worker's own parts (task modules, the outbox relay) are attached in
`worker.py`, the process entry point.
"""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")

app = Celery("myroadmap")
app.config_from_object("django.conf:settings", namespace="CELERY")
