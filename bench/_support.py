"""Shared by the benchmarks: throwaway PostgreSQL databases, the API under gunicorn,
Celery workers, Django in-process, a threaded load generator and result files.
Everything runs on 127.0.0.1, every wait is bounded, and every process we start is
stopped on the way out (also on an error, Ctrl-C or SIGTERM)."""
import http.client
import json
import os
import platform
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))

# DATABASE_URL names the server (and an admin database); each benchmark makes its own bench_* database.
ADMIN_URL = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
# Redis is shared with other engineers' tests: the benchmarks use their own db and flush only it.
BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/6")

# Django refuses to start without a real secret key: the benchmarks' processes share one
# made for this run. They send every request from 127.0.0.1, so the abuse limits are off.
os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(64))
os.environ["RATE_LIMIT_ENABLED"] = "false"

# SIGTERM (make interrupted, a CI timeout) unwinds like Ctrl-C, so `with` blocks stop our children.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def _admin_connection():
    parsed = urlparse(ADMIN_URL)
    conn = psycopg2.connect(host=parsed.hostname, port=parsed.port or 5432, user=parsed.username or "postgres",
                            password=parsed.password, dbname="postgres")
    conn.autocommit = True
    return conn


def database_url(name: str) -> str:
    return urlparse(ADMIN_URL)._replace(path=f"/{name}").geturl()


def database_exists(name: str) -> bool:
    conn = _admin_connection()
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            return cursor.fetchone() is not None
    finally:
        conn.close()


def bench_database(name: str) -> str:
    """A fresh, migrated database `name` on the server of DATABASE_URL; returns its URL."""
    assert name.startswith("bench_"), "benchmarks only ever drop their own bench_* databases"
    conn = _admin_connection()
    with conn.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    url = database_url(name)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, check=True,
                   env={**os.environ, "DATABASE_URL": url, "CELERY_BROKER_URL": BROKER_URL})
    return url


def django_setup(url: str, **env) -> None:
    """Django in this process, on database `url` (call once, before importing backend models)."""
    os.environ.update({"DATABASE_URL": url, "CELERY_BROKER_URL": BROKER_URL, "LOG_LEVEL": "WARNING",
                       "DJANGO_SETTINGS_MODULE": "backend.settings", **env})
    import django

    django.setup()


def flush_broker() -> None:
    """Empty our own Redis db (never anyone else's)."""
    import redis

    client = redis.Redis.from_url(BROKER_URL)
    client.flushdb()
    client.close()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Child:
    """A child process in its own process group, output kept in an unlinked temp file."""

    def _spawn(self, args: list[str], env: dict) -> None:
        self._log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                        start_new_session=True)

    def log(self, tail: int = 4000) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-tail:]

    def stop(self, timeout: float = 20) -> None:
        process = getattr(self, "process", None)
        if process is None:
            return
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
            except ProcessLookupError:
                pass
        try:  # children that outlived their parent (pool processes)
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.process = None

    def __exit__(self, *exc):
        self.stop()


class Gunicorn(_Child):
    def __init__(self, env: dict, workers: int = 4, threads: int = 1):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env, self.workers, self.threads = env, workers, threads

    def __enter__(self):
        self._spawn([sys.executable, "-m", "gunicorn", "backend.wsgi", "--bind", f"127.0.0.1:{self.port}",
                     "--workers", str(self.workers), "--threads", str(self.threads), "--log-level", "warning"],
                    {**os.environ, "LOG_LEVEL": "WARNING", **self.env})
        for _ in range(300):
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self.log()}")
            try:
                request("GET", self.port, "/api/health/live")
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn did not start:\n{self.log()}")


class CeleryWorker(_Child):
    """`python -m celery -A worker worker` with `env` on top of ours."""

    def __init__(self, env: dict, concurrency: int = 2, name: str = "bench", pool: str = "prefork"):
        self.env, self.concurrency, self.name, self.pool = env, concurrency, name, pool

    def __enter__(self):
        self._spawn([sys.executable, "-m", "celery", "-A", "worker", "worker", "--loglevel", "WARNING",
                     "--concurrency", str(self.concurrency), "--pool", self.pool, "--hostname", f"{self.name}@%h",
                     "--without-gossip", "--without-mingle", "--without-heartbeat"],
                    {**os.environ, "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "WARNING", **self.env})
        # Ready once it consumes: ping through the broker, bounded.
        from celery import Celery

        app = Celery(broker=self.env.get("CELERY_BROKER_URL", BROKER_URL))
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"celery worker exited:\n{self.log()}")
                if app.control.ping(destination=[f"{self.name}@{platform.node()}"], timeout=0.5):
                    return self
            self.stop()
            raise RuntimeError(f"celery worker not ready in 60 s:\n{self.log()}")
        finally:
            app.close()


class Relay(_Child):
    """`manage.py webhook_relay`: the outbox relay on its own (a worker runs one too)."""

    def __init__(self, env: dict):
        self.env = env

    def __enter__(self):
        self._spawn([sys.executable, "manage.py", "webhook_relay"],
                    {**os.environ, "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "WARNING", **self.env})
        deadline = time.monotonic() + 30
        while "webhook relay running" not in self.log():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"webhook relay did not start:\n{self.log()}")
            time.sleep(0.1)
        return self


class CeleryBeat(_Child):
    """`python -m celery -A worker beat` (django-celery-beat's schedules) with `env` on top of ours."""

    def __init__(self, env: dict):
        self.env = env

    def __enter__(self):
        self._schedule = tempfile.TemporaryDirectory()
        self._spawn([sys.executable, "-m", "celery", "-A", "worker", "beat", "--loglevel", "WARNING",
                     "--schedule", f"{self._schedule.name}/celerybeat-schedule"],
                    {**os.environ, "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "WARNING", **self.env})
        time.sleep(1)
        if self.process.poll() is not None:
            raise RuntimeError(f"celery beat exited:\n{self.log()}")
        return self

    def __exit__(self, *exc):
        self.stop()
        self._schedule.cleanup()


def request(method: str, port: int, path: str, body: bytes | None = None, headers: dict | None = None) -> int:
    return request_json(method, port, path, body, headers)[0]


def request_json(method: str, port: int, path: str, body=None, headers: dict | None = None):
    """(status, parsed JSON body or None) of one request on a fresh connection."""
    if body is not None and not isinstance(body, bytes):
        body = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", **(headers or {})}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = None
        return response.status, parsed
    finally:
        conn.close()


def run_load(port: int, requests: list[tuple[str, str, bytes | None, dict]], concurrency: int,
             keep_alive: bool = False) -> dict:
    """Send every request once with `concurrency` threads; latency and throughput figures.
    keep_alive: each thread reuses its connection (reconnecting when the server closes it)
    instead of opening a new one per request as Stripe's deliveries do."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    queue = iter(requests)

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30) if keep_alive else None
        while True:
            with lock:
                item = next(queue, None)
            if item is None:
                if conn is not None:
                    conn.close()
                return
            method, path, body, headers = item
            started = time.perf_counter()
            if conn is None:
                status = request(method, port, path, body, headers)
            else:
                status = _keep_alive_request(conn, method, path, body, headers)
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                statuses[status] = statuses.get(status, 0) + 1

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    return {"requests": len(latencies), "concurrency": concurrency, "per_second": round(len(latencies) / wall, 1),
            **percentiles([x * 1000 for x in latencies]), "statuses": statuses}


def _keep_alive_request(conn: http.client.HTTPConnection, method, path, body, headers) -> int:
    for attempt in (1, 2):
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.will_close:
                conn.close()  # the next request reconnects
            return response.status
        except (http.client.HTTPException, ConnectionError):
            conn.close()
            if attempt == 2:
                raise


def process_tree_cpu_seconds(pid: int) -> float:
    """user + system CPU of `pid` and every live descendant, from /proc, including what their
    exited (and reaped) children used: a PostgreSQL backend that lived for one task counts."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _proc_stat(int(entry))
            if stat:
                children.setdefault(int(stat[1]), []).append(int(entry))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += pid_cpu_seconds(current, reaped_children=True)
        todo.extend(children.get(current, []))
    return total


def pid_cpu_seconds(pid: int, reaped_children: bool = False) -> float:
    stat = _proc_stat(pid)
    if not stat:
        return 0.0
    ticks = int(stat[11]) + int(stat[12]) + (int(stat[13]) + int(stat[14]) if reaped_children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def _proc_stat(pid: int) -> list[str] | None:
    # Fields after the parenthesised command name: state, ppid, ... utime is field 14 (index 11 here).
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def percentiles(values_ms: list[float], prefix: str = "") -> dict:
    """p50 / p99 / max of milliseconds, rounded; empty input gives None."""
    if not values_ms:
        return {f"{prefix}p50_ms": None, f"{prefix}p99_ms": None, f"{prefix}max_ms": None}
    return {f"{prefix}p50_ms": round(statistics.median(values_ms), 2),
            f"{prefix}p99_ms": round(percentile(values_ms, 0.99), 2),
            f"{prefix}max_ms": round(max(values_ms), 2)}


def machine() -> dict:
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "loadavg_at_end": load}


def profiled_parts(profiler, parts: dict[str, tuple[str, str]], per: int) -> dict[str, float]:
    """For the profile helpers: ms per unit (`per` requests or bookings) spent in each part,
    the cumulative time of the functions named `function` in files whose path contains
    `fragment` (a name ending in "_" matches every function it starts). With
    BENCH_PROFILE_TOP=N, the N costliest functions by own time are printed too."""
    import pstats

    stats = pstats.Stats(profiler)
    figures = {}
    for part, (fragment, function) in parts.items():
        cumulative = sum(entry[3] for (filename, _, name), entry in stats.stats.items()
                         if (name == function or function.endswith("_") and name.startswith(function))
                         and fragment in filename.replace("\\", "/"))
        figures[part] = round(cumulative * 1000 / per, 3)
    if os.environ.get("BENCH_PROFILE_TOP"):
        stats.sort_stats("tottime").print_stats(int(os.environ["BENCH_PROFILE_TOP"]))
    return figures


def write_results(name: str, figures: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                **figures}, indent=2, default=str) + "\n")
    return path
