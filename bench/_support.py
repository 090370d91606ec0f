"""Shared by the benchmarks: a throwaway PostgreSQL database, the API under gunicorn,
and a threaded load generator. Everything runs on 127.0.0.1 and stops by itself."""
import http.client
import json
import os
import platform
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

ADMIN_URL = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/2")


def bench_database(name: str) -> str:
    """A fresh, migrated database `name` on the server of DATABASE_URL; returns its URL."""
    parsed = urlparse(ADMIN_URL)
    conn = psycopg2.connect(host=parsed.hostname, port=parsed.port or 5432, user=parsed.username or "postgres",
                            password=parsed.password, dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    url = parsed._replace(path=f"/{name}").geturl()
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, check=True,
                   env={**os.environ, "DATABASE_URL": url, "CELERY_BROKER_URL": BROKER_URL})
    return url


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    def __init__(self, env: dict, workers: int = 4):
        self.port = free_port()
        self.env, self.workers = env, workers

    def __enter__(self):
        self._log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "backend.wsgi", "--bind", f"127.0.0.1:{self.port}",
             "--workers", str(self.workers), "--log-level", "warning"],
            cwd=ROOT, env={**os.environ, "LOG_LEVEL": "WARNING", **self.env}, stdout=self._log, stderr=subprocess.STDOUT,
        )
        for _ in range(300):
            try:
                request("GET", self.port, "/api/health/live")
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("gunicorn did not start")

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait(timeout=20)


def request(method: str, port: int, path: str, body: bytes | None = None, headers: dict | None = None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def run_load(port: int, requests: list[tuple[str, str, bytes | None, dict]], concurrency: int) -> dict:
    """Send every request once with `concurrency` threads; latency and throughput figures."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    queue = iter(requests)

    def worker():
        while True:
            with lock:
                item = next(queue, None)
            if item is None:
                return
            method, path, body, headers = item
            started = time.perf_counter()
            status = request(method, port, path, body, headers)
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
    latencies.sort()
    return {
        "requests": len(latencies),
        "concurrency": concurrency,
        "per_second": round(len(latencies) / wall, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 2),
        "statuses": statuses,
    }


def machine() -> dict:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def write_results(name: str, figures: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                **figures}, indent=2))
    return path
