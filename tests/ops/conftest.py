"""A whole stack as separate processes for the operations tests: gunicorn (two workers), a
Celery worker and beat, and the sandbox delivering to gunicorn. JSON logs, Prometheus
multiprocess mode; its own task queue and control channel, so pytest's in-process worker
(on the same Redis) neither takes its tasks nor answers its pings."""
import json
import uuid

import httpx
import pytest

from tests.stack import ApiServer, CeleryProcess, suite_relays_paused

STACK_KEY = "sk_test_ops_stack"
STACK_SECRET = "whsec_ops_stack"


class Stack:
    def __init__(self, tmp_path):
        from stripe_sandbox.process import SandboxProcess

        self.api = ApiServer(workers=2)
        self.sandbox = SandboxProcess(webhook_url=f"{self.api.url}/api/payments/webhook", webhook_secret=STACK_SECRET,
                                      retry_base=0.1, max_attempts=6, retry_max_delay=1.0)
        tag = uuid.uuid4().hex[:8]
        self.env = {
            "LOG_FORMAT": "json",
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
            "STRIPE_SECRET_KEY": STACK_KEY,
            "STRIPE_WEBHOOK_SECRET": STACK_SECRET,
            "STRIPE_API_BASE": self.sandbox.api_base,
            "CELERY_TASK_DEFAULT_QUEUE": f"ops_{tag}",
            "CELERY_CONTROL_EXCHANGE": f"ops_{tag}",
            "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
            "HEALTH_WORKER_PING_TIMEOUT": "1.0",
        }
        self.api.env = self.env
        self.worker = CeleryProcess("worker", name=f"ops{tag}", env=self.env)
        self.beat = CeleryProcess("beat", name=f"beat{tag}", env=self.env,
                                  arguments=["--loglevel", "INFO", "--schedule", str(tmp_path / "beat-schedule")])

    def __enter__(self):
        self.sandbox.start()
        self.api.start()
        self.worker.start()
        self.beat.start()
        return self

    def __exit__(self, *exc_info):
        for process in (self.beat, self.worker, self.api, self.sandbox):
            process.stop()

    def get(self, path: str, **kwargs) -> httpx.Response:
        return httpx.get(f"{self.api.url}{path}", timeout=10, **kwargs)

    def post(self, path: str, **kwargs) -> httpx.Response:
        return httpx.post(f"{self.api.url}{path}", timeout=10, **kwargs)

    def logs(self) -> dict[str, list[dict]]:
        """Every JSON record each process printed, by process."""
        return {"web": json_records(self.api.log()), "worker": json_records(self.worker.log()),
                "beat": json_records(self.beat.log())}


def json_records(text: str) -> list[dict]:
    records = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except ValueError:
                pass
    return records


@pytest.fixture(scope="module")
def stack(django_db_setup, django_db_blocker, tmp_path_factory):
    with suite_relays_paused(), Stack(tmp_path_factory.mktemp("metrics")) as running:
        yield running
