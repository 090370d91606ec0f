"""Each pytest-xdist worker on its own Redis database (loaded with `-p`, see pytest.ini).

pytest-django gives each worker its own PostgreSQL test database (test_<name>_gw0, _gw1...);
this gives each its own Redis db too: the base db of CELERY_BROKER_URL (and of CACHE_URL,
if it names Redis) plus the worker's index, so gw0 keeps the base db and gw1 takes the next.
Without that, the workers' in-process Celery workers would take each other's tasks (each
for a database where its row does not exist), and one worker's purge would drop another's.

It runs when this module is imported: pytest-django imports the settings (which read the
URLs) before any conftest.py is loaded, but after `-p` plugins are. Processes the tests start
(gunicorn, celery, manage.py, a nested pytest) inherit the derived URLs.
"""
import os
from urllib.parse import urlparse, urlunparse

# Set once derived, so a pytest that a test starts (it inherits PYTEST_XDIST_WORKER) takes
# the URLs it is given as they are.
DERIVED_FOR = "TESTS_REDIS_DB_DERIVED_FOR"


def worker_index() -> int:
    """0 for gw0 or when not under xdist, 1 for gw1..."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0


def worker_count() -> int:
    return int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)


def redis_db(url: str) -> int:
    return int(urlparse(url).path.strip("/") or 0)


def with_redis_db(url: str, db: int) -> str:
    return urlunparse(urlparse(url)._replace(path=f"/{db}"))


def _derive() -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker or os.environ.get(DERIVED_FOR) == worker:
        return
    for name in ("CELERY_BROKER_URL", "CACHE_URL"):
        url = os.environ.get(name, "")
        if url.startswith(("redis://", "rediss://")):
            db = redis_db(url) + worker_index()
            if db > 15:
                raise RuntimeError(f"{name}={url}: worker {worker} would need Redis db {db} (0-15 exist); "
                                   "use a lower base db or fewer workers")
            os.environ[name] = with_redis_db(url, db)
    os.environ[DERIVED_FOR] = worker


_derive()
