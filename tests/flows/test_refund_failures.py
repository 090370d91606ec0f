"""Issue 9's refund failure paths, through the sandbox over HTTP and a real worker: refunds
Stripe fails later, stale refund events, Dashboard refunds racing a cancel, amount
mismatches, and the emails and admin alerts each one sends (once, after commit)."""
import json
from datetime import datetime, timedelta

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.utils import timezone

from backend.models import Checkout, Notification, Refund, Session, WebhookEvent
from tests.conftest import WEBHOOK_SECRET
from tests.factories import future_slot, login, make_mentor, make_session, make_user
from tests.flows.conftest import charge_of, checkout, paid_session, wait_for
from tests.smtp import SMTPServer
from tests.webhooks import signature_header

pytestmark = pytest.mark.django_db(transaction=True)

FAILS_LATER = "4000000000005126"  # Stripe's test card whose refunds fail after succeeding
ADMIN = "admin@myroadmap.local"


def cancel(client, user, session):
    response = client.post(f"/api/sessions/{session.pk}/cancel", {"reason": "changed plans"},
                           content_type="application/json", **login(client, user))
    assert response.status_code == 200, response.content
    return response


def admin_mails(text: str) -> list:
    return [m for m in mail.outbox if m.to == [ADMIN] and text in (m.subject + m.body)]


def emails_to(address: str, subject_start: str) -> list:
    return [m for m in mail.outbox if m.to == [address] and m.subject.startswith(subject_start)]


def stripe_charge(sandbox, session):
    return sandbox.stripe_client().v1.charges.retrieve(charge_of(sandbox, session.stripe_payment_id))


def deliver(live_server, event) -> None:
    """Post one of Stripe's events to our webhook, signed, as a reordering network would."""
    payload = json.dumps(event.to_dict()).encode()
    response = httpx.post(f"{live_server.url}/api/payments/webhook", content=payload,
                          headers={"Stripe-Signature": signature_header(payload, WEBHOOK_SECRET),
                                   "Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    wait_for(lambda: WebhookEvent.objects.filter(stripe_event_id=event.id, status="processed").exists(),
             message=f"{event.type} processed")


def bank_debit_session(client, sandbox, mentee, mentor, **booking) -> Session:
    cs_id = checkout(client, mentee, mentor, **booking)
    assert sandbox.pay(cs_id, method="bank_debit", outcome="succeeded")["outcome"] == "processing"
    sandbox.advance_clock(120)  # the debit clears
    return wait_for(lambda: Session.objects.filter(stripe_checkout_session_id=cs_id, payment_status="paid").first(),
                    message="bank debit cleared")


def test_a_refund_stripe_fails_later_puts_the_money_back_on_the_books_and_an_admin_retries_it(client, payments):
    mentor, mentee = make_mentor(hourly_rate=9000), make_user()
    session = paid_session(client, payments, mentee, mentor, card=FAILS_LATER, scheduled_at=future_slot(days=3))
    cancel(client, mentee, session)
    wait_for(lambda: Session.objects.get(pk=session.pk).payment_status == "refunded", message="refunded")
    wait_for(lambda: emails_to(mentee.email, "Refund issued"), message="refund email (Stripe said succeeded)")

    payments.advance_clock(31)  # the card's bank refuses the refund
    failed = wait_for(lambda: Refund.objects.filter(session=session, status="failed").first(), message="refund failed")
    assert failed.failure_reason == "expired_or_canceled_card"
    session = wait_for(lambda: Session.objects.filter(pk=session.pk, payment_status="paid", refunded_amount=0).first(),
                       message="refunded amount follows Stripe's total back down")
    assert session.status == "cancelled"
    assert stripe_charge(payments, session).amount_refunded == 0
    wait_for(lambda: WebhookEvent.objects.filter(type="refund.failed", status="processed").exists())
    alerts = wait_for(lambda: admin_mails(failed.stripe_refund_id), message="admins told")
    assert len(alerts) == 1  # refund.updated and refund.failed: one failure, one alert

    staff = get_user_model().objects.create_superuser(email="staff@example.test", password="x-admin-pass-1", name="S")
    client.force_login(staff)
    response = client.post("/admin/backend/refund/", {"action": "retry_selected", "_selected_action": [failed.pk]})
    assert response.status_code == 302
    retry = wait_for(lambda: Refund.objects.filter(session=session, status="succeeded").first(), message="new refund")
    assert retry.pk != failed.pk and retry.stripe_refund_id != failed.stripe_refund_id
    assert retry.requested_by_id == staff.pk and retry.amount == session.amount
    wait_for(lambda: Session.objects.get(pk=session.pk).payment_status == "refunded", message="refunded again")
    assert stripe_charge(payments, session).amount_refunded == session.amount
    assert Refund.objects.get(pk=failed.pk).status == "failed"  # the history stays
    assert retry.retry_of_id == failed.pk
    # Retrying the same failure again starts nothing: it has its retry.
    client.post("/admin/backend/refund/", {"action": "retry_selected", "_selected_action": [failed.pk]})
    assert Refund.objects.filter(session=session).count() == 2


def test_a_pending_refund_is_not_announced_until_stripe_says_succeeded(client, payments):
    mentor, mentee = make_mentor(), make_user()
    session = bank_debit_session(client, payments, mentee, mentor)
    cancel(client, mentor.user, session)
    wait_for(lambda: Refund.objects.filter(session=session, status="pending").exists(), message="refund pending")
    payments.wait_until_delivered()
    wait_for(lambda: not WebhookEvent.objects.exclude(status="processed").exclude(status="ignored").exists())
    assert not Notification.objects.filter(session=session, kind="refunded", sent_at__isnull=False).exists()
    assert not emails_to(mentee.email, "Refund issued")

    payments.advance_clock(120)  # the bank returns the money
    wait_for(lambda: emails_to(mentee.email, "Refund issued"), message="refund email once succeeded")
    assert Refund.objects.get(session=session).status == "succeeded"


def test_a_stale_refund_event_never_rewinds_a_refund_nor_blocks_the_remainder(client, live_server, payments):
    mentor, mentee = make_mentor(hourly_rate=10000), make_user()
    session = bank_debit_session(client, payments, mentee, mentor)
    payments.pause()
    payments.refund_charge(charge_of(payments, session.stripe_payment_id), amount=2500)  # Dashboard, pending
    payments.advance_clock(120)  # ... then succeeded
    events = payments.stripe_client().v1.events.list({"limit": 100}).data
    updated = next(e for e in events if e.type == "refund.updated")
    created = next(e for e in events if e.type == "refund.created")
    deliver(live_server, updated)
    deliver(live_server, created)  # older, says pending
    refund = Refund.objects.get(session=session)
    assert refund.status == "succeeded" and refund.amount == 2500
    # Replaying an old event changes nothing either.
    WebhookEvent.objects.filter(stripe_event_id=created.id).update(status="received")
    from backend.services.webhooks import webhook_event_replay
    webhook_event_replay(stripe_event_id=created.id)
    assert Refund.objects.get(pk=refund.pk).status == "succeeded"
    assert Session.objects.get(pk=session.pk).refunded_amount == 2500

    payments.resume()
    cancel(client, mentor.user, session)  # the rest is refunded, not blocked by a "pending" one
    payments.advance_clock(120)
    wait_for(lambda: Session.objects.get(pk=session.pk).payment_status == "refunded", timeout=30,
             message="rest refunded")
    wait_for(lambda: Session.objects.get(pk=session.pk).refunded_amount == 10000)
    assert stripe_charge(payments, session).amount_refunded == 10000


def test_a_dashboard_partial_refund_racing_a_cancel_is_topped_up_to_the_full_amount(client, payments):
    mentor, mentee = make_mentor(hourly_rate=13000), make_user()
    session = paid_session(client, payments, mentee, mentor, scheduled_at=future_slot(days=3))
    payments.pause()  # our copy goes stale
    payments.refund_charge(charge_of(payments, session.stripe_payment_id), amount=6500)
    cancel(client, mentee, session)
    ours = wait_for(lambda: Refund.objects.filter(session=session, stripe_refund_id__isnull=False).first(),
                    message="our refund reached Stripe")
    assert ours.amount == 6500 and ours.status == "succeeded"
    payments.resume()
    wait_for(lambda: Session.objects.get(pk=session.pk).payment_status == "refunded", message="refunded in full")
    assert Session.objects.get(pk=session.pk).refunded_amount == 13000
    assert stripe_charge(payments, session).amount_refunded == 13000


def test_a_dashboard_refund_pending_when_the_session_is_cancelled_is_topped_up(client, payments):
    mentor, mentee = make_mentor(hourly_rate=10000), make_user()
    session = bank_debit_session(client, payments, mentee, mentor)
    payments.refund_charge(charge_of(payments, session.stripe_payment_id), amount=4000)  # pending
    wait_for(lambda: Refund.objects.filter(session=session, status="pending").exists(), message="dashboard refund seen")
    cancel(client, mentor.user, session)
    payments.advance_clock(120)  # the Dashboard's refund succeeds ...
    wait_for(lambda: Refund.objects.filter(session=session).count() == 2, message="top-up requested")
    payments.advance_clock(120)  # ... and so does the top-up
    wait_for(lambda: Session.objects.get(pk=session.pk).payment_status == "refunded", message="refunded in full")
    assert stripe_charge(payments, session).amount_refunded == 10000


def test_an_amount_mismatch_is_refunded_in_full_and_the_admins_told_once(client, payments):
    mentor, mentee = make_mentor(hourly_rate=12000), make_user()
    cs_id = checkout(client, mentee, mentor)
    Checkout.objects.filter(stripe_checkout_session_id=cs_id).update(amount=11000)  # our row disagrees with Stripe
    assert payments.pay(cs_id)["outcome"] == "succeeded"
    payment_intent = payments.stripe_client().v1.checkout.sessions.retrieve(cs_id).payment_intent
    refunds = wait_for(lambda: payments.stripe_client().v1.refunds.list({"payment_intent": payment_intent}).data,
                       message="captured payment refunded")
    assert sum(r.amount for r in refunds) == 12000
    wait_for(lambda: admin_mails(cs_id), message="admins told")
    payments.wait_until_delivered()
    assert not Session.objects.filter(status="scheduled").exists()
    wait_for(lambda: Session.objects.filter(stripe_checkout_session_id=cs_id, payment_status="refunded").exists())
    assert len(admin_mails(cs_id)) == 1
    assert not [m for m in mail.outbox if m.to == [mentor.user.email]]  # the mentor never had this booking


def test_the_lost_slot_notice_goes_to_the_mentee_only(client, payments):
    mentor, late = make_mentor(), make_user()
    start = future_slot(days=5)
    late_cs = checkout(client, late, mentor, scheduled_at=start)
    # Someone else booked the slot after this hold lapsed.
    begins = datetime.fromisoformat(start)
    make_session(mentor=mentor, mentee=make_user(), scheduled_at=begins, ends_at=begins + timedelta(hours=1))
    assert payments.pay(late_cs)["outcome"] == "succeeded"
    lost = wait_for(lambda: Session.objects.filter(stripe_checkout_session_id=late_cs,
                                                   payment_status="refunded").first(), message="automatic refund")
    wait_for(lambda: emails_to(late.email, "Refund issued"), message="mentee told of the refund")
    assert emails_to(late.email, "Session cancelled")
    assert not Notification.objects.filter(session=lost, recipient="mentor").exists()
    assert not [m for m in mail.outbox if m.to == [mentor.user.email]]


def test_an_address_the_mail_server_refuses_for_good_is_not_retried_by_the_task_or_the_sweep(client, payments,
                                                                                               settings):
    from backend.services.reconciliation import followups_sweep

    mentee = make_user()
    with SMTPServer(refused=[mentee.email]) as smtp:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", smtp.port, False
        session = paid_session(client, payments, mentee, make_mentor())
        refused = wait_for(lambda: Notification.objects.filter(session=session, recipient="mentee",
                                                               refused_at__isnull=False).first(), message="refused")
        assert "550" in refused.last_error and refused.sent_at is None
        wait_for(lambda: Notification.objects.filter(session=session, recipient="mentor",
                                                     sent_at__isnull=False).exists(), message="the mentor's copy goes")
        Session.objects.filter(pk=session.pk).update(updated_at=timezone.now() - timedelta(minutes=2))
        assert followups_sweep()["notifications"] == 0
        assert smtp.rcpt_to.count(mentee.email.lower()) == 1
