"""Flow 3-5: a payment becomes exactly one paid session, stats and confirmations."""
import icalendar
import pytest
from django.core import mail

from backend.models import Checkout, Mentor, Notification, Session, WebhookEvent
from tests.factories import make_mentor, make_user
from tests.flows.conftest import checkout, paid_session, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_paying_with_4242_books_a_paid_session_with_stats_and_both_emails(client, payments):
    mentor = make_mentor(name="Ada", hourly_rate=12000)
    mentee = make_user(email="mentee@example.test")
    session = paid_session(client, payments, mentee, mentor, duration_minutes=90)

    assert session.status == "scheduled"
    assert session.stripe_payment_id.startswith("pi_")
    assert session.amount == 18000
    assert Checkout.objects.get().status == "complete"

    wait_for(lambda: Mentor.objects.get(pk=mentor.pk).total_sessions == 1, message="stats")
    mentor.refresh_from_db()
    assert (mentor.total_sessions, mentor.total_minutes, mentor.total_earnings) == (1, 90, 18000)

    wait_for(lambda: Notification.objects.filter(session=session, sent_at__isnull=False).count() == 2, message="emails")
    booked = [m for m in mail.outbox if session.title in m.subject]
    assert sorted(m.to[0] for m in booked) == sorted(["mentee@example.test", mentor.user.email])
    to_mentee = next(m for m in booked if m.to == ["mentee@example.test"])
    invite = next(a for a in to_mentee.attachments if a[0].endswith(".ics"))
    event = icalendar.Calendar.from_ical(invite[1]).walk("VEVENT")[0]
    assert event.decoded("DTSTART") == session.scheduled_at
    assert event.decoded("DTEND") == session.ends_at


def test_the_declined_card_creates_nothing(client, payments):
    cs_id = checkout(client, make_user(), make_mentor())
    result = payments.pay(cs_id, card="4000000000000002")
    assert result["outcome"] == "declined"
    payments.wait_until_delivered()
    assert not Session.objects.exists()
    assert Checkout.objects.get().status == "open"


def test_the_3ds_card_books_after_authentication(client, payments):
    cs_id = checkout(client, make_user(), make_mentor())
    assert payments.pay(cs_id, card="4000002500003155")["outcome"] == "requires_action"
    payments.wait_until_delivered()
    assert not Session.objects.exists()
    assert payments.authenticate(cs_id, "complete")["outcome"] == "succeeded"
    session = wait_for(lambda: Session.objects.filter(stripe_checkout_session_id=cs_id, payment_status="paid").first())
    assert session.status == "scheduled"


def test_a_failed_3ds_authentication_books_nothing(client, payments):
    cs_id = checkout(client, make_user(), make_mentor())
    payments.pay(cs_id, card="4000002500003155")
    assert payments.authenticate(cs_id, "fail")["outcome"] == "declined"
    payments.wait_until_delivered()
    assert not Session.objects.exists()


@pytest.mark.parametrize("outcome", ["succeeded", "failed"])
def test_a_delayed_payment_is_pending_then_settles(client, payments, outcome):
    mentor = make_mentor()
    mentee = make_user()
    cs_id = checkout(client, mentee, mentor)
    assert payments.pay(cs_id, method="bank_debit", outcome=outcome)["outcome"] == "processing"
    session = wait_for(lambda: Session.objects.filter(stripe_checkout_session_id=cs_id).first())
    assert session.payment_status == "pending" and session.status == "scheduled"

    payments.advance_clock(120)  # the bank answers
    if outcome == "succeeded":
        wait_for(lambda: Session.objects.get(pk=session.pk).payment_status == "paid", message="paid")
        wait_for(lambda: Mentor.objects.get(pk=mentor.pk).total_sessions == 1, message="stats")
    else:
        wait_for(lambda: Session.objects.get(pk=session.pk).status == "cancelled", message="cancelled")
        assert Session.objects.get(pk=session.pk).payment_status == "pending"
        wait_for(lambda: Notification.objects.filter(session=session, kind="payment_failed", sent_at__isnull=False).exists())
        assert Mentor.objects.get(pk=mentor.pk).total_sessions == 0
        # The slot is free again.
        assert checkout(client, make_user(), mentor, scheduled_at=session.scheduled_at.isoformat())


def test_the_same_event_five_times_makes_one_session(client, payments):
    session = paid_session(client, payments, make_user(), make_mentor())
    completed = WebhookEvent.objects.get(type="checkout.session.completed")
    for _ in range(5):
        payments.resend(completed.stripe_event_id)
    payments.wait_until_delivered()
    wait_for(lambda: not WebhookEvent.objects.filter(status__in=["received", "processing"]).exists())
    assert Session.objects.count() == 1
    assert Session.objects.get().pk == session.pk
    assert len(payments.deliveries(event_id=completed.stripe_event_id)) >= 6


def test_duplicate_and_reordered_deliveries_over_100_bookings(client, payments, settings):
    settings.RATE_LIMIT_ENABLED = False  # 100 checkouts from one address: a load test, not abuse
    payments.set_faults(duplicate_rate=0.5, reorder_window=10, seed=7)
    settings.MAX_OPEN_HOLDS = 100  # paid holds stay open until their delayed, reordered events land
    mentors = [make_mentor(name=f"Mentor {i}", hourly_rate=6000 + 1000 * i) for i in range(10)]
    mentees = [make_user() for _ in range(10)]
    paid = []
    for n in range(100):
        mentor = mentors[n % 10]
        cs_id = checkout(client, mentees[n // 10], mentor, scheduled_at=_slot(n), duration_minutes=30)
        assert payments.pay(cs_id)["outcome"] == "succeeded"
        paid.append(cs_id)
    payments.wait_until_delivered(timeout=120)
    wait_for(lambda: Session.objects.filter(payment_status="paid").count() == 100, timeout=120, message="100 sessions")
    wait_for(lambda: not WebhookEvent.objects.filter(status__in=["received", "processing"]).exists(), timeout=60)

    assert sorted(Session.objects.values_list("stripe_checkout_session_id", flat=True)) == sorted(paid)
    duplicates = [d for d in payments.deliveries() if d.get("copy")]
    assert duplicates, "the sandbox duplicated some deliveries"

    def stats_match():
        for mentor in Mentor.objects.all():
            sessions = Session.objects.filter(mentor=mentor, payment_status="paid")
            if (mentor.total_sessions, mentor.total_earnings) != (sessions.count(), sum(s.amount for s in sessions)):
                return False
        return True

    wait_for(stats_match, timeout=60, message="stats equal the sums of paid sessions")


def _slot(n: int) -> str:
    from tests.factories import future_slot

    return future_slot(days=2 + n // 10, hour=8 + (n % 10))
