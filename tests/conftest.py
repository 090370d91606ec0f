"""Suite-wide setup: the suite runs on real PostgreSQL and Redis, and says clearly when one is down."""
import os
import socket
from urllib.parse import urlparse

import pytest


def _reachable(url: str, default_port: int) -> str | None:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=3):
            return None
    except OSError as exc:
        return str(exc)


def _redacted(url: str) -> str:
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@")
    return url


def pytest_sessionstart(session):
    database_url = os.environ.get("DATABASE_URL", "")
    broker_url = os.environ.get("CELERY_BROKER_URL", "")
    if not database_url.startswith("postgres"):
        pytest.exit("The suite runs on PostgreSQL: set DATABASE_URL (make test does)", returncode=3)
    if not broker_url.startswith("redis"):
        pytest.exit("The suite runs on Redis: set CELERY_BROKER_URL (make test does)", returncode=3)
    for name, url, port in (("PostgreSQL", database_url, 5432), ("Redis", broker_url, 6379)):
        error = _reachable(url, port)
        if error:
            pytest.exit(f"{name} at {_redacted(url)} is unreachable ({error}); start it and run again", returncode=3)


# --- Celery: pytest-celery's session worker, running OUR app on the Redis broker ----------


@pytest.fixture(scope="session")
def celery_session_app():
    from worker import app

    app.control.purge()  # nothing left over from an earlier run reaches this worker
    return app


@pytest.fixture(scope="session")
def celery_worker_parameters():
    # Our app keeps no results, so the worker's ping-through-results check can't work.
    return {"perform_ping_check": False, "shutdown_timeout": 30}
