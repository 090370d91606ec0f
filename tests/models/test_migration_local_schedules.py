"""The migration to local schedules, reschedules and cancellation tiers, on rows from before it:
UTC windows keep meaning UTC, and paid sessions get the cancellation policy they were sold under
(a full refund up to REFUND_CUTOFF_HOURS)."""
from datetime import UTC, datetime, time, timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from backend.models import Mentor, Session, WeeklyAvailability

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = ("backend", "0017_holds_per_address_and_email_verification")
AFTER = ("backend", "0018_schedules_in_local_time_and_reschedules")


def migrate(target):
    executor = MigrationExecutor(connection)
    executor.migrate([target])
    return executor.loader.project_state([target]).apps


def latest_schema():
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.fixture(autouse=True)
def latest_schema_afterwards():
    """Whatever happens, the next test finds every migration applied (later ones included)."""
    yield
    latest_schema()


def test_existing_windows_stay_utc_and_paid_sessions_get_the_policy_they_were_sold_under(settings):
    settings.REFUND_CUTOFF_HOURS = 48
    old = migrate(BEFORE)
    User, OldMentor = old.get_model("backend", "User"), old.get_model("backend", "Mentor")
    user = User.objects.create(email="ada@example.test", name="Ada", time_zone="Asia/Kolkata")
    mentor = OldMentor.objects.create(user=user, name="Ada", hourly_rate=12000, currency="usd")
    old.get_model("backend", "WeeklyAvailability").objects.create(mentor=mentor, weekday=1, start_time=time(9),
                                                                  end_time=time(12))
    start = datetime(2030, 1, 1, 9, tzinfo=UTC)
    sessions = old.get_model("backend", "Session").objects
    common = {"mentor": mentor, "mentee": user, "title": "t", "scheduled_at": start, "duration_minutes": 60,
              "ends_at": start + timedelta(hours=1), "amount": 12000, "currency": "usd"}
    paid = sessions.create(payment_status="paid", stripe_checkout_session_id="cs_old_paid", **common)
    pending = sessions.create(payment_status="pending", status="cancelled", stripe_checkout_session_id="cs_old_pending",
                              **common)

    migrate(AFTER)
    latest_schema()  # and any later migrations, which the models below expect
    assert Mentor.objects.get(pk=mentor.pk).schedule_time_zone == "UTC"
    window = WeeklyAvailability.objects.get(mentor_id=mentor.pk)
    assert (window.weekday, window.start_time, window.end_time) == (1, time(9), time(12))
    assert Session.objects.get(pk=paid.pk).cancellation_policy == [{"min_hours_before": 48, "refund_percent": 100}]
    assert Session.objects.get(pk=pending.pk).cancellation_policy is None  # copied when (if ever) it is paid
    assert Session.objects.get(pk=paid.pk).reschedule_count == 0
