"""`manage.py check --deploy`: the settings that would leave this deployment open, each named.

Django's own deploy checks cover DEBUG, the secret key, HTTPS and cookies; these add ours.
They run only with --deploy. Settings that are outright unsafe (a forgeable webhook secret,
the sandbox standing in for Stripe) are errors, so a plain `check --deploy` fails; the
others are warnings (`--fail-level WARNING` fails on them too, as the README asks).
"""
from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from backend.settings import WEBHOOK_SECRET_ADVICE, webhook_secret_problem

MIN_METRICS_TOKEN_LENGTH = 32
MIN_FLOWER_PASSWORD_LENGTH = 12
FLOWER_PLACEHOLDER_PASSWORDS = {"change-me", "changeme", "admin", "password", "flower"}


@register(Tags.security, deploy=True)
def stripe_settings_check(app_configs, **kwargs):
    problems = []
    for name, secrets, required, check_id in (
            ("STRIPE_WEBHOOK_SECRET", settings.STRIPE_WEBHOOK_SECRETS, True, "backend.E001"),
            ("STRIPE_CONNECT_WEBHOOK_SECRET", settings.STRIPE_CONNECT_WEBHOOK_SECRETS, False, "backend.E002")):
        problem = webhook_secret_problem(secrets, required=required)
        if problem:
            problems.append(Error(f"{name} {problem}: it is what proves an event (a payment) comes from Stripe.",
                                  hint=WEBHOOK_SECRET_ADVICE, id=check_id))
    if settings.STRIPE_API_BASE:
        problems.append(Error(
            "STRIPE_API_BASE is set: payments go to the offline sandbox, where anyone reaching its control API "
            "can mark a Checkout paid.", hint="Leave STRIPE_API_BASE unset in production (real Stripe).",
            id="backend.E003"))
    return problems


@register(Tags.security, deploy=True)
def operations_settings_check(app_configs, **kwargs):
    problems = []
    token = settings.METRICS_TOKEN
    if len(token) < MIN_METRICS_TOKEN_LENGTH:
        problems.append(Warning(
            ("METRICS_TOKEN is empty: /metrics and /api/health/ready's details (failed refunds, queue depth) are "
             "open to anyone." if not token else
             f"METRICS_TOKEN is shorter than {MIN_METRICS_TOKEN_LENGTH} characters: /metrics and "
             "/api/health/ready's details (failed refunds, queue depth) are open to whoever guesses it."),
            hint="Set METRICS_TOKEN to a random value, e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))'",
            id="backend.W001"))
    if not settings.RATE_LIMIT_ENABLED:
        problems.append(Warning(
            "RATE_LIMIT_ENABLED is false: logins, registrations, checkouts, cancels, polls, emailed links and "
            "open holds per address are not limited.",
            hint="Turn it off only for load tests.", id="backend.W002"))
    flower = settings.FLOWER_BASIC_AUTH
    if flower:
        password = flower.partition(":")[2]
        if password.lower() in FLOWER_PLACEHOLDER_PASSWORDS or len(password) < MIN_FLOWER_PASSWORD_LENGTH:
            problems.append(Warning(
                f"FLOWER_BASIC_AUTH has a known or short password (under {MIN_FLOWER_PASSWORD_LENGTH} characters): "
                "Flower can revoke and inspect tasks.", hint="Set FLOWER_BASIC_AUTH=user:<a long random password>.",
                id="backend.W003"))
    return problems
