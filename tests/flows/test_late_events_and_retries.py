"""Issue 9, items 4, 5, 7, 8, 11: late webhooks and lapsed holds, delayed debits at start
time, bounded retries, isolated safety nets, idempotency keys across databases."""
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from backend.models import Checkout, Installation, Notification, Refund, Session, WebhookEvent
from backend.services.reconciliation import checkout_holds_expire, payments_reconcile, webhook_events_sweep
from backend.services.sessions import sessions_complete_past, sessions_unpaid_at_start_cancel
from backend.tasks.webhooks import process_webhook_event
from tests.factories import book, future_slot, login, make_mentor, make_user
from tests.flows.conftest import charge_of, checkout, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def refuse_sessions(errcode: str = "P0001"):
    """The database refuses to store sessions, with SQLSTATE `errcode`."""
    with connection.cursor() as cursor:
        cursor.execute(f"""
            CREATE OR REPLACE FUNCTION refuse_sessions() RETURNS trigger AS $$
            BEGIN RAISE EXCEPTION 'sessions are read-only for this test' USING ERRCODE = '{errcode}'; END $$
            LANGUAGE plpgsql;
            CREATE TRIGGER refuse_sessions BEFORE INSERT ON sessions FOR EACH ROW EXECUTE FUNCTION refuse_sessions();
        """)


def accept_sessions():
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER IF EXISTS refuse_sessions ON sessions; DROP FUNCTION IF EXISTS refuse_sessions();")


def completed_event(cs_id: str):
    return WebhookEvent.objects.filter(type="checkout.session.completed", payload__data__object__id=cs_id)


# --- 4. A late webhook must not let a paid slot be sold again ------------------------------


def test_a_hold_paid_with_its_event_late_keeps_its_slot_and_is_booked_when_the_hold_lapses(client, payments):
    mentor, payer = make_mentor(), make_user()
    start = future_slot(days=4)
    payments.pause()  # Stripe's deliveries are delayed
    cs_id = checkout(client, payer, mentor, scheduled_at=start)
    assert payments.pay(cs_id)["outcome"] == "succeeded"  # paid inside the hold
    Checkout.objects.update(expires_at=timezone.now() - timedelta(seconds=1))  # then the hold lapses

    second = book(client, login(client, make_user()), mentor, scheduled_at=start)
    assert second.status_code == 409, second.content  # the paid slot is not sold again

    checkout_holds_expire()  # Stripe says complete: booked now, as the webhook would
    session = Session.objects.get(stripe_checkout_session_id=cs_id)
    assert (session.status, session.payment_status, session.mentee_id) == ("scheduled", "paid", payer.pk)
    assert Checkout.objects.get(stripe_checkout_session_id=cs_id).status == "complete"
    assert book(client, login(client, make_user()), mentor, scheduled_at=start).status_code == 409

    payments.resume()  # the late event changes nothing
    payments.wait_until_delivered(timeout=30)
    wait_for(lambda: completed_event(cs_id).filter(status="processed").exists())
    assert Session.objects.filter(mentor=mentor).count() == 1


def test_a_late_completion_is_refunded_when_another_mentee_holds_the_slot(client, payments):
    mentor, late, holder = make_mentor(), make_user(), make_user()
    start = future_slot(days=4)
    late_cs = checkout(client, late, mentor, scheduled_at=start)
    Checkout.objects.filter(stripe_checkout_session_id=late_cs).update(status="expired")  # released by us...
    holder_cs = checkout(client, holder, mentor, scheduled_at=start)  # ...and held by someone else

    assert payments.pay(late_cs)["outcome"] == "succeeded"  # ...while Stripe's page was still open
    lost = wait_for(lambda: Session.objects.filter(stripe_checkout_session_id=late_cs, payment_status="refunded").first(),
                    message="the late payment refunded")
    assert lost.status == "cancelled"
    assert Refund.objects.get(session=lost).amount == lost.amount

    assert payments.pay(holder_cs)["outcome"] == "succeeded"  # the holder keeps the slot
    kept = wait_for(lambda: Session.objects.filter(stripe_checkout_session_id=holder_cs, payment_status="paid").first())
    assert kept.status == "scheduled"


# --- 5. Delayed debits and the session's time --------------------------------------------


@pytest.mark.parametrize("outcome", ["succeeded", "failed"])
def test_a_debit_pending_at_start_cancels_the_session_and_is_refunded_if_it_clears(
    client, payments, mailoutbox, outcome
):
    mentor, mentee = make_mentor(), make_user()
    cs_id = checkout(client, mentee, mentor)
    assert payments.pay(cs_id, method="bank_debit", outcome=outcome, settle_after=3600)["outcome"] == "processing"
    session = wait_for(lambda: Session.objects.filter(stripe_checkout_session_id=cs_id).first())
    assert session.payment_status == "pending"
    # Its time comes and goes with the debit still pending.
    Session.objects.filter(pk=session.pk).update(scheduled_at=timezone.now() - timedelta(hours=2),
                                                 ends_at=timezone.now() - timedelta(hours=1))

    assert sessions_complete_past() == 0  # never completed unpaid
    assert sessions_unpaid_at_start_cancel() == 1
    assert Session.objects.get(pk=session.pk).status == "cancelled"
    wait_for(lambda: Notification.objects.filter(session=session, kind="cancelled", sent_at__isnull=False).count() == 2,
             message="mentee and mentor told")
    assert any(f"session {session.pk}" in m.body and "pending" in m.subject for m in mailoutbox
               if m.to == ["admin@myroadmap.local"])

    payments.advance_clock(3700)  # the bank answers after the start
    if outcome == "succeeded":
        wait_for(lambda: Refund.objects.filter(session=session, stripe_refund_id__isnull=False).exists(),
                 message="refund asked of Stripe")
        payments.advance_clock(120)  # a bank debit's refund settles later too
        refunded = wait_for(lambda: Session.objects.filter(pk=session.pk, payment_status="refunded").first(),
                            message="refunded in full")
        assert refunded.refunded_amount == refunded.amount and refunded.status == "cancelled"
    else:
        wait_for(lambda: WebhookEvent.objects.filter(type="checkout.session.async_payment_failed",
                                                     status="processed").exists())
        assert not Refund.objects.exists()
        assert Session.objects.get(pk=session.pk).status == "cancelled"


@pytest.mark.parametrize("outcome", ["succeeded", "failed"])
def test_a_debit_settling_after_a_delivered_session_never_undoes_it_silently(client, payments, mailoutbox, outcome):
    mentor = make_mentor()
    cs_id = checkout(client, make_user(), mentor)
    payments.pay(cs_id, method="bank_debit", outcome=outcome, settle_after=3600)
    session = wait_for(lambda: Session.objects.filter(stripe_checkout_session_id=cs_id).first())
    # Delivered while pending: a row completed before pending sessions stopped being completed.
    Session.objects.filter(pk=session.pk).update(status="completed")

    payments.advance_clock(3700)
    wait_for(lambda: WebhookEvent.objects.filter(type__startswith="checkout.session.async_payment_",
                                                 status="processed").exists(), message="the debit's outcome")
    session.refresh_from_db()
    assert session.status == "completed" and not Refund.objects.exists()
    if outcome == "succeeded":
        assert session.payment_status == "paid"
    else:  # kept, and the admins hear of it
        wait_for(lambda: any(f"session {session.pk}" in m.subject for m in mailoutbox
                             if m.to == ["admin@myroadmap.local"]), message="admin alert")


# --- 7. Bounded retries ------------------------------------------------------------------


def test_retries_are_counted_across_requeues_and_failed_stays_failed(client, payments, settings):
    settings.TASK_RETRY_BASE_SECONDS = 2.0  # production backoff: 1-2 s, 2-4 s, 4-8 s ...
    refuse_sessions()
    try:
        cs_id = checkout(client, make_user(), make_mentor())
        payments.pay(cs_id)
        event = wait_for(lambda: completed_event(cs_id).filter(attempts=1, status="received").first(),
                         message="first attempt failed, retry scheduled")
        assert event.next_attempt_at > event.updated_at
        # The sweep's threshold passes while the retry waits: it leaves the event to its retry.
        WebhookEvent.objects.filter(pk=event.pk).update(updated_at=timezone.now() - timedelta(minutes=2))
        assert webhook_events_sweep() == 0
        # A second chain all the same (a redelivered task): both count on the same row.
        process_webhook_event.delay(event.stripe_event_id)
        failed = wait_for(lambda: WebhookEvent.objects.filter(pk=event.pk, status="failed").first(), timeout=40,
                          message="failed after its retries")
        deadline = time.monotonic() + 10  # the other chain's last retry comes and goes
        while time.monotonic() < deadline:
            now = WebhookEvent.objects.get(pk=event.pk)
            assert now.status == "failed" and now.attempts <= 5, (now.status, now.attempts)
            time.sleep(0.5)
    finally:
        accept_sessions()
    assert process_webhook_event(failed.stripe_event_id) == "skipped"  # a re-queue: failed until an admin retries
    assert WebhookEvent.objects.get(pk=event.pk).status == "failed"
    assert not Session.objects.exists()


def test_a_row_the_database_refuses_fails_at_once(client, payments):
    refuse_sessions(errcode="23505")  # unique_violation: IntegrityError
    try:
        cs_id = checkout(client, make_user(), make_mentor())
        payments.pay(cs_id)
        failed = wait_for(lambda: completed_event(cs_id).filter(status="failed").first(), message="failed")
    finally:
        accept_sessions()
    assert failed.attempts == 1 and "IntegrityError" in failed.last_error


def test_events_about_another_integrations_payment_are_ignored_not_retried(client, payments):
    stranger = payments.stripe_client()  # another integration on the same Stripe account
    foreign = stranger.v1.checkout.sessions.create(params={
        "mode": "payment", "success_url": "https://elsewhere.example/ok",
        "line_items": [{"quantity": 1, "price_data": {"currency": "usd", "unit_amount": 2500,
                                                      "product_data": {"name": "Not a session"}}}],
        "payment_intent_data": {"metadata": {"order": "77"}},
    })
    assert payments.pay(foreign.id)["outcome"] == "succeeded"
    payment_intent = stranger.v1.checkout.sessions.retrieve(foreign.id).payment_intent
    payments.refund_charge(charge_of(payments, payment_intent))  # refunded in their Dashboard

    refunded = wait_for(lambda: WebhookEvent.objects.filter(type="charge.refunded").exclude(
        status__in=["received", "processing"]).first(), message="charge.refunded decided")
    assert refunded.status == "ignored" and refunded.attempts == 1
    assert "not one of ours" in refunded.last_error
    assert not Session.objects.exists()


# --- 8. One bad item never stops the safety nets -----------------------------------------


def test_one_bad_hold_does_not_stop_hold_expiry_or_reconcile(client, payments):
    mentor = make_mentor()
    payments.pause()
    bad = checkout(client, make_user(), mentor, scheduled_at=future_slot(days=3, hour=9))
    Checkout.objects.filter(stripe_checkout_session_id=bad).update(stripe_checkout_session_id="cs_test_gone_from_stripe")
    paid = checkout(client, make_user(), mentor, scheduled_at=future_slot(days=3, hour=12))
    payments.pay(paid)

    assert payments_reconcile()["errors"] == 1
    assert wait_for(lambda: Session.objects.filter(stripe_checkout_session_id=paid, payment_status="paid").exists())

    lapsed = checkout(client, make_user(), mentor, scheduled_at=future_slot(days=3, hour=15))
    Checkout.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert checkout_holds_expire() == 1
    assert Checkout.objects.get(stripe_checkout_session_id=lapsed).status == "expired"
    assert Checkout.objects.get(stripe_checkout_session_id="cs_test_gone_from_stripe").status == "open"
    payments.resume()


def test_reconcile_reads_events_from_its_high_water_mark(client, payments):
    payments.pause()
    mentor = make_mentor()
    paid = []
    for hour in (8, 10, 12):
        cs_id = checkout(client, make_user(), mentor, scheduled_at=future_slot(days=2, hour=hour))
        payments.pay(cs_id)
        paid.append(cs_id)
        fixed = payments_reconcile()
        newest = max(e.payload["created"] for e in WebhookEvent.objects.all())
        assert Installation.objects.get().stripe_events_read_until == newest
        if hour == 10:
            WebhookEvent.objects.all().delete()  # older events pruned (retention)
        payments.advance_clock(3600)  # an hour later at Stripe
    # The last scan read from the mark (less its few minutes of overlap), not three days again:
    # the first payment's events, long before the mark, were not listed.
    stored = set(WebhookEvent.objects.values_list("payload__data__object__id", flat=True))
    assert paid[2] in stored and paid[0] not in stored
    assert fixed["events_ingested"] >= 1
    payments.resume()


# --- 11. Idempotency keys across databases -----------------------------------------------


def test_a_reset_database_does_not_reuse_the_stripe_idempotency_keys(client, payments):
    first = checkout(client, make_user(), make_mentor(), scheduled_at=future_slot(days=3))
    first_id = Checkout.objects.get().pk
    # The database is reset against the same Stripe account: ids start again, a new install id.
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE backend_checkout, backend_installation CASCADE")
        cursor.execute("SELECT setval(pg_get_serial_sequence('backend_checkout', 'id'), %s, false)", [first_id])
    again = checkout(client, make_user(), make_mentor(hourly_rate=5000), scheduled_at=future_slot(days=5))
    assert again != first and Checkout.objects.get().pk == first_id
    stripe_session = payments.stripe_client().v1.checkout.sessions.retrieve(again)
    assert stripe_session.amount_total == 5000
    assert stripe_session.metadata["install_id"] == Installation.objects.get().install_id
