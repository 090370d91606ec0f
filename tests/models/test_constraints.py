"""The database itself refuses what must never be stored."""
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction

from backend.models import Checkout, Session
from tests.factories import make_mentor, make_session, make_user

pytestmark = pytest.mark.django_db


def refused(**kwargs):
    with pytest.raises(IntegrityError), transaction.atomic():
        make_session(**kwargs)


def test_overlapping_scheduled_sessions_of_one_mentor_are_refused():
    mentor = make_mentor()
    make_session(mentor=mentor, mentee=make_user(), starts_in=timedelta(days=2), duration_minutes=60)
    refused(mentor=mentor, mentee=make_user(), starts_in=timedelta(days=2, minutes=30), duration_minutes=60)


def test_back_to_back_and_other_mentors_sessions_are_fine():
    mentor = make_mentor()
    make_session(mentor=mentor, mentee=make_user(), starts_in=timedelta(days=2), duration_minutes=60)
    make_session(mentor=mentor, mentee=make_user(), starts_in=timedelta(days=2, minutes=60), duration_minutes=30)
    make_session(mentor=make_mentor(), mentee=make_user(), starts_in=timedelta(days=2), duration_minutes=60)
    assert Session.objects.count() == 3


def test_a_cancelled_session_frees_its_slot():
    mentor = make_mentor()
    make_session(mentor=mentor, mentee=make_user(), starts_in=timedelta(days=2), status=Session.Status.CANCELLED)
    make_session(mentor=mentor, mentee=make_user(), starts_in=timedelta(days=2))
    assert Session.objects.count() == 2


def test_duplicate_stripe_ids_are_refused():
    mentor, mentee = make_mentor(), make_user()
    make_session(mentor=mentor, mentee=mentee, stripe_checkout_session_id="cs_dup", stripe_payment_id="pi_1")
    refused(mentor=mentor, mentee=mentee, starts_in=timedelta(days=9), stripe_checkout_session_id="cs_dup", stripe_payment_id="pi_2")
    refused(mentor=mentor, mentee=mentee, starts_in=timedelta(days=9), stripe_checkout_session_id="cs_other", stripe_payment_id="pi_1")


@pytest.mark.parametrize("amount", [0, -100])
def test_non_positive_amounts_are_refused(amount):
    refused(mentor=make_mentor(), mentee=make_user(), amount=amount)


def test_non_positive_checkout_amount_and_duration_are_refused():
    mentor, mentee = make_mentor(), make_user()
    base = dict(mentor=mentor, mentee=mentee, title="t", scheduled_at=mentor.created_at, ends_at=mentor.created_at,
                currency="usd", expires_at=mentor.created_at)
    for bad in ({"amount": 0, "duration_minutes": 30}, {"amount": 100, "duration_minutes": 0}):
        with pytest.raises(IntegrityError), transaction.atomic():
            Checkout.objects.create(**base, **bad)
