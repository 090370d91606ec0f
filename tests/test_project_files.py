"""Deployment files that no engine runs here are at least well-formed and complete."""
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _settings_read() -> set[str]:
    return set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z_]+)"', (ROOT / "backend" / "settings.py").read_text()))


def test_compose_defines_the_stack_from_one_image():
    services = _compose()["services"]
    assert {"postgres", "redis", "migrate", "web", "worker", "beat", "sandbox", "flower"} <= set(services)
    assert " ".join(services["worker"]["command"]).startswith("celery -A worker worker")
    assert " ".join(services["beat"]["command"]).startswith("celery -A worker beat")
    assert " ".join(services["flower"]["command"]).startswith("celery -A worker flower")
    assert services["web"]["command"][:2] == ["gunicorn", "backend.wsgi"]
    for name in ("postgres", "redis", "sandbox", "web", "worker", "beat", "flower"):
        assert "healthcheck" in services[name], name
    images = {services[name].get("build") for name in ("web", "worker", "beat", "sandbox", "flower", "migrate")}
    assert images == {"."}


def test_compose_starts_each_service_after_what_it_needs_is_healthy():
    services = _compose()["services"]
    for name, service in services.items():
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert dependency in services, (name, dependency)
            expected = "service_completed_successfully" if dependency == "migrate" else "service_healthy"
            assert condition == {"condition": expected}, (name, dependency)
            assert "healthcheck" in services[dependency] or dependency == "migrate", dependency
    for name in ("web", "worker", "beat"):
        assert {"postgres", "redis", "migrate"} <= set(services[name]["depends_on"]), name
    assert "sandbox" in services["web"]["depends_on"]


def test_compose_environment_names_are_settings_the_code_reads(monkeypatch):
    from stripe_sandbox.__main__ import parse_config

    services = _compose()["services"]
    read = _settings_read() | {"PROMETHEUS_MULTIPROC_DIR", "FLOWER_BASIC_AUTH"}  # read by their libraries
    for name in ("migrate", "web", "worker", "beat", "flower"):
        unknown = set(services[name]["environment"]) - read
        assert not unknown, (name, unknown)
    assert services["web"]["environment"]["PROMETHEUS_MULTIPROC_DIR"] in services["web"]["volumes"][0]
    # The sandbox's command line is one its own parser accepts, delivering to the web service.
    sandbox = services["sandbox"]["command"]
    assert sandbox[:3] == ["python", "-m", "stripe_sandbox"]
    assert set(services["sandbox"]["environment"]) == {"STRIPE_WEBHOOK_SECRET"}
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_from_compose")
    config = parse_config(sandbox[3:])
    assert config.webhook_url == "http://web:8002/api/payments/webhook"
    assert config.webhook_secret == "whsec_from_compose"
    # The beat healthcheck's command exists and knows its check.
    beat_check = services["beat"]["healthcheck"]["test"]
    assert beat_check[1:4] == ["python", "manage.py", "payments_status"] and "beat" in beat_check


def test_env_example_lists_every_setting_the_code_reads():
    example = (ROOT / ".env.example").read_text()
    read = _settings_read()
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


def test_the_sandbox_endpoints_and_the_readme_subscribe_to_exactly_the_handled_events():
    """One list, four places: the handlers, the Procfile's and compose's sandbox, and the
    README's Dashboard instructions. A handler added without its subscription never runs."""
    from backend.services.webhooks import EVENT_HANDLERS

    handled = set(EVENT_HANDLERS)
    procfile = re.search(r"--webhook-events (\S+)", (ROOT / "Procfile").read_text()).group(1)
    compose = re.search(r'"--webhook-events", "([^"]+)"', (ROOT / "docker-compose.yml").read_text()).group(1)
    assert set(procfile.split(",")) == handled
    assert set(compose.split(",")) == handled
    readme = (ROOT / "README.md").read_text()
    step = readme[readme.index("3. Events to select for the endpoint"):readme.index("4. `make run`")]
    assert set(re.findall(r"`([a-z_.]+\.[a-z_.]+)`", step)) == handled
