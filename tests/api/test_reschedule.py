"""POST /api/sessions/{id}/reschedule: a paid session moves to another free slot of its mentor,
the payment carries over, the policy (notice, number of moves, the mentor always) holds, and a
slot that can't be had is refused. Cancelling afterwards follows the booking's own policy."""
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from backend.models import BlockedDate, Checkout, Refund, Session, SessionReschedule, WeeklyAvailability
from tests.factories import login, make_mentor, make_session, make_user

pytestmark = pytest.mark.django_db


def at(*, days: int, hour: int = 15, minute: int = 0) -> datetime:
    return (timezone.now() + timedelta(days=days)).astimezone(UTC).replace(hour=hour, minute=minute, second=0,
                                                                         microsecond=0)


def move(client, session, when, headers, **extra):
    body = {"scheduled_at": when.isoformat() if isinstance(when, datetime) else when, **extra}
    return client.post(f"/api/sessions/{session.pk}/reschedule", body, content_type="application/json", **headers)


@pytest.fixture
def booked():
    mentor = make_mentor(name="Ada", hourly_rate=12000)
    mentee = make_user(name="Mia")
    return make_session(mentor=mentor, mentee=mentee, scheduled_at=at(days=5), ends_at=at(days=5) + timedelta(hours=1))


def test_a_mentee_moves_a_paid_session_and_the_payment_carries_over(client, booked):
    before = Session.objects.get(pk=booked.pk)
    new_start = at(days=6, hour=10)
    response = move(client, booked, new_start, login(client, booked.mentee))
    assert response.status_code == 200, response.content
    body = response.json()
    assert datetime.fromisoformat(body["scheduled_at"]) == new_start
    assert datetime.fromisoformat(body["ends_at"]) == new_start + timedelta(hours=1)
    assert body["reschedule_count"] == 1

    moved = Session.objects.get(pk=booked.pk)
    # Same payment, same price, same booking: only the slot changed.
    assert (moved.amount, moved.currency, moved.payment_status, moved.stripe_payment_id,
            moved.stripe_checkout_session_id, moved.status) == (
        before.amount, before.currency, "paid", before.stripe_payment_id, before.stripe_checkout_session_id, "scheduled")
    assert (moved.scheduled_at, moved.ends_at) == (new_start, new_start + timedelta(hours=1))
    (row,) = SessionReschedule.objects.filter(session=booked)
    assert (row.previous_scheduled_at, row.scheduled_at, row.by_mentor) == (before.scheduled_at, new_start, False)
    assert not Refund.objects.exists() and not Checkout.objects.exists()

    # The old slot is free again for everyone.
    free = client.get(f"/api/mentors/{booked.mentor_id}/availability",
                      {"from": before.scheduled_at.isoformat(), "to": before.ends_at.isoformat()}).json()
    assert [(datetime.fromisoformat(i["start"]), datetime.fromisoformat(i["end"])) for i in free] == [
        (before.scheduled_at, before.ends_at)]


def test_moving_to_the_time_it_already_has_changes_nothing(client, booked):
    response = move(client, booked, booked.scheduled_at, login(client, booked.mentee))
    assert response.status_code == 200 and response.json()["reschedule_count"] == 0
    assert not SessionReschedule.objects.exists()


def test_a_move_may_overlap_the_sessions_own_old_slot(client, booked):
    response = move(client, booked, booked.scheduled_at + timedelta(minutes=30), login(client, booked.mentee))
    assert response.status_code == 200, response.content


def test_a_mentee_moves_at_most_max_reschedules_times_and_the_mentor_always(client, booked, settings):
    settings.MAX_RESCHEDULES = 2
    mentee_headers, mentor_headers = login(client, booked.mentee), login(client, booked.mentor.user)
    assert move(client, booked, at(days=6), mentee_headers).status_code == 200
    assert move(client, booked, at(days=7), mentee_headers).status_code == 200
    third = move(client, booked, at(days=8), mentee_headers)
    assert third.status_code == 409 and third.json()["code"] == "too_many_reschedules"
    assert move(client, booked, at(days=8), mentor_headers).status_code == 200
    assert move(client, booked, at(days=9), mentor_headers).status_code == 200
    assert Session.objects.get(pk=booked.pk).reschedule_count == 4


def test_a_mentee_moves_only_until_the_notice_and_the_mentor_at_any_time(client, settings):
    settings.RESCHEDULE_NOTICE_HOURS = 24
    mentor, mentee = make_mentor(), make_user()
    soon = make_session(mentor=mentor, mentee=mentee, starts_in=timedelta(hours=20))
    refused = move(client, soon, at(days=5), login(client, mentee))
    assert refused.status_code == 409 and refused.json()["code"] == "reschedule_window_closed"
    assert "24 hours" in refused.json()["detail"]
    assert move(client, soon, at(days=5), login(client, mentor.user)).status_code == 200


def test_another_duration_is_422_naming_duration_minutes(client, booked):
    response = move(client, booked, at(days=6), login(client, booked.mentee), duration_minutes=90)
    assert response.status_code == 422 and response.json()["field"] == "duration_minutes"
    assert response.json()["code"] == "duration_change_not_supported"
    same = move(client, booked, at(days=6), login(client, booked.mentee), duration_minutes=60)
    assert same.status_code == 200


def test_a_slot_that_cant_be_had_is_refused_and_nothing_moves(client, booked, settings):
    headers = login(client, booked.mentee)
    mentor = booked.mentor
    taken = make_session(mentor=mentor, mentee=make_user(), scheduled_at=at(days=6), ends_at=at(days=6, hour=16))
    held_at = at(days=7)
    Checkout.objects.create(mentee=make_user(), mentor=mentor, title="t", scheduled_at=held_at, duration_minutes=60,
                            ends_at=held_at + timedelta(hours=1), amount=12000, currency="usd",
                            expires_at=timezone.now() + timedelta(minutes=20))
    elsewhere = make_session(mentor=make_mentor(), mentee=booked.mentee, scheduled_at=at(days=8),
                             ends_at=at(days=8, hour=16))

    for when in (taken.scheduled_at + timedelta(minutes=30), held_at, elsewhere.scheduled_at):
        response = move(client, booked, when, headers)
        assert response.status_code == 409 and response.json()["code"] == "slot_unavailable", response.content
        assert response.json()["field"] == "scheduled_at"

    soon = move(client, booked, timezone.now() + timedelta(minutes=30), headers)
    assert soon.status_code == 422 and soon.json()["field"] == "scheduled_at"
    naive = move(client, booked, at(days=6).replace(tzinfo=None).isoformat(), headers)
    assert naive.status_code == 422 and naive.json()["field"] == "scheduled_at"

    WeeklyAvailability.objects.create(mentor=mentor, weekday=at(days=9).weekday(), start_time="09:00", end_time="12:00")
    outside = move(client, booked, at(days=9, hour=13), headers)
    assert outside.status_code == 409 and outside.json()["code"] == "outside_schedule"
    BlockedDate.objects.create(mentor=mentor, date=at(days=9).date())
    blocked = move(client, booked, at(days=9, hour=10), headers)
    assert blocked.status_code == 409 and blocked.json()["code"] == "outside_schedule"

    assert Session.objects.get(pk=booked.pk).scheduled_at == booked.scheduled_at
    assert not SessionReschedule.objects.exists()


def test_only_its_mentee_and_mentor_move_a_session(client, booked):
    stranger = move(client, booked, at(days=6), login(client, make_user()))
    assert stranger.status_code == 404
    other_mentor = move(client, booked, at(days=6), login(client, make_mentor().user))
    assert other_mentor.status_code == 404
    assert move(client, booked, at(days=6), {}).status_code == 401
    assert Session.objects.get(pk=booked.pk).reschedule_count == 0


@pytest.mark.parametrize("change, code", [
    ({"status": "cancelled"}, "not_reschedulable"),
    ({"payment_status": "pending"}, "not_reschedulable"),
    ({"is_disputed": True}, "not_reschedulable"),
])
def test_only_scheduled_paid_undisputed_sessions_move(client, booked, change, code):
    Session.objects.filter(pk=booked.pk).update(**change)
    response = move(client, booked, at(days=6), login(client, booked.mentor.user))
    assert response.status_code == 409 and response.json()["code"] == code


# --- Cancelling afterwards, and the policy snapshot ------------------------------------------


def test_after_the_mentor_moves_it_the_mentee_cancels_with_a_full_refund_even_late(client, settings):
    settings.CANCELLATION_POLICY = [{"min_hours_before": 24, "refund_percent": 100}]
    mentor, mentee = make_mentor(), make_user()
    session = make_session(mentor=mentor, mentee=mentee, starts_in=timedelta(days=4))
    moved_to = timezone.now().replace(second=0, microsecond=0) + timedelta(hours=6)
    assert move(client, session, moved_to, login(client, mentor.user)).status_code == 200

    cancelled = client.post(f"/api/sessions/{session.pk}/cancel", {"reason": "can't make it"},
                            content_type="application/json", **login(client, mentee))
    assert cancelled.status_code == 200, cancelled.content
    (refund,) = Refund.objects.filter(session=session)
    assert refund.amount == session.amount


def test_a_mentees_cancellation_follows_the_tiers_the_booking_was_paid_under(client, settings):
    mentor, mentee = make_mentor(hourly_rate=12000), make_user()
    tiers = [{"min_hours_before": 24, "refund_percent": 100}, {"min_hours_before": 2, "refund_percent": 50}]
    half = make_session(mentor=mentor, mentee=mentee, starts_in=timedelta(hours=5), cancellation_policy=tiers)
    late = make_session(mentor=mentor, mentee=mentee, starts_in=timedelta(hours=1, minutes=30), cancellation_policy=tiers)
    settings.CANCELLATION_POLICY = [{"min_hours_before": 1, "refund_percent": 100}]  # changed after they were paid
    headers = login(client, mentee)

    assert client.post(f"/api/sessions/{half.pk}/cancel", {}, content_type="application/json", **headers).status_code == 200
    assert [r.amount for r in Refund.objects.filter(session=half)] == [6000]
    assert Session.objects.get(pk=half.pk).cancellation_refund_amount == 6000
    refused = client.post(f"/api/sessions/{late.pk}/cancel", {}, content_type="application/json", **headers)
    assert refused.status_code == 409 and refused.json()["code"] == "refund_window_closed"
    # The mentor's cancellation always refunds in full.
    by_mentor = client.post(f"/api/sessions/{late.pk}/cancel", {}, content_type="application/json",
                            **login(client, mentor.user))
    assert by_mentor.status_code == 200
    assert [r.amount for r in Refund.objects.filter(session=late)] == [12000]
    assert client.get(f"/api/sessions/{half.pk}", **headers).json()["cancellation_policy"] == tiers
