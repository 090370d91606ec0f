"""Small functions that make valid rows; each test states only what it cares about."""
from datetime import timedelta
from itertools import count

from django.utils import timezone

from backend.models import Expertise, Mentor, Session, User

PASSWORD = "correct-horse-battery-9"
_seq = count(1)


def make_user(*, email: str | None = None, name: str = "Test User", password: str = PASSWORD) -> User:
    n = next(_seq)
    return User.objects.create_user(email=email or f"user{n}@example.test", password=password, name=name)


def make_mentor(*, name: str = "Mentor", hourly_rate: int = 12000, currency: str = "usd", expertise=(), **fields) -> Mentor:
    user = make_user(name=name)
    mentor = Mentor.objects.create(user=user, name=name, hourly_rate=hourly_rate, currency=currency, **fields)
    for slug in expertise:
        mentor.expertise.add(Expertise.objects.get_or_create(slug=slug, defaults={"name": slug.title()})[0])
    return mentor


def make_session(*, mentor: Mentor, mentee: User, starts_in=timedelta(days=3), duration_minutes: int = 60, **fields) -> Session:
    n = next(_seq)
    scheduled_at = timezone.now().replace(microsecond=0) + starts_in
    values = {
        "title": f"Session {n}",
        "scheduled_at": scheduled_at,
        "duration_minutes": duration_minutes,
        "ends_at": scheduled_at + timedelta(minutes=duration_minutes),
        "amount": mentor.hourly_rate * duration_minutes // 60,
        "currency": mentor.currency,
        "payment_status": Session.PaymentStatus.PAID,
        "stripe_checkout_session_id": f"cs_test_{n:06d}",
        "stripe_payment_id": f"pi_test_{n:06d}",
    }
    values.update(fields)
    return Session.objects.create(mentor=mentor, mentee=mentee, **values)


def login(client, user_or_email, password: str = PASSWORD) -> dict:
    """Log in through the API; returns the Authorization header for Django's test client."""
    email = getattr(user_or_email, "email", user_or_email)
    response = client.post("/api/auth/login", {"email": email, "password": password}, content_type="application/json")
    assert response.status_code == 200, response.content
    return {"HTTP_AUTHORIZATION": f"Bearer {response.json()['access']}"}


def future_slot(*, days: int = 3, hour: int = 15) -> str:
    """An ISO 8601 start time with an offset, `days` ahead at `hour`:00 UTC."""
    start = (timezone.now() + timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)
    return start.isoformat()


def booking(mentor, **overrides) -> dict:
    body = {
        "mentor_id": mentor.id,
        "title": "Career chat",
        "description": "Going from junior to senior",
        "scheduled_at": future_slot(),
        "duration_minutes": 60,
    }
    body.update(overrides)
    return body


def book(client, headers: dict, mentor, **overrides):
    """POST a booking through the API with Django's test client."""
    return client.post(
        "/api/payments/create-checkout-session", booking(mentor, **overrides), content_type="application/json", **headers
    )
