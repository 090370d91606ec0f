"""Operations of a whole stack of separate processes: one payment's ids across the JSON logs
of web and worker, /metrics summing every process, readiness following the worker."""
import json
from pathlib import Path

import pytest

from backend.models import Session
from tests.factories import PASSWORD, booking, make_mentor, make_user
from tests.ops.conftest import STACK_SECRET
from tests.ops.metrics_text import sample
from tests.polling import wait_for
from tests.webhooks import signed, stripe_event

pytestmark = pytest.mark.django_db(transaction=True)


def pay_one(stack) -> tuple[str, Session]:
    mentor, mentee = make_mentor(), make_user()
    token = stack.post("/api/auth/login", json={"email": mentee.email, "password": PASSWORD}).json()["access"]
    response = stack.post("/api/payments/create-checkout-session", json=booking(mentor),
                          headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    cs_id = response.json()["session_id"]
    assert stack.sandbox.pay(cs_id)["outcome"] == "succeeded"
    session = wait_for(lambda: Session.objects.filter(stripe_checkout_session_id=cs_id, payment_status="paid").first(),
                       timeout=30, message=f"paid session for {cs_id}")
    return cs_id, session


def test_one_payments_ids_run_through_the_json_logs_of_web_and_worker(stack):
    cs_id, _ = pay_one(stack)
    wait_for(lambda: any(r.get("session_id") == cs_id and "send_session_notification" in r["message"]
                         for r in stack.logs()["worker"]), timeout=30, message="the confirmation task's log")
    logs = stack.logs()
    web = [r for r in logs["web"] if r.get("session_id") == cs_id]
    worker = [r for r in logs["worker"] if r.get("session_id") == cs_id]

    # Web: the checkout request names the Checkout and the session; the webhook request the event too.
    created = next(r for r in web if "holding" in r["message"])
    assert created["request_id"] and created["checkout_id"]
    delivered = next(r for r in web if r.get("stripe_event_id") and "stored" in r["message"])
    assert delivered["checkout_id"] == created["checkout_id"]

    # Worker: the event's processing carries the webhook request's id (through the task header),
    # and so do the tasks it queued (confirmations).
    processing = [r for r in worker if r.get("stripe_event_id") == delivered["stripe_event_id"]]
    assert processing and all(r["request_id"] == delivered["request_id"] for r in processing)
    assert all(r["checkout_id"] == created["checkout_id"] for r in worker)
    assert any("send_session_notification" in r["message"] for r in worker)
    assert {r["level"] for r in worker} <= {"INFO", "WARNING"}


def test_metrics_on_the_api_count_what_web_and_worker_processes_did(stack):
    before = stack.get("/metrics").text
    cs_id, _ = pay_one(stack)
    wait_for(lambda: sample(stack.get("/metrics").text, "myroadmap_task_runs_total",
                            task="send_session_notification", state="SUCCESS")
             >= sample(before, "myroadmap_task_runs_total", task="send_session_notification", state="SUCCESS") + 1,
             timeout=30, message="the confirmation task counted")
    after = stack.get("/metrics").text

    def moved(name, **labels):
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert moved("myroadmap_checkout_creations_total", outcome="created") == 1
    assert moved("myroadmap_webhook_deliveries_total", type="checkout.session.completed", outcome="stored") == 1
    assert moved("myroadmap_task_runs_total", task="process_webhook_event", state="SUCCESS") >= 1
    assert moved("myroadmap_webhook_events_processed_total", type="checkout.session.completed", status="processed") == 1
    assert moved("myroadmap_webhook_event_age_seconds_count", type="checkout.session.completed") == 1
    assert moved("myroadmap_stripe_api_calls_total", endpoint="POST /v1/checkout/sessions", outcome="200") == 1
    assert moved("myroadmap_stripe_api_call_seconds_count", endpoint="POST /v1/checkout/sessions") == 1
    assert sample(after, "myroadmap_webhook_events", status="processed") >= 1
    assert sample(after, "myroadmap_queue_depth") >= 0
    assert 'myroadmap_refunds{status="succeeded"}' in after


def test_two_gunicorn_workers_sum_their_counters(stack):
    def deliveries(text, outcome):
        return sample(text, "myroadmap_webhook_deliveries_total", type="customer.created", outcome=outcome)

    before = stack.get("/metrics").text
    events = [stripe_event("customer.created") for _ in range(12)]
    for event in events + events[:4]:
        payload, header = signed(event, STACK_SECRET)
        response = stack.post("/api/payments/webhook", content=payload,
                              headers={"Stripe-Signature": header, "Content-Type": "application/json"})
        assert response.status_code == 200, response.text
    forged = stack.post("/api/payments/webhook", content=b"{}", headers={"Stripe-Signature": "t=1,v1=00"})
    assert forged.status_code == 400

    # Whichever gunicorn worker answers, it reports every worker's deliveries.
    for _ in range(6):
        text = stack.get("/metrics").text
        assert deliveries(text, "stored") - deliveries(before, "stored") == 12
        assert deliveries(text, "duplicate") - deliveries(before, "duplicate") == 4
        assert sample(text, "myroadmap_webhook_deliveries_total", outcome="refused", reason="invalid") \
            - sample(before, "myroadmap_webhook_deliveries_total", outcome="refused", reason="invalid") == 1
    files = {p.name for p in Path(stack.env["PROMETHEUS_MULTIPROC_DIR"]).glob("counter_*.db")}
    assert len(files) >= 3, files  # two gunicorn workers and the Celery processes each wrote their own


def test_metrics_need_the_token_when_one_is_set(settings, client):
    settings.METRICS_TOKEN = "metrics-token-for-tests"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer metrics-token-for-tests")
    assert response.status_code == 200 and b"myroadmap_webhook_events" in response.content
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 200


def ready(stack) -> tuple[int, dict]:
    response = stack.get("/api/health/ready")
    return response.status_code, response.json()


def test_readiness_follows_the_worker(stack):
    status, body = wait_for(lambda: (r := ready(stack))[0] == 200 and r, timeout=20, message="ready")
    assert body["checks"]["workers"]["value"] >= 1
    assert body["checks"]["beat_last_tick_age_seconds"]["ok"]

    stack.worker.stop()
    status, body = ready(stack)
    assert status == 503
    assert body["checks"]["workers"] == {"ok": False, "value": 0, "threshold": 1}
    assert body["checks"]["database"]["ok"] and body["checks"]["broker"]["ok"]

    stack.worker.start()
    status, body = wait_for(lambda: (r := ready(stack))[0] == 200 and r, timeout=20, message="ready again")
    assert body["status"] == "ok"


def test_liveness_stays_cheap_and_unchanged(stack):
    response = stack.get("/api/health")
    assert response.status_code == 200
    assert set(response.json()) == {"status", "database", "broker"}
    assert json.loads(stack.get("/api/health/live").text) == {}
