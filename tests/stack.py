"""Processes of our own stack for whole-stack tests: the API under gunicorn and Celery
worker/beat processes, pointed at the test database that pytest-django created."""
import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent


def test_database_url() -> str:
    db = settings.DATABASES["default"]
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@contextmanager
def suite_relays_paused():
    """While a stack of our own runs against the test database, the relay of the suite's
    in-process worker (pytest-celery's, if a test started it) claims nothing: it would queue
    the stack's events on the suite's broker, and the stack's own workers would never see them."""
    from backend.tasks.relay import relays_running

    relays = relays_running()
    for relay in relays:
        relay.pause()
    try:
        yield
    finally:
        for relay in relays:
            relay.resume()


def free_port() -> int:
    from stripe_sandbox.process import free_port as sandbox_free_port

    return sandbox_free_port()


class ProcessOutput:
    """A child's stdout+stderr in an unlinked temporary file: the child appends through its
    own handle, we read through another, so reading never moves the child's write offset."""

    def __init__(self):
        descriptor, path = tempfile.mkstemp(prefix="stack_", suffix=".log")
        os.close(descriptor)
        self._writer = open(path, "ab")
        self._reader = open(path, "rb")
        os.unlink(path)

    def fileno(self) -> int:
        return self._writer.fileno()

    def read(self) -> str:
        self._reader.seek(0)
        return self._reader.read().decode(errors="replace")


class ApiServer:
    """gunicorn serving backend.wsgi on 127.0.0.1 with the test database and `env` on top."""

    def __init__(self, env: dict[str, str] | None = None, workers: int = 2, threads: int = 1):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env or {}
        self.workers, self.threads = workers, threads
        self._process = None
        self._log = None

    def start(self) -> "ApiServer":
        environment = {**os.environ, "DATABASE_URL": test_database_url(), **self.env}
        self._log = ProcessOutput()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "backend.wsgi", "--bind", f"127.0.0.1:{self.port}",
             "--workers", str(self.workers), "--threads", str(self.threads)],
            cwd=ROOT, env=environment, stdout=self._log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self.log()}")
            try:
                httpx.get(f"{self.url}/api/docs", timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn did not start:\n{self.log()}")

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def log(self) -> str:
        return self._log.read()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


class CeleryProcess:
    """`python -m celery -A worker <command>` as its own process group, so SIGKILL can take
    the pool's children with it, as a machine or container dying would.

    `env` goes on top of ours and the test database's URL; output is kept for the test.
    """

    READY = {"worker": " ready.", "beat": "beat: Starting..."}

    def __init__(self, command: str = "worker", *, name: str = "worker", env: dict[str, str] | None = None,
                 arguments: list[str] | None = None):
        self.command, self.name = command, name
        self.env = env or {}
        self.arguments = arguments if arguments is not None else (
            ["--concurrency", "2", "--loglevel", "INFO", "--hostname", f"{name}@%h"] if command == "worker"
            else ["--loglevel", "INFO"])
        self._process: subprocess.Popen | None = None
        self._logs: list[ProcessOutput] = []  # one per start: a restart keeps the old output

    def start(self, timeout: float = 60) -> "CeleryProcess":
        environment = {**os.environ, "DATABASE_URL": test_database_url(), "PYTHONUNBUFFERED": "1", **self.env}
        log = ProcessOutput()
        self._logs.append(log)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "worker", self.command, *self.arguments],
            cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"celery {self.command} {self.name} exited:\n{self.log()[-4000:]}")
            if self.READY[self.command] in self._current_log():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"celery {self.command} {self.name} not ready in {timeout}s:\n{self.log()[-4000:]}")

    def kill(self) -> None:
        """SIGKILL to the whole process group: no warm shutdown, no acks, nothing restored."""
        if self.running:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=10)

    def stop(self, timeout: float = 15) -> None:
        if not self.running:
            return
        os.killpg(self._process.pid, signal.SIGTERM)
        try:
            self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=10)
        else:
            try:  # pool children that outlived their parent
                os.killpg(self._process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _current_log(self) -> str:
        return self._logs[-1].read()

    def log(self) -> str:
        """Everything every run of this process printed."""
        return "".join(log.read() for log in self._logs)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()
