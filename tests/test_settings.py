"""Production settings from the environment, checked in fresh processes: no secret key, no
start; DJANGO_HTTPS turns on what `check --deploy` asks for; proxy headers only behind a
TRUSTED_PROXY."""
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = {
    "DJANGO_DEBUG": "false",
    "DJANGO_HTTPS": "true",
    "ALLOWED_HOSTS": "pay.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://pay.example.com",
}


def a_secret() -> str:
    return secrets.token_urlsafe(64)


def environment(**overrides) -> dict[str, str]:
    """Ours, less every setting this file is about, plus `overrides` (None: leave unset)."""
    # DJANGO_ALLOW_ASYNC_UNSAFE: the browser tests' fixture sets it in this process while Chromium
    # runs; no production process has it, and check --deploy rightly refuses it.
    ours = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SECRET_KEY", "JWT_SIGNING_KEY", "DJANGO_DEBUG",
                                                          "DJANGO_HTTPS", "TRUSTED_PROXY", "CSRF_TRUSTED_ORIGINS",
                                                          "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    return ours | {k: v for k, v in overrides.items() if v is not None}


def manage(*arguments, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *arguments], cwd=ROOT, env=environment(**env),
                          capture_output=True, text=True, timeout=120)


def settings_in_a_process(**env) -> dict:
    code = ("import django, json, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'backend.settings'; django.setup(); "
            "from django.conf import settings as s; print(json.dumps({name: getattr(s, name, None) for name in ["
            "'SECURE_SSL_REDIRECT', 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SECURE_HSTS_SECONDS', "
            "'SECURE_PROXY_SSL_HEADER', 'CSRF_TRUSTED_ORIGINS', 'SECRET_KEY']} | "
            "{'JWT': s.NINJA_JWT['SIGNING_KEY']}))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environment(**env), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_production_environment_passes_check_deploy():
    result = manage("check", "--deploy", "--fail-level", "WARNING", DJANGO_SECRET_KEY=a_secret(), **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr


def test_without_https_check_deploy_names_what_is_missing():
    result = manage("check", "--deploy", "--fail-level", "WARNING", DJANGO_SECRET_KEY=a_secret(),
                    **(PRODUCTION | {"DJANGO_HTTPS": None}))
    assert result.returncode != 0
    assert "SECURE_HSTS_SECONDS" in result.stderr and "SECURE_SSL_REDIRECT" in result.stderr


def test_outside_debug_without_a_secret_key_the_process_stops_with_one_line():
    result = manage("check", **PRODUCTION)
    assert result.returncode != 0
    assert result.stderr.startswith("manage.py: DJANGO_SECRET_KEY is not set: ")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("key,problem", [
    ("", "is not set"),
    ("dev-only-insecure-key-change-me-in-production", "is a known placeholder"),
    ("change-me", "is a known placeholder"),
    ("django-insecure-" + "x1y2z3" * 10, "is a known placeholder"),
    ("a-short-but-random-Kq3v9", "is shorter than 50 characters"),
    ("ab" * 40, "has fewer than 5 distinct characters"),
])
def test_a_weak_secret_key_is_refused(monkeypatch, key, problem):
    # The same check settings.py runs at start-up (DEBUG is off here, as in production).
    from django.core.exceptions import ImproperlyConfigured

    from backend import settings as project_settings

    monkeypatch.setenv("DJANGO_SECRET_KEY", key)
    with pytest.raises(ImproperlyConfigured, match=f"^DJANGO_SECRET_KEY {problem}: "):
        project_settings._secret_from_env("DJANGO_SECRET_KEY", required=True)
    monkeypatch.setenv("JWT_SIGNING_KEY", key)
    if key:  # optional, but when given it must be as strong
        with pytest.raises(ImproperlyConfigured, match=f"^JWT_SIGNING_KEY {problem}: "):
            project_settings._secret_from_env("JWT_SIGNING_KEY", required=False)


def test_the_api_server_refuses_to_start_without_a_secret_key():
    result = subprocess.run([sys.executable, "-m", "gunicorn", "backend.wsgi", "--bind", "127.0.0.1:0"], cwd=ROOT,
                            env=environment(), capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_in_debug_a_missing_key_is_one_per_process_never_a_constant():
    first, second = (settings_in_a_process(DJANGO_DEBUG="true")["SECRET_KEY"] for _ in range(2))
    assert first != second and len(first) >= 50


def test_jwts_take_their_own_key_when_given_one():
    secret, jwt_key = a_secret(), a_secret()
    assert settings_in_a_process(DJANGO_SECRET_KEY=secret, JWT_SIGNING_KEY=jwt_key)["JWT"] == jwt_key
    assert settings_in_a_process(DJANGO_SECRET_KEY=secret)["JWT"] == secret


def test_https_turns_on_hsts_secure_cookies_and_the_redirect():
    plain = settings_in_a_process(DJANGO_SECRET_KEY=a_secret())
    https = settings_in_a_process(DJANGO_SECRET_KEY=a_secret(), DJANGO_HTTPS="true")
    fields = ("SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE")
    assert [plain[f] for f in fields] == [False, False, False] and plain["SECURE_HSTS_SECONDS"] == 0
    assert [https[f] for f in fields] == [True, True, True] and https["SECURE_HSTS_SECONDS"] >= 31536000


def test_proxy_headers_are_believed_only_behind_a_trusted_proxy():
    assert settings_in_a_process(DJANGO_SECRET_KEY=a_secret())["SECURE_PROXY_SSL_HEADER"] is None
    behind = settings_in_a_process(DJANGO_SECRET_KEY=a_secret(), TRUSTED_PROXY="10.0.0.0/8")
    assert behind["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]


def test_a_trusted_proxy_that_is_no_address_stops_the_process():
    result = manage("check", DJANGO_SECRET_KEY=a_secret(), TRUSTED_PROXY="10.0.0.0/8,proxy.internal")
    assert result.returncode != 0
    assert result.stderr.startswith("manage.py: TRUSTED_PROXY: 'proxy.internal' is not an IP address or network")


def test_csrf_trusted_origins_come_from_the_environment():
    assert settings_in_a_process(DJANGO_SECRET_KEY=a_secret(),
                                 CSRF_TRUSTED_ORIGINS="https://a.example,https://b.example")["CSRF_TRUSTED_ORIGINS"] == [
        "https://a.example", "https://b.example"]
