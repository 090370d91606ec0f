"""Flows 7-8: holds expiring, lost slots, missed webhooks, and failures an admin retries."""
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from backend.models import Checkout, Notification, Refund, Session, WebhookEvent
from backend.services.reconciliation import checkout_holds_expire, payments_reconcile, webhook_events_sweep
from tests.factories import future_slot, login, make_mentor, make_user
from tests.flows.conftest import checkout, paid_session, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_beat_schedules_exist_after_migrate():
    # Other tests flush every table; run our schedule migrations again as `migrate` would.
    call_command("migrate", "backend", "0002", verbosity=0)
    assert not PeriodicTask.objects.filter(name="payments_reconcile").exists()
    call_command("migrate", "backend", verbosity=0)
    schedules = {t.name: t for t in PeriodicTask.objects.all()}
    assert schedules["payments_reconcile"].interval.every == 10
    assert schedules["payments_reconcile"].interval.period == "minutes"
    assert {"webhook_events_sweep", "checkout_holds_expire", "followups_sweep", "sessions_complete",
            "sessions_unpaid_at_start"} <= set(schedules)
    assert all(schedules[n].enabled for n in ("payments_reconcile", "webhook_events_sweep"))


def test_an_expired_hold_frees_the_slot_and_expires_the_stripe_session(client, payments):
    mentor = make_mentor()
    start = future_slot(days=4)
    cs_id = checkout(client, make_user(), mentor, scheduled_at=start)
    Checkout.objects.update(expires_at=timezone.now() - timedelta(seconds=1))  # its time is up

    assert checkout_holds_expire() == 1
    assert Checkout.objects.get(stripe_checkout_session_id=cs_id).status == "expired"
    assert payments.stripe_client().v1.checkout.sessions.retrieve(cs_id).status == "expired"
    assert checkout(client, make_user(), mentor, scheduled_at=start)  # the slot is free


def test_the_expired_event_releases_a_hold(client, payments):
    cs_id = checkout(client, make_user(), make_mentor())
    payments.expire_session(cs_id)
    wait_for(lambda: Checkout.objects.get(stripe_checkout_session_id=cs_id).status == "expired")


def test_a_payment_completing_after_its_slot_was_taken_is_refunded(client, payments):
    mentor = make_mentor()
    late, early = make_user(), make_user()
    start = future_slot(days=5)
    late_cs = checkout(client, late, mentor, scheduled_at=start)
    # Our hold was released while Stripe's page stayed open a moment longer (clock skew).
    Checkout.objects.filter(stripe_checkout_session_id=late_cs).update(status="expired")
    paid_session(client, payments, early, mentor, scheduled_at=start)  # someone else books and pays

    assert payments.pay(late_cs)["outcome"] == "succeeded"  # Stripe's page was still open
    lost = wait_for(lambda: Session.objects.filter(stripe_checkout_session_id=late_cs, payment_status="refunded").first(),
                    message="automatic refund")
    assert lost.status == "cancelled" and lost.mentee_id == late.pk
    assert Refund.objects.get(session=lost).amount == lost.amount
    wait_for(lambda: Notification.objects.filter(session=lost, kind="cancelled", recipient="mentee",
                                                 sent_at__isnull=False).exists())
    assert Session.objects.filter(mentor=mentor, status="scheduled").count() == 1


def test_reconcile_creates_the_sessions_whose_webhooks_never_came(client, payments):
    payments.pause()
    mentor = make_mentor()
    paid = []
    for n in range(10):
        cs_id = checkout(client, make_user(), mentor, scheduled_at=future_slot(days=2, hour=6 + n), duration_minutes=30)
        assert payments.pay(cs_id)["outcome"] == "succeeded"
        paid.append(cs_id)
    assert not WebhookEvent.objects.exists()

    fixed = payments_reconcile()
    assert fixed["events_ingested"] >= 10
    wait_for(lambda: Session.objects.filter(payment_status="paid").count() == 10, message="10 sessions")
    assert sorted(Session.objects.values_list("stripe_checkout_session_id", flat=True)) == sorted(paid)

    payments.resume()
    payments.wait_until_delivered(timeout=30)
    wait_for(lambda: not WebhookEvent.objects.filter(status__in=["received", "processing"]).exists())
    assert Session.objects.count() == 10
    assert payments_reconcile()["events_ingested"] == 0


def test_reconcile_settles_open_checkouts_from_stripe_when_events_are_gone(client, payments):
    payments.pause()
    cs_id = checkout(client, make_user(), make_mentor())
    payments.pay(cs_id)
    expired_cs = checkout(client, make_user(), make_mentor())
    payments.expire_session(expired_cs)
    # As if the events had aged out of Stripe's list: only the sessions' state is left.
    from backend.services.reconciliation import checkout_settle_from_stripe

    for hold in Checkout.objects.filter(status="open"):
        checkout_settle_from_stripe(checkout_id=hold.pk)
    assert Session.objects.get(stripe_checkout_session_id=cs_id).payment_status == "paid"
    assert Checkout.objects.get(stripe_checkout_session_id=expired_cs).status == "expired"
    payments.resume()


def test_sweep_queues_events_stuck_in_received(client, payments):
    payments.pause()
    cs_id = checkout(client, make_user(), make_mentor())
    payments.pay(cs_id)
    payments_reconcile()  # stored...
    wait_for(lambda: Session.objects.filter(stripe_checkout_session_id=cs_id).exists())
    # ...and one the relay claimed two minutes ago but never published (it died in between):
    WebhookEvent.objects.create(stripe_event_id="evt_stuck", type="checkout.session.expired", status="received",
                                queued_at=timezone.now() - timedelta(minutes=2),
                                payload={"id": "evt_stuck", "type": "checkout.session.expired",
                                         "data": {"object": {"id": "cs_not_ours", "metadata": {}}}})
    WebhookEvent.objects.filter(stripe_event_id="evt_stuck").update(updated_at=timezone.now() - timedelta(minutes=2))
    assert webhook_events_sweep() == 1
    wait_for(lambda: WebhookEvent.objects.get(stripe_event_id="evt_stuck").status == "processed")
    payments.resume()


REFUSE_SESSIONS = """
CREATE OR REPLACE FUNCTION refuse_sessions() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION 'sessions are read-only for this test'; END $$ LANGUAGE plpgsql;
CREATE TRIGGER refuse_sessions BEFORE INSERT ON sessions FOR EACH ROW EXECUTE FUNCTION refuse_sessions();
"""


def admin_client(client):
    staff = get_user_model().objects.create_superuser(email="staff@example.test", password="x-admin-pass-1", name="Staff")
    client.force_login(staff)
    return client


def test_a_failing_handler_retries_ends_failed_and_an_admin_retry_fulfils_it(client, payments):
    with connection.cursor() as cursor:
        cursor.execute(REFUSE_SESSIONS)  # the database refuses to store sessions
    try:
        cs_id = checkout(client, make_user(), make_mentor())
        payments.pay(cs_id)
        failed = wait_for(lambda: WebhookEvent.objects.filter(type="checkout.session.completed", status="failed").first(),
                          timeout=30, message="event failed after its retries")
        assert failed.attempts == 4  # the first try and TASK_MAX_RETRIES=3 retries
        assert "read-only" in failed.last_error
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER refuse_sessions ON sessions; DROP FUNCTION refuse_sessions();")
    assert not Session.objects.exists()
    alerts = [m for m in mail.outbox if m.to == ["admin@myroadmap.local"] and failed.stripe_event_id in m.subject]
    assert len(alerts) == 1  # once, for the final failure, not per attempt

    admin = admin_client(client)
    listing = admin.get("/admin/backend/webhookevent/?status__exact=failed")
    assert failed.stripe_event_id in listing.content.decode()
    detail = admin.get(f"/admin/backend/webhookevent/{failed.pk}/change/").content.decode()
    assert "read-only" in detail and cs_id in detail  # the error and the payload
    response = admin.post("/admin/backend/webhookevent/", {"action": "retry_selected", "_selected_action": [failed.pk]})
    assert response.status_code == 302
    wait_for(lambda: Session.objects.filter(stripe_checkout_session_id=cs_id, payment_status="paid").exists(),
             message="fulfilled after the admin retry")
    assert WebhookEvent.objects.get(pk=failed.pk).status == "processed"


def test_a_refund_during_a_stripe_outage_fails_and_an_admin_retry_sends_it(client, payments, settings):
    mentee = make_user()
    session = paid_session(client, payments, mentee, make_mentor())
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # Stripe unreachable
    assert client.post(f"/api/sessions/{session.pk}/cancel", {}, content_type="application/json",
                       **login(client, mentee)).status_code == 200
    refund = wait_for(lambda: Refund.objects.filter(session=session, status="failed").first(), timeout=60,
                      message="refund failed after retries")
    assert "unavailable" in refund.last_error.lower()
    wait_for(lambda: [m for m in mail.outbox if m.to == ["admin@myroadmap.local"]
                      and f"Refund {refund.pk} " in m.subject], message="admins told")

    settings.STRIPE_API_BASE = payments.api_base  # Stripe is back
    admin = admin_client(client)
    admin.post("/admin/backend/refund/", {"action": "retry_selected", "_selected_action": [refund.pk]})
    wait_for(lambda: Session.objects.get(pk=session.pk).payment_status == "refunded", message="refunded after retry")
    # A new refund with its own idempotency key; the failed one stays, for the record.
    assert Refund.objects.get(pk=refund.pk).status == "failed"
    assert Refund.objects.get(session=session, status="succeeded").pk != refund.pk


def test_followups_whose_queuing_was_lost_are_queued_by_the_sweep(client, payments):
    from backend.models import Mentor, Notification
    from backend.services.reconciliation import followups_sweep

    mentor = make_mentor()
    session = paid_session(client, payments, make_user(), mentor)
    wait_for(lambda: Notification.objects.filter(session=session, sent_at__isnull=False).count() == 2)
    # What a cancel commits while the broker is down: the rows, and no task queued.
    Session.objects.filter(pk=session.pk).update(status="cancelled")
    refund = Refund.objects.create(session=session, amount=session.amount, currency=session.currency, reason="lost")
    Mentor.objects.filter(pk=mentor.pk).update(stats_updated_at=None, total_sessions=99)
    two_minutes_ago = timezone.now() - timedelta(minutes=2)
    Refund.objects.filter(pk=refund.pk).update(updated_at=two_minutes_ago)
    Session.objects.filter(pk=session.pk).update(updated_at=two_minutes_ago)

    queued = followups_sweep()
    assert queued["refunds"] == 1 and queued["stats"] == 1
    wait_for(lambda: Session.objects.get(pk=session.pk).payment_status == "refunded", message="refunded")
    assert Refund.objects.get(pk=refund.pk).stripe_refund_id
    wait_for(lambda: Mentor.objects.get(pk=mentor.pk).total_sessions == 0, message="stats recomputed")
    wait_for(lambda: Notification.objects.filter(session=session, kind="refunded", sent_at__isnull=False).count() == 2)
    assert followups_sweep()["refunds"] == 0
