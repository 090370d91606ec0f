"""Celery tasks: thin wrappers that load by id, call a service and declare retries.

Every task module is imported here so `app.autodiscover_tasks(["backend"])` finds them.
"""
from backend.tasks.mentors import mentor_stats_recompute_task
from backend.tasks.sessions import sessions_complete_task
from backend.tasks.webhooks import process_webhook_event

__all__ = ["mentor_stats_recompute_task", "process_webhook_event", "sessions_complete_task"]
