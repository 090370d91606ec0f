"""POST /api/payments/webhook: verified, stored once by event id, processed by a real worker."""
import json
import threading
import time

import httpx
import pytest

from backend.models import WebhookEvent
from tests.conftest import WEBHOOK_SECRET
from tests.factories import book, login, make_mentor, make_user
from tests.polling import wait_for
from tests.stack import ApiServer
from tests.webhooks import signature_header, signed, stripe_event

pytestmark = pytest.mark.django_db(transaction=True)


def deliver(client, payload: bytes, header: str | None):
    extra = {"HTTP_STRIPE_SIGNATURE": header} if header is not None else {}
    return client.post("/api/payments/webhook", payload, content_type="application/json", **extra)



def test_a_sandbox_payment_is_delivered_stored_once_and_processed_by_the_worker(
    client, live_server, stripe_sandbox, celery_session_worker
):
    response = book(client, login(client, make_user()), make_mentor())
    assert response.status_code == 200
    cs_id = response.json()["session_id"]

    assert stripe_sandbox.pay(cs_id, card="4242424242424242")["outcome"] == "succeeded"

    completed = WebhookEvent.objects.filter(type="checkout.session.completed")
    assert wait_for(lambda: completed.filter(status="processed").exists()), list(completed.values("status", "last_error"))
    event = completed.get()
    assert event.payload["data"]["object"]["id"] == cs_id
    assert event.attempts == 1
    assert event.processed_at is not None
    delivered = [d for d in stripe_sandbox.deliveries(event_id=event.stripe_event_id) if d["succeeded"]]
    assert delivered, "the sandbox saw a 2xx for the delivery"


def test_the_same_event_delivered_five_times_is_stored_and_enqueued_once(client, live_server, stripe_sandbox,
                                                                          celery_session_worker):
    payload, header = signed(stripe_event(), WEBHOOK_SECRET)
    answers = [deliver(client, payload, header).json() for _ in range(5)]
    assert all(a["received"] for a in answers)
    assert [a["duplicate"] for a in answers] == [False, True, True, True, True]

    # And five at once, racing on the unique index.
    payload, header = signed(stripe_event(), WEBHOOK_SECRET)
    barrier, results = threading.Barrier(5), []

    def post():
        barrier.wait()
        r = httpx.post(f"{live_server.url}/api/payments/webhook", content=payload,
                       headers={"Stripe-Signature": header, "Content-Type": "application/json"}, timeout=30)
        results.append((r.status_code, r.json()["duplicate"]))

    threads = [threading.Thread(target=post) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [(200, False)] + [(200, True)] * 4

    assert WebhookEvent.objects.count() == 2
    assert wait_for(lambda: WebhookEvent.objects.filter(status="processed").count() == 2)
    time.sleep(0.5)  # a second enqueue would show as a second attempt
    assert list(WebhookEvent.objects.values_list("attempts", flat=True)) == [1, 1]


def test_unhandled_event_types_are_stored_as_ignored(client, stripe_sandbox):
    payload, header = signed(stripe_event("customer.created"), WEBHOOK_SECRET)
    assert deliver(client, payload, header).status_code == 200
    assert WebhookEvent.objects.get().status == "ignored"


def test_either_secret_verifies_during_a_rotation(client, stripe_sandbox, settings):
    settings.STRIPE_WEBHOOK_SECRETS = ["whsec_old_secret", WEBHOOK_SECRET]
    payload, header = signed(stripe_event("customer.created"), "whsec_old_secret")
    assert deliver(client, payload, header).status_code == 200
    payload, header = signed(stripe_event("customer.created"), WEBHOOK_SECRET)
    assert deliver(client, payload, header).status_code == 200
    assert WebhookEvent.objects.count() == 2


def _bad_deliveries():
    event = stripe_event()
    payload = json.dumps(event).encode()
    now = int(time.time())
    garbage = b"\xff\xfe not json"
    not_an_event = json.dumps({"hello": "world"}).encode()
    live = json.dumps(stripe_event(livemode=True)).encode()
    return {
        "forged": (payload, signature_header(payload, "whsec_someone_else")),
        "stale": (payload, signature_header(payload, WEBHOOK_SECRET, timestamp=now - 301)),
        "future": (payload, signature_header(payload, WEBHOOK_SECRET, timestamp=now + 3600)),
        "unsigned": (payload, None),
        "empty-signature": (payload, ""),
        "tampered": (payload.replace(b"checkout.session.completed", b"charge.refunded"),
                     signature_header(payload, WEBHOOK_SECRET)),
        "non-json": (garbage, signature_header(garbage, WEBHOOK_SECRET)),
        "not-an-event": (not_an_event, signature_header(not_an_event, WEBHOOK_SECRET)),
        "livemode-mismatch": (live, signature_header(live, WEBHOOK_SECRET)),
    }


@pytest.mark.parametrize("case", list(_bad_deliveries()))
def test_bad_deliveries_are_400_and_store_nothing(client, stripe_sandbox, case):
    payload, header = _bad_deliveries()[case]
    response = deliver(client, payload, header)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "webhook_rejected"
    assert not WebhookEvent.objects.exists()


def test_an_oversized_body_is_413_before_parsing(client, stripe_sandbox):
    event = stripe_event()
    event["data"]["object"]["padding"] = "x" * (1024 * 1024)
    payload, header = signed(event, WEBHOOK_SECRET)
    response = deliver(client, payload, header)
    assert response.status_code == 413
    assert not WebhookEvent.objects.exists()


def test_with_the_database_down_the_answer_is_5xx_so_stripe_retries(stripe_sandbox):
    payload, header = signed(stripe_event(), WEBHOOK_SECRET)
    env = {"DATABASE_URL": "postgres://postgres@127.0.0.1:9/nowhere", "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
           "STRIPE_SECRET_KEY": "sk_test_backend_suite"}
    with ApiServer(env=env, workers=1) as api:
        response = httpx.post(f"{api.url}/api/payments/webhook", content=payload,
                              headers={"Stripe-Signature": header, "Content-Type": "application/json"}, timeout=30)
    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable" and response.headers["Retry-After"] == "5"
