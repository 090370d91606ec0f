"""Alerts mailed to admins once an hour per condition, retention of webhook events, and the
operator's one-screen status."""
import io
import time
from datetime import timedelta

import pytest
from django.core import mail
from django.core.cache import cache
from django.core.management import call_command
from django.utils import timezone

from backend.models import WebhookEvent
from backend.observability.celery import BEAT_TICK_KEY
from backend.observability.metrics import LAST_WEBHOOK_KEY
from backend.services.operations import alerts_check, webhook_events_prune
from tests.factories import booking, login, make_mentor, make_user

pytestmark = pytest.mark.django_db(transaction=True)

CONDITIONS = ("webhook_silence", "events_backlog", "beat_stopped")


@pytest.fixture(autouse=True)
def no_alert_history():
    cache.delete_many([f"ops:alert:{c}" for c in CONDITIONS] + [LAST_WEBHOOK_KEY, BEAT_TICK_KEY])
    cache.set(BEAT_TICK_KEY, time.time(), timeout=None)  # beat alive unless a test says otherwise
    yield
    cache.delete_many([f"ops:alert:{c}" for c in CONDITIONS] + [LAST_WEBHOOK_KEY, BEAT_TICK_KEY])


def event(status: str, *, age: timedelta, event_type: str = "checkout.session.completed") -> WebhookEvent:
    row = WebhookEvent.objects.create(stripe_event_id=f"evt_test_{WebhookEvent.objects.count()}_{time.time_ns()}",
                                      type=event_type, payload={"created": 0}, status=status)
    WebhookEvent.objects.filter(pk=row.pk).update(received_at=timezone.now() - age)
    return row


def alert_mails(subject_part: str) -> list:
    return [m for m in mail.outbox if subject_part in m.subject]


def test_silence_while_stripe_completes_checkouts_is_mailed_once_an_hour(client, stripe_sandbox, settings):
    settings.WEBHOOK_SILENCE_ALERT_MINUTES = 30
    response = client.post("/api/payments/create-checkout-session", booking(make_mentor()),
                           content_type="application/json", **login(client, make_user()))
    cs_id = response.json()["session_id"]
    assert alerts_check() == []  # nothing completed at Stripe: silence is normal

    stripe_sandbox.pause()  # the webhook endpoint stops hearing from Stripe
    assert stripe_sandbox.pay(cs_id)["outcome"] == "succeeded"
    assert "webhook_silence" in alerts_check()
    assert "webhook_silence" in alerts_check()
    mails = alert_mails("No Stripe webhook")
    assert len(mails) == 1 and mails[0].to == [a[1] for a in settings.ADMINS]
    assert "30 minutes" in mails[0].body
    stripe_sandbox.resume()

    cache.set(LAST_WEBHOOK_KEY, time.time())  # a delivery arrived
    assert "webhook_silence" not in alerts_check()


def test_an_old_unprocessed_event_is_mailed_once(settings):
    settings.HEALTH_MAX_UNPROCESSED_EVENT_AGE_SECONDS = 600
    event("received", age=timedelta(minutes=5))
    assert "events_backlog" not in alerts_check()
    event("processing", age=timedelta(minutes=20))
    assert "events_backlog" in alerts_check()
    alerts_check()
    assert len(alert_mails("waiting unprocessed")) == 1


def test_beat_stopping_is_mailed_once_and_readiness_reports_it(client, settings):
    settings.HEALTH_MAX_BEAT_AGE_SECONDS = 300
    cache.set(BEAT_TICK_KEY, time.time() - 1000, timeout=None)  # beat's last send, 1000 s ago
    response = client.get("/api/health/ready")
    assert response.status_code == 503
    check = response.json()["checks"]["beat_last_tick_age_seconds"]
    assert not check["ok"] and check["value"] >= 1000 and check["threshold"] == 300
    assert "beat_stopped" in alerts_check()
    client.get("/api/health/ready")
    assert len(alert_mails("beat has stopped")) == 1


def test_retention_prunes_old_processed_and_ignored_events_in_batches_and_keeps_failed(settings):
    settings.WEBHOOK_EVENT_RETENTION_DAYS = 90
    old = [event("processed", age=timedelta(days=91)) for _ in range(3)] + [event("ignored", age=timedelta(days=100))]
    kept = [event("failed", age=timedelta(days=200)), event("processed", age=timedelta(days=89)),
            event("received", age=timedelta(days=95))]
    assert webhook_events_prune(batch_size=2) == 4
    assert set(WebhookEvent.objects.values_list("pk", flat=True)) == {e.pk for e in kept}
    assert not WebhookEvent.objects.filter(pk__in=[e.pk for e in old]).exists()


def test_the_beat_jobs_are_scheduled_by_their_migration():
    import importlib

    from django.apps import apps
    from django_celery_beat.models import PeriodicTask

    # Transactional tests flush the migration's rows, so its function is run again here.
    importlib.import_module("backend.migrations.0010_beat_operations").schedule(apps, None)
    tasks = {t.name: (t.task, t.interval.every, t.interval.period) for t in PeriodicTask.objects.filter(
        name__in=["webhook_events_prune", "operations_alerts_check"])}
    assert tasks == {"webhook_events_prune": ("webhook_events_prune", 1, "days"),
                     "operations_alerts_check": ("operations_alerts_check", 5, "minutes")}


def test_payments_status_prints_the_readiness_figures_and_the_last_hour(settings):
    settings.HEALTH_MAX_FAILED_EVENTS = 0
    event("failed", age=timedelta(minutes=10))
    event("processed", age=timedelta(minutes=10))
    out = io.StringIO()
    with pytest.raises(SystemExit):  # a failed event over the threshold: degraded, exit status 1
        call_command("payments_status", stdout=out)
    text = out.getvalue()
    assert "readiness: DEGRADED" in text
    assert "OVER failed_events 1 (threshold 0)" in text
    assert "workers" in text and "beat_last_tick_age_seconds" in text
    assert "webhook events: received 0, processing 0, processed 1, ignored 0, failed 1" in text
    assert "last hour: webhook_events_received 2" in text


def test_payments_status_check_beat_decides_on_beat_alone(settings):
    out = io.StringIO()
    call_command("payments_status", "--check", "beat", stdout=out)  # no worker, yet beat is fine: exit 0
    assert "ok   beat_last_tick_age_seconds" in out.getvalue()
    cache.set(BEAT_TICK_KEY, time.time() - settings.HEALTH_MAX_BEAT_AGE_SECONDS - 60, timeout=None)
    with pytest.raises(SystemExit):
        call_command("payments_status", "--check", "beat", stdout=io.StringIO())
