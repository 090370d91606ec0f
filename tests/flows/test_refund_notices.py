"""What people are told when a refund goes wrong, through the sandbox and a real worker:
the admins get Stripe's own error code and amounts as people read them; the mentee hears
that the refund failed and what happens next, and again once a retry went through."""
import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import transaction

from backend.errors import Conflict
from backend.models import Refund, Session
from backend.services.cancellations import session_cancel
from backend.services.refunds import refund_create, refunds_retry
from tests.factories import future_slot, make_mentor, make_user
from tests.flows.conftest import paid_session, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

DISPUTED_LATER = "4000000000000259"
FAILS_LATER = "4000000000005126"
ADMIN = "admin@myroadmap.local"


def mails(to: str, subject_part: str) -> list:
    return [m for m in mail.outbox if m.to == [to] and subject_part in m.subject]


def test_a_refund_stripe_refuses_tells_the_admins_its_code_and_the_mentee_what_happens_next(client, payments):
    mentor, mentee = make_mentor(hourly_rate=13000), make_user()
    session = paid_session(client, payments, mentee, mentor, card=DISPUTED_LATER, scheduled_at=future_slot(days=3))
    session = wait_for(lambda: Session.objects.filter(pk=session.pk, is_disputed=True).first(), message="disputed")

    with pytest.raises(Conflict) as refused:  # the pages and the API no longer offer it...
        session_cancel(user=mentee, session_id=session.pk)
    assert refused.value.code == "payment_disputed"
    with transaction.atomic():  # ...but a refund asked just before the dispute arrived meets Stripe's refusal
        locked = Session.objects.select_for_update().get(pk=session.pk)
        refund = refund_create(session=locked, reason="asked before the dispute")

    failed = wait_for(lambda: Refund.objects.filter(pk=refund.pk, status="failed").first(), message="refund failed")
    assert "charge_disputed" in failed.last_error
    (alert,) = wait_for(lambda: mails(ADMIN, f"Refund {refund.pk} failed"), message="admins told")
    assert alert.subject.startswith("[MyRoadmap] ")
    assert "130.00 USD" in alert.body and "13000" not in alert.body
    assert "charge_disputed" in alert.body
    (notice,) = wait_for(lambda: mails(mentee.email, "did not go through"), message="mentee told")
    assert "What happens next" in notice.body


def test_a_refund_that_fails_later_is_explained_then_announced_again_once_retried(client, payments):
    mentor, mentee = make_mentor(hourly_rate=5000, currency="eur"), make_user()
    session = paid_session(client, payments, mentee, mentor, card=FAILS_LATER, scheduled_at=future_slot(days=3))
    session_cancel(user=mentee, session_id=session.pk, reason="plans changed")
    wait_for(lambda: mails(mentee.email, "Refund issued"), message="Stripe said succeeded")

    payments.advance_clock(31)  # the card's bank refuses the refund
    failed = wait_for(lambda: Refund.objects.filter(session=session, status="failed").first(), message="failed")
    (notice,) = wait_for(lambda: mails(mentee.email, "did not go through"), message="mentee told of the failure")
    assert "The refund of 50.00 EUR" in notice.body and "closed or has expired" in notice.body
    assert not mails(mentor.user.email, "did not go through")  # the mentee's money, the mentee's email

    staff = get_user_model().objects.create_superuser(email="staff@example.test", password="x-admin-pass-1", name="S")
    assert refunds_retry(refund_ids=[failed.pk], staff=staff) == 1
    (again,) = wait_for(lambda: mails(mentee.email, "Refund sent again"), message="mentee told of the retry")
    assert "we sent your refund of 50.00 EUR" in again.body
    assert len(mails(mentee.email, "Refund issued")) == 1  # the first announcement is not repeated
