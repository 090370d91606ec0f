"""What `make run` tells a newcomer: which Stripe, what is missing, and the demo logins."""
from io import StringIO

import pytest
from django.core.management import call_command

from backend.models import User


def stripe_target(settings, **overrides) -> str:
    for name, value in overrides.items():
        setattr(settings, name, value)
    out = StringIO()
    call_command("stripe_target", stdout=out)
    return out.getvalue()


def test_names_the_sandbox_real_test_or_live_stripe_and_never_the_key(settings):
    complete = {"STRIPE_WEBHOOK_SECRETS": ["whsec_x"], "STRIPE_PUBLISHABLE_KEY": "pk_test_x"}
    sandbox = stripe_target(settings, STRIPE_SECRET_KEY="sk_test_secret123", STRIPE_API_BASE="http://127.0.0.1:12111",
                            **complete)
    assert "offline sandbox at http://127.0.0.1:12111" in sandbox and "WARNING" not in sandbox
    real = stripe_target(settings, STRIPE_SECRET_KEY="sk_test_secret123", STRIPE_API_BASE="")
    assert "real Stripe" in real and "test mode" in real
    live = stripe_target(settings, STRIPE_SECRET_KEY="sk_live_" + "secret123")  # split: no live-key-shaped literal in git
    assert "LIVE mode" in live
    assert "secret123" not in sandbox + real + live


def test_warns_when_the_webhook_secret_or_publishable_key_is_missing(settings):
    out = stripe_target(settings, STRIPE_SECRET_KEY="sk_test_x", STRIPE_WEBHOOK_SECRETS=[], STRIPE_PUBLISHABLE_KEY="")
    assert "WARNING: STRIPE_WEBHOOK_SECRET is not set" in out
    assert "WARNING: STRIPE_PUBLISHABLE_KEY is not set" in out


@pytest.mark.django_db
def test_seed_demo_creates_an_admin_and_prints_its_login():
    out = StringIO()
    call_command("seed_demo", stdout=out)
    call_command("seed_demo", stdout=StringIO())  # again: nothing doubled
    admin = User.objects.get(email="admin@demo.myroadmap.local")
    assert admin.is_staff and admin.is_superuser and admin.check_password("demo-pass-2026")
    assert "admin login:  admin@demo.myroadmap.local / demo-pass-2026" in out.getvalue()
