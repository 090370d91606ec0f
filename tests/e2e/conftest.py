"""The whole stack as separate processes on 127.0.0.1, for the chaos suite.

gunicorn (API), two Celery workers, Celery beat and the Stripe sandbox; PostgreSQL and
Redis are the machine's shared servers, reached by the stack through loopback proxies
(tests/e2e/chaos/proxy.py) that the test cuts to make them "unreachable". The pytest
process itself talks to PostgreSQL directly, to set up and check.
"""
import json
import logging
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from urllib.parse import urlparse, urlunparse

import pytest

from stripe_sandbox.process import SandboxProcess
from tests.e2e.chaos.proxy import TcpProxy
from tests.stack import ROOT, ApiServer, CeleryProcess, ProcessOutput, suite_relays_paused, test_database_url

SWEEP_EVERY_SECONDS = 5


def _with_address(url: str, port: int, path: str | None = None) -> str:
    parsed = urlparse(url)
    auth = parsed.netloc.rsplit("@", 1)[0] + "@" if "@" in parsed.netloc else ""
    return urlunparse(parsed._replace(netloc=f"{auth}127.0.0.1:{port}", path=path if path is not None else parsed.path))


def stack_broker_db(suite_broker_url: str) -> int:
    """The stack's own Redis database: the suite's plus 8. pytest-celery's in-process
    session worker (started by other tests in the same run) consumes the suite's
    database, and must never take the stack's tasks."""
    path = urlparse(suite_broker_url).path.strip("/")
    return (int(path or 0) + 8) % 16


@dataclass
class ChaosStack:
    postgres: TcpProxy
    redis: TcpProxy
    sandbox: SandboxProcess
    api: ApiServer
    workers: list[CeleryProcess]
    beat: CeleryProcess
    env: dict[str, str]
    stripe_secret_key: str
    webhook_secret: str
    broker: tuple[str, int, int] = ("127.0.0.1", 6379, 0)  # the real Redis and the stack's db
    command_output: list[str] = field(default_factory=list)

    def unacked_tasks(self) -> list[str]:
        """Names of the tasks Redis holds as delivered but never acknowledged (what a
        killed worker took with it), read from the real server, not through the proxy."""
        import redis

        host, port, db = self.broker
        with redis.Redis(host=host, port=port, db=db, socket_timeout=5) as client:
            messages = client.hvals("unacked")
        return [json.loads(message)[0]["headers"]["task"] for message in messages]

    def manage(self, *arguments: str, timeout: float = 120, check: bool = True) -> str:
        """`python manage.py ...` as one more stack process (through the proxies); its output
        (with `check`, the command must exit 0)."""
        output = ProcessOutput()
        result = subprocess.run([sys.executable, "manage.py", *arguments], cwd=ROOT,
                                env={**os.environ, **self.env}, stdout=output, stderr=subprocess.STDOUT,
                                timeout=timeout)
        text = output.read()
        self.command_output.append(text)
        assert result.returncode == 0 or not check, text
        return text

    def logs(self) -> str:
        """Everything the stack's processes printed so far."""
        parts = [self.api.log(), self.beat.log(), *(worker.log() for worker in self.workers),
                 sandbox_log(self.sandbox), *self.command_output]
        return "\n".join(parts)


def sandbox_log(sandbox: SandboxProcess) -> str:
    # SandboxProcess.log() keeps only the tail; the leak check needs all of it.
    path = getattr(sandbox, "_log_path", None)
    if not path or not os.path.exists(path):
        return ""
    with open(path, "rb") as log:
        return log.read().decode(errors="replace")


def _beat_schedule_fast() -> None:
    """Beat's sweeps every few seconds instead of every minute (they still only take
    rows stuck for over a minute, so this only shortens beat's own latency). The
    reconciler is not scheduled: the test runs it at the moments the issue names."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    PeriodicTask.objects.all().delete()
    every, _ = IntervalSchedule.objects.get_or_create(every=SWEEP_EVERY_SECONDS, period=IntervalSchedule.SECONDS)
    for sweep in ("webhook_events_sweep", "followups_sweep"):
        PeriodicTask.objects.create(name=sweep, task=sweep, interval=every)


def _broker_queues_cleared(host: str, port: int, db: int) -> None:
    """Nothing left from an earlier run reaches these workers: the queue and the tasks a
    killed worker left unacknowledged."""
    import redis

    with redis.Redis(host=host, port=port, db=db, socket_timeout=5) as client:
        client.delete("celery", "unacked", "unacked_index", "unacked_mutex")


@pytest.fixture
def chaos_stack(transactional_db):
    database = urlparse(test_database_url())
    suite_broker = os.environ["CELERY_BROKER_URL"]
    broker = urlparse(suite_broker)
    broker_db = stack_broker_db(suite_broker)
    _broker_queues_cleared(broker.hostname or "127.0.0.1", broker.port or 6379, broker_db)
    _beat_schedule_fast()

    stripe_secret_key = f"sk_test_chaos_{secrets.token_hex(12)}"
    webhook_secret = f"whsec_chaos_{secrets.token_hex(12)}"
    postgres = TcpProxy(database.hostname or "127.0.0.1", database.port or 5432, name="postgres").start()
    redis_proxy = TcpProxy(broker.hostname or "127.0.0.1", broker.port or 6379, name="redis").start()
    env = {
        "DATABASE_URL": _with_address(test_database_url(), postgres.port),
        "CELERY_BROKER_URL": _with_address(suite_broker, redis_proxy.port, path=f"/{broker_db}"),
        "STRIPE_SECRET_KEY": stripe_secret_key,
        "STRIPE_WEBHOOK_SECRET": webhook_secret,
        "TASK_RETRY_BASE_SECONDS": "0.2",
        "TASK_MAX_RETRIES": "8",
        # Short dependency timeouts, so the blackhole phase answers within the test's patience
        # (each still below its caller's limit: Stripe 2 x 5 s + 1 < the 15 s soft limit).
        "REDIS_TIMEOUT_SECONDS": "1",
        "DATABASE_CONNECT_TIMEOUT": "2",
        "STRIPE_TIMEOUT_SECONDS": "5",
        # Mentees here hold many unpaid or not yet confirmed checkouts at once; the per-mentee
        # limit is tested in tests/api, not what this run is about.
        "MAX_OPEN_HOLDS": "1000000",
        # Our tasks take milliseconds; a 20 s hard limit makes the sweep's "stuck in
        # processing" threshold (limit + 30 s) fit the test's time budget.
        "CELERY_TASK_SOFT_TIME_LIMIT": "15",
        "CELERY_TASK_TIME_LIMIT": "20",
        "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
        # Hundreds of bookings from one address: the abuse limits would refuse most of them.
        "RATE_LIMIT_ENABLED": "false",
    }
    api = ApiServer(env=env, workers=2, threads=4)
    # Few, quick retries: a webhook refused during the PostgreSQL outage runs out of
    # attempts, so the reconciler has real work, while short blips heal by retry.
    sandbox = SandboxProcess(webhook_url=f"{api.url}/api/payments/webhook", webhook_secret=webhook_secret,
                             retry_base=0.2, max_attempts=5, retry_max_delay=1.0, webhook_timeout=10)
    env["STRIPE_API_BASE"] = sandbox.api_base
    workers = [CeleryProcess("worker", name=f"chaos{n}", env=env) for n in (1, 2)]
    beat = CeleryProcess("beat", name="beat", env=env)
    stack = ChaosStack(postgres=postgres, redis=redis_proxy, sandbox=sandbox, api=api, workers=workers, beat=beat,
                       env=env, stripe_secret_key=stripe_secret_key, webhook_secret=webhook_secret,
                       broker=(broker.hostname or "127.0.0.1", broker.port or 6379, broker_db))
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request drowns the timeline
    started = []
    try:
        for process in (sandbox, api, *workers, beat):
            process.start()
            started.append(process)
        with suite_relays_paused():
            yield stack
    finally:
        for process in reversed(started):
            process.stop()
        for worker in workers:  # a worker restarted by the test is not in `started` twice
            worker.stop()
        redis_proxy.stop()
        postgres.stop()
        _broker_queues_cleared(broker.hostname or "127.0.0.1", broker.port or 6379, broker_db)


def pytest_collection_modifyitems(config, items):
    """The long chaos run (`make chaos`) only when asked for by its marker: not in `make test`."""
    if "chaos_long" in (config.getoption("markexpr") or ""):
        return
    long_runs = [item for item in items if item.get_closest_marker("chaos_long")]
    if long_runs:
        config.hook.pytest_deselected(items=long_runs)
        items[:] = [item for item in items if not item.get_closest_marker("chaos_long")]
