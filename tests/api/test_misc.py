import pytest
from django.test import override_settings


@override_settings(STRIPE_PUBLISHABLE_KEY="pk_test_shown", STRIPE_SECRET_KEY="sk_test_never_shown")
def test_payments_config_returns_only_the_publishable_key(client):
    response = client.get("/api/payments/config")
    assert response.json() == {"publishable_key": "pk_test_shown"}
    assert b"sk_test" not in response.content


@pytest.mark.django_db
def test_health_is_200_when_database_and_broker_answer(client):
    response = client.get("/api/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": True, "broker": True}


@pytest.mark.django_db
@override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0")  # nothing listens on port 1
def test_health_is_503_when_the_broker_is_down(client):
    response = client.get("/api/health")
    assert response.status_code == 503
    assert response.json()["broker"] is False


def test_openapi_docs_are_served(client):
    assert client.get("/api/docs").status_code == 200
    schema = client.get("/api/openapi.json").json()
    assert "/api/mentors" in schema["paths"]
