"""Deployment files that no engine runs here are at least well-formed and complete."""
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_compose_defines_the_stack_from_one_image():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(services)
    assert " ".join(services["worker"]["command"]).startswith("celery -A worker worker")
    assert " ".join(services["beat"]["command"]).startswith("celery -A worker beat")
    assert "gunicorn" in services["web"]["command"]
    for name in ("postgres", "redis", "web"):
        assert "healthcheck" in services[name], name
    images = {services[name].get("build") for name in ("web", "worker", "beat")}
    assert images == {"."}


def test_env_example_lists_every_setting_the_code_reads():
    settings_source = (ROOT / "backend" / "settings.py").read_text()
    example = (ROOT / ".env.example").read_text()
    read = set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z_]+)"', settings_source))
    optional = {"LOG_LEVEL", "JWT_ACCESS_MINUTES", "JWT_REFRESH_DAYS", "DATABASE_CONN_MAX_AGE", "REDIS_URL",
                "CELERY_TASK_SOFT_TIME_LIMIT", "CELERY_TASK_TIME_LIMIT"}
    missing = {name for name in read - optional if f"{name}=" not in example}
    assert not missing, f".env.example lacks {sorted(missing)}"


def test_env_example_holds_no_real_secrets():
    example = (ROOT / ".env.example").read_text()
    assert "sk_live_" not in example
    for line in example.splitlines():
        if line.startswith(("STRIPE_SECRET_KEY=", "STRIPE_WEBHOOK_SECRET=")):
            assert "replace_me" in line


def test_the_suite_names_the_url_of_a_service_that_is_down():
    import os
    import subprocess
    import sys

    for variable, url, name in [
        ("DATABASE_URL", "postgres://postgres@127.0.0.1:9/test", "PostgreSQL"),
        ("CELERY_BROKER_URL", "redis://127.0.0.1:9/0", "Redis"),
    ]:
        env = {**os.environ, variable: url}
        result = subprocess.run([sys.executable, "-m", "pytest", "-q", "tests/test_project_files.py"], cwd=ROOT,
                                env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 3
        assert f"{name} at {url} is unreachable" in result.stdout + result.stderr
