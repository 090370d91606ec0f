"""The outbox relay: the webhook only stores (and notifies); every worker's relay queues
what was stored. Real PostgreSQL, Redis and worker; the broken broker is a closed port."""
import select
import time

import httpx
import psycopg2
import pytest
from django.db import connection, transaction

from backend.models import WebhookEvent
from backend.services.webhook_outbox import NOTIFY_CHANNEL
from backend.services.webhooks import webhook_event_store
from backend.tasks.relay import webhook_events_relay
from tests import stack
from tests.conftest import WEBHOOK_SECRET
from tests.polling import wait_for
from tests.stack import ApiServer
from tests.webhooks import signed, stripe_event
from worker import app

pytestmark = pytest.mark.django_db(transaction=True)

DEAD_BROKER = "redis://127.0.0.1:9/0"  # nothing listens there: the broker is "down"


def notifications_after(store) -> int:
    """How many NOTIFYs on the relay's channel a separate LISTEN connection gets for `store()`."""
    listener = psycopg2.connect(stack.test_database_url())
    listener.autocommit = True
    try:
        with listener.cursor() as cursor:
            cursor.execute(f"LISTEN {NOTIFY_CHANNEL}")
        store()
        select.select([listener], [], [], 1.0)
        listener.poll()
        return len(listener.notifies)
    finally:
        listener.close()


def test_storing_a_new_handled_event_notifies_the_relay_and_nothing_else_does():
    event = stripe_event("checkout.session.expired")
    assert notifications_after(lambda: webhook_event_store(event)) == 1
    assert notifications_after(lambda: webhook_event_store(event)) == 0  # a duplicate delivery
    assert notifications_after(lambda: webhook_event_store(stripe_event("payment_intent.created"))) == 0  # ignored


def test_the_webhook_needs_no_broker_and_the_workers_relay_queues_what_it_stored(celery_session_worker):
    env = {"CELERY_BROKER_URL": DEAD_BROKER, "STRIPE_SECRET_KEY": "sk_test_backend_suite",
           "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET}
    payload, header = signed(stripe_event("checkout.session.expired"), WEBHOOK_SECRET)
    with ApiServer(env=env, workers=1) as api:
        started = time.monotonic()
        response = httpx.post(f"{api.url}/api/payments/webhook", content=payload,
                              headers={"Stripe-Signature": header, "Content-Type": "application/json"}, timeout=30)
        elapsed = time.monotonic() - started
        assert response.status_code == 200, api.log()
        assert "broker" not in api.log().lower()
    assert elapsed < 5, f"the answer waited {elapsed:.1f}s"
    event = wait_for(lambda: WebhookEvent.objects.filter(status="processed", queued_at__isnull=False).first(),
                     message="processed by the worker, queued by its relay")
    assert event.attempts == 1


def test_a_relay_that_cannot_publish_puts_its_claim_back_and_a_working_relay_queues_it(celery_session_worker):
    event = stripe_event("checkout.session.expired")
    # Stored and claimed in one transaction, so the session worker's relay can't see it first.
    with transaction.atomic():
        webhook_event_store(event)
        with app.connection_for_write(DEAD_BROKER) as dead:
            with pytest.raises(Exception):
                webhook_events_relay(broker_connection=dead)
        row = WebhookEvent.objects.get(stripe_event_id=event["id"])
        assert (row.status, row.queued_at) == ("received", None)  # nothing lost, nothing marked
    processed = wait_for(lambda: WebhookEvent.objects.filter(stripe_event_id=event["id"], status="processed").first(),
                         message="queued by the worker's relay once committed")
    assert processed.queued_at is not None and processed.attempts == 1



def test_after_postgresql_drops_every_connection_the_next_event_is_relayed_and_processed_first_time(
        celery_session_worker):
    """Workers keep their database connections between tasks (and the relay its LISTEN):
    when PostgreSQL drops them all (a restart, a failover), the relay reconnects and the
    next task gets a fresh connection from its health check instead of failing."""
    first = stripe_event("checkout.session.expired")
    webhook_event_store(first)
    wait_for(lambda: WebhookEvent.objects.filter(stripe_event_id=first["id"], status="processed").exists())
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        assert cursor.fetchone()[0] >= 2  # at least the relay's LISTEN and the worker's own
    second = stripe_event("checkout.session.expired")
    webhook_event_store(second)
    processed = wait_for(lambda: WebhookEvent.objects.filter(stripe_event_id=second["id"], status="processed").first(),
                         message="relayed and processed after the connections were dropped")
    assert processed.attempts == 1 and processed.last_error == ""
