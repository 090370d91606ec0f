"""A real Celery worker (pytest-celery's session worker on the Redis broker) runs our tasks."""
from datetime import timedelta

import pytest

from backend.models import Mentor, Session
from backend.tasks import mentor_stats_recompute_task, sessions_complete_task
from tests.factories import make_mentor, make_session, make_user
from tests.polling import wait_for

pytestmark = pytest.mark.django_db(transaction=True)



def test_worker_recomputes_mentor_stats(celery_session_worker):
    mentor = make_mentor(hourly_rate=6000)
    make_session(mentor=mentor, mentee=make_user(), duration_minutes=60)
    make_session(mentor=mentor, mentee=make_user(), duration_minutes=30, starts_in=timedelta(days=9))
    make_session(mentor=mentor, mentee=make_user(), payment_status=Session.PaymentStatus.PENDING,
                 starts_in=timedelta(days=12))

    mentor_stats_recompute_task.delay(mentor.id)

    assert wait_for(lambda: Mentor.objects.get(pk=mentor.id).stats_updated_at is not None)
    mentor.refresh_from_db()
    assert (mentor.total_sessions, mentor.total_minutes, mentor.total_earnings) == (2, 90, 9000)


def test_worker_completes_past_sessions(celery_session_worker):
    mentor, mentee = make_mentor(), make_user()
    past = make_session(mentor=mentor, mentee=mentee, starts_in=-timedelta(hours=3))
    future = make_session(mentor=mentor, mentee=mentee, starts_in=timedelta(days=1))

    sessions_complete_task.delay()

    assert wait_for(lambda: Session.objects.get(pk=past.id).status == Session.Status.COMPLETED)
    assert Session.objects.get(pk=future.id).status == Session.Status.SCHEDULED


def test_confirmations_travel_on_their_own_queue_which_the_worker_consumes(celery_session_worker):
    from backend.models import Notification
    from backend.tasks.notifications import send_session_notification
    from worker import app

    # Their own queue: a burst of mail never sits in front of webhook processing.
    assert app.amqp.router.route({}, send_session_notification.name)["queue"].name == "notifications"
    assert app.amqp.router.route({}, "process_webhook_event")["queue"].name == "celery"
    session = make_session(mentor=make_mentor(), mentee=make_user())

    send_session_notification.delay(session.id, "booked")

    assert wait_for(lambda: Notification.objects.filter(session=session, kind="booked", sent_at__isnull=False).count() == 2)
