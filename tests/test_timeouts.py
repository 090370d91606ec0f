"""Every outbound call has a timeout below its caller's limit."""
import re

from django.conf import settings

from backend import stripe_gateway
from tests.stack import ROOT


def gunicorn_timeout(text: str) -> int:
    found = re.search(r"--timeout[\s\",]+(\d+)", text)
    assert found, "gunicorn's timeout must be explicit"
    return int(found.group(1))


def test_a_stripe_call_ends_before_gunicorn_or_a_task_gives_up():
    for launcher in ("Procfile", "docker-compose.yml"):
        assert settings.STRIPE_CALL_BUDGET_SECONDS < gunicorn_timeout((ROOT / launcher).read_text()), launcher
    assert settings.STRIPE_CALL_BUDGET_SECONDS < settings.CELERY_TASK_SOFT_TIME_LIMIT


def test_the_stripe_client_uses_the_configured_timeout_not_the_sdks_80_seconds(settings):
    settings.STRIPE_SECRET_KEY, settings.STRIPE_TIMEOUT_SECONDS, settings.STRIPE_MAX_NETWORK_RETRIES = "sk_test_x", 7.0, 1
    client = stripe_gateway._client()
    http_client = client._requestor._get_http_client()
    assert http_client._timeout == (5.0, 7.0)
    assert client._requestor._options.max_network_retries == 1


def test_redis_and_postgresql_connections_time_out():
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS  # the suite runs on Redis
    assert 0 < options["socket_timeout"] <= 5 and 0 < options["socket_connect_timeout"] <= 5
    assert settings.CELERY_TASK_PUBLISH_RETRY_POLICY["max_retries"] <= 2
    assert 0 < settings.CACHES["default"]["OPTIONS"]["socket_timeout"] <= 5
    database = settings.DATABASES["default"]["OPTIONS"]
    assert 0 < database["connect_timeout"] <= 10 and "statement_timeout" in database["options"]
