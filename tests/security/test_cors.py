"""CORS: only the origins in CORS_ALLOWED_ORIGINS get Access-Control-Allow-Origin, on
preflights and on simple requests; any other origin gets no CORS header at all."""
import os
import subprocess
import sys

import pytest
from django.conf import settings as django_settings

from tests.stack import ROOT

ALLOWED = "https://app.myroadmap.example"
FOREIGN = ["https://evil.example", "https://app.myroadmap.example.evil.example", "http://app.myroadmap.example",
           "null"]


@pytest.fixture(autouse=True)
def allowed_origins(settings):
    settings.CORS_ALLOWED_ORIGINS = [ALLOWED]


def preflight(client, origin, path="/api/payments/create-checkout-session"):
    return client.options(path, HTTP_ORIGIN=origin, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
                          HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type")


def test_the_configured_origin_passes_the_preflight(client):
    response = preflight(client, ALLOWED)
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == ALLOWED
    assert "authorization" in response["Access-Control-Allow-Headers"].lower()


@pytest.mark.parametrize("origin", FOREIGN)
def test_a_foreign_origin_gets_no_preflight_allowance(client, origin):
    response = preflight(client, origin)
    assert "Access-Control-Allow-Origin" not in response
    assert "Access-Control-Allow-Credentials" not in response


def test_the_configured_origin_may_read_a_simple_response(client):
    response = client.get("/api/payments/config", HTTP_ORIGIN=ALLOWED)
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == ALLOWED


@pytest.mark.parametrize("origin", FOREIGN)
def test_a_foreign_origin_may_not_read_a_simple_response(client, origin):
    response = client.get("/api/payments/config", HTTP_ORIGIN=origin)
    assert "Access-Control-Allow-Origin" not in response


def test_no_wildcard_is_configured():
    assert not getattr(django_settings, "CORS_ALLOW_ALL_ORIGINS", False)
    assert not getattr(django_settings, "CORS_ORIGIN_ALLOW_ALL", False)
    assert not getattr(django_settings, "CORS_ALLOWED_ORIGIN_REGEXES", [])


def test_by_default_only_the_frontend_is_allowed():
    # What settings.py derives from the environment when CORS_ALLOWED_ORIGINS is unset.
    code = ("import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'backend.settings'; django.setup(); "
            "from django.conf import settings; print(settings.CORS_ALLOWED_ORIGINS)")
    env = {k: v for k, v in os.environ.items() if k != "CORS_ALLOWED_ORIGINS"} | {"FRONTEND_URL": "https://front.example/"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                         cwd=ROOT).stdout
    assert out.strip() == "['https://front.example']"
