"""The Celery app: `celery -A worker worker` and `celery -A worker beat`.

Configured from Django settings (the CELERY_* names), tasks autodiscovered from
`backend.tasks`. Every worker also runs the webhook outbox relay, which queues the events
the webhook stored (backend/services/webhook_relay.py): wherever a worker runs (make run,
compose, the tests' stacks) there is a relay, with no extra process to deploy.
"""
import os

from celery import Celery, bootsteps, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")


class WebhookRelayStep(bootsteps.StartStopStep):
    # After the pool: prefork children are forked before the relay opens its connections.
    requires = {"celery.worker.components:Pool"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.relay = None

    def start(self, worker):
        from backend.services.webhook_relay import WebhookRelay

        self.relay = WebhookRelay().start()

    def stop(self, worker):
        if self.relay is not None:
            self.relay.stop()
            self.relay = None
        # Tasks keep their database connections (settings.CELERY_DB_REUSE_MAX): the worker
        # closes them on its way out rather than leave them to the server's timeout.
        from django.db import connections

        connections.close_all()

    shutdown = terminate = stop


@signals.task_prerun.connect
def _database_connections_checked(**_):
    """Before each task, as Django does before each request: a connection past CONN_MAX_AGE,
    or one that fails its health check, is replaced (settings.CELERY_DB_REUSE_MAX)."""
    from django.db import close_old_connections

    close_old_connections()


app = Celery("myroadmap")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["backend"])
app.steps["worker"].add(WebhookRelayStep)
