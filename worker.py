"""The worker process: `celery -A worker worker` and `celery -A worker beat`.

Re-exports the app of backend/celery_app.py with what only a worker needs: the task
modules (autodiscovered from `backend.tasks`), a database connection check before each
task, and the webhook outbox relay (backend/tasks/relay.py), which every worker runs as a
thread, so wherever a worker runs (make run, compose, the tests' stacks) there is a relay.
"""
from celery import bootsteps, signals

from backend.celery_app import app

__all__ = ["app"]


class WebhookRelayStep(bootsteps.StartStopStep):
    # After the pool: prefork children are forked before the relay opens its connections.
    requires = {"celery.worker.components:Pool"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.relay = None

    def start(self, worker):
        from backend.tasks.relay import WebhookRelay  # needs Django set up, which the worker does first

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


app.autodiscover_tasks(["backend"])
app.steps["worker"].add(WebhookRelayStep)
