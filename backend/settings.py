"""Every setting comes from the environment through one django-environ object.

Defaults are safe for a developer's machine: with no DATABASE_URL the database is
SQLite (WAL) under var/, with no broker URL Celery uses Kombu's filesystem
transport under var/. Compose, production and the tests set PostgreSQL and Redis.
"""
import ipaddress
import secrets
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from backend.observability.logging import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
# Nothing is created at import (a read-only filesystem must load settings): `make run`
# creates var/ and its folders, collectstatic creates STATIC_ROOT.
if (BASE_DIR / ".env").exists():
    env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])

# --- Secret keys --------------------------------------------------------------
# The secret key signs sessions and (unless JWT_SIGNING_KEY is set) the JWTs: a known key
# lets anyone mint a token for any user. Outside DEBUG there is no fallback, not to a file,
# not to a constant: the process refuses to start. `make run` generates one under var/ and
# passes it in the environment; the test targets pass their own.
MIN_SECRET_KEY_LENGTH = 50
# Values that were once committed or are documented placeholders: never a real secret.
KNOWN_SECRET_KEYS = {"dev-only-insecure-key-change-me-in-production", "change-me"}


def _secret_from_env(name: str, *, required: bool) -> str:
    value = env(name, default="")
    if not value and not required:
        return ""
    if DEBUG:
        # Debugging only: without a key, one that lives as long as this process (so do its tokens).
        return value or secrets.token_urlsafe(MIN_SECRET_KEY_LENGTH)
    problem = (
        "is not set" if not value
        else "is a known placeholder" if value in KNOWN_SECRET_KEYS or value.startswith("django-insecure-")
        else f"is shorter than {MIN_SECRET_KEY_LENGTH} characters" if len(value) < MIN_SECRET_KEY_LENGTH
        else "has fewer than 5 distinct characters" if len(set(value)) < 5
        else None
    )
    if problem:
        raise ImproperlyConfigured(
            f"{name} {problem}: set it to a random value of at least {MIN_SECRET_KEY_LENGTH} characters, e.g. "
            f"python3 -c 'import secrets; print(secrets.token_urlsafe(64))' (or DJANGO_DEBUG=true for local debugging)"
        )
    return value


SECRET_KEY = _secret_from_env("DJANGO_SECRET_KEY", required=True)
# Optional: JWTs signed with their own key, so it can be rotated without logging out admin sessions.
JWT_SIGNING_KEY = _secret_from_env("JWT_SIGNING_KEY", required=False) or SECRET_KEY

# --- HTTPS and the reverse proxy ----------------------------------------------
# DJANGO_HTTPS=true: served behind TLS. HSTS, secure cookies, and plain HTTP redirected
# (health checks excepted: load balancers and compose probe them over plain HTTP).
HTTPS = env.bool("DJANGO_HTTPS", default=False)
if HTTPS:
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^api/health"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
# Addresses or networks of the reverse proxies in front of the app (comma-separated, e.g.
# 10.0.0.0/8). Only then are X-Forwarded-Proto (is the request HTTPS?) and X-Forwarded-For
# (the client's address, for rate limits) believed; without it anyone could forge them.
TRUSTED_PROXY = env.list("TRUSTED_PROXY", default=[])
for _proxy in TRUSTED_PROXY:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError:
        raise ImproperlyConfigured(f"TRUSTED_PROXY: {_proxy!r} is not an IP address or network (e.g. 10.0.0.0/8)")
if TRUSTED_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Origins allowed to POST forms to us (admin, pages) when they differ from the Host, e.g. https://pay.example.com
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "ninja_jwt",
    "django_celery_beat",
    # Listed so /api/docs renders ninja's own Swagger UI files (no CDN, works offline).
    "ninja",
    "backend",
]

MIDDLEWARE = [
    "backend.observability.context.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "backend.urls"
WSGI_APPLICATION = "backend.wsgi.application"
AUTH_USER_MODEL = "backend.User"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# --- Timeouts: every outbound call ends before its caller's limit -------------
# The budget, outermost first: gunicorn kills a request after 30 s (its default, set
# explicitly in Procfile and docker-compose); a Celery task is interrupted at its soft
# limit (CELERY_TASK_SOFT_TIME_LIMIT, 60 s). One Stripe call takes at most
# (STRIPE_MAX_NETWORK_RETRIES + 1) * STRIPE_TIMEOUT_SECONDS plus the SDK's backoff between
# tries (0.5-1 s each): 2 * 10 + 1 = 21 s by default, under both. A checkout makes one
# Stripe call; a refund task one or two (tests/test_timeouts.py checks the budget
# against the limits), and a refund interrupted anyway is retried, not failed.
STRIPE_TIMEOUT_SECONDS = env.float("STRIPE_TIMEOUT_SECONDS", default=10.0)
STRIPE_MAX_NETWORK_RETRIES = env.int("STRIPE_MAX_NETWORK_RETRIES", default=1)
STRIPE_CALL_BUDGET_SECONDS = (STRIPE_MAX_NETWORK_RETRIES + 1) * STRIPE_TIMEOUT_SECONDS + STRIPE_MAX_NETWORK_RETRIES
# Redis (broker and cache): a blackholed Redis answers nothing; connect and each read give
# up after this, and a publish is tried twice, so `.delay()` / on_commit gives up within
# about 3 x REDIS_TIMEOUT_SECONDS and the change stands for the sweeps to queue.
REDIS_TIMEOUT_SECONDS = env.float("REDIS_TIMEOUT_SECONDS", default=2.0)
# PostgreSQL: connecting (TCP + startup) gives up after DATABASE_CONNECT_TIMEOUT seconds;
# the server cancels a statement after DATABASE_STATEMENT_TIMEOUT_MS (under gunicorn's
# 30 s) and a lock wait after DATABASE_LOCK_TIMEOUT_MS; tcp_user_timeout drops a
# connection whose packets go unacknowledged (a network blackhole) instead of waiting
# for the kernel's 15 minutes.
DATABASE_CONNECT_TIMEOUT = env.int("DATABASE_CONNECT_TIMEOUT", default=5)
DATABASE_STATEMENT_TIMEOUT_MS = env.int("DATABASE_STATEMENT_TIMEOUT_MS", default=25000)
DATABASE_LOCK_TIMEOUT_MS = env.int("DATABASE_LOCK_TIMEOUT_MS", default=10000)
_POSTGRES_TIMEOUTS = {
    "connect_timeout": DATABASE_CONNECT_TIMEOUT,
    "options": f"-c statement_timeout={DATABASE_STATEMENT_TIMEOUT_MS} -c lock_timeout={DATABASE_LOCK_TIMEOUT_MS}",
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 2,
    "tcp_user_timeout": DATABASE_CONNECT_TIMEOUT * 2000,
}

# --- Database -----------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the API, the worker and beat read while one of them writes;
    # IMMEDIATE transactions take the write lock up front instead of failing mid-way.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {}).update(_POSTGRES_TIMEOUTS)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The stats index's INCLUDE columns are a PostgreSQL optimisation; on SQLite (make run)
# the index is still created, without them, which is all that warning says.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

# --- API, auth, CORS ----------------------------------------------------------
NINJA_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=30)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=7)),
    "SIGNING_KEY": JWT_SIGNING_KEY,
}
# Where Checkout sends the mentee back: by default this backend's own pages (/sessions,
# /mentors/{id}); an external frontend (the :3002 app) sets it, and CORS follows.
FRONTEND_URL = env("FRONTEND_URL", default=f"http://127.0.0.1:{env.int('API_PORT', default=8002)}").rstrip("/")
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[FRONTEND_URL])

# --- Stripe -------------------------------------------------------------------
STRIPE_SECRET_KEY = env("STRIPE_SECRET_KEY", default="")
STRIPE_PUBLISHABLE_KEY = env("STRIPE_PUBLISHABLE_KEY", default="")
# Comma-separated: during a secret rotation both the old and the new one verify.
STRIPE_WEBHOOK_SECRETS = env.list("STRIPE_WEBHOOK_SECRET", default=[])
# Unset: real Stripe. Set: the offline sandbox (stripe_sandbox/).
STRIPE_API_BASE = env("STRIPE_API_BASE", default="")

# --- Celery -------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=env("REDIS_URL", default="filesystem://"))
if CELERY_BROKER_URL.startswith("filesystem://"):
    # The folders are made by `make run` (Makefile: var/broker/queue); kombu makes "control".
    BROKER_DIR = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    # Longer than any countdown or retry backoff we use (5 minutes at most), so Redis does
    # not redeliver a task that is only waiting for its ETA; short enough that the tasks
    # of a worker killed mid-task come back within a quarter of an hour.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": 15 * 60,
        "socket_timeout": REDIS_TIMEOUT_SECONDS,
        "socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
    }
    CELERY_BROKER_CONNECTION_TIMEOUT = REDIS_TIMEOUT_SECONDS
    # A publish (`.delay()`) is tried twice, then raises: the callers log it and the
    # sweeps queue the work from the rows.
    CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=60)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=90)
CELERY_TIMEZONE = TIME_ZONE
# Retries of webhook processing and refunds: exponential backoff from this base, with jitter.
TASK_MAX_RETRIES = env.int("TASK_MAX_RETRIES", default=8)
TASK_RETRY_BASE_SECONDS = env.float("TASK_RETRY_BASE_SECONDS", default=2.0)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Several deployments (or test stacks) on one Redis: their own task queue and their own
# control channel, so a readiness ping counts only this deployment's workers.
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_TASK_DEFAULT_QUEUE", default="celery")
CELERY_CONTROL_EXCHANGE = env("CELERY_CONTROL_EXCHANGE", default="celery")

# --- Celery queues: confirmations apart, so mail never waits behind (or delays) fulfilment ---
# Every queue declared here is consumed by a worker started without -Q (make run, compose, tests);
# `-Q notifications` runs a mail-only worker. A deployment with its own default queue gets
# its own notifications queue beside it (`<queue>.notifications`).
NOTIFICATIONS_QUEUE = ("notifications" if CELERY_TASK_DEFAULT_QUEUE == "celery"
                       else f"{CELERY_TASK_DEFAULT_QUEUE}.notifications")
CELERY_TASK_QUEUES = {CELERY_TASK_DEFAULT_QUEUE: {}, NOTIFICATIONS_QUEUE: {}}
CELERY_TASK_ROUTES = {"send_session_notification": {"queue": NOTIFICATIONS_QUEUE}}

# --- Cache (rate limits) -----------------------------------------------------
# Shared by every gunicorn worker: Redis when the broker is Redis (keys under a prefix,
# so never cache.clear() it: that would flush the broker's queues too), else files under
# var/ for `make run`. CACHE_URL overrides both (django-environ syntax).
_DEFAULT_CACHE_URL = (
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://"))
    else f"filecache://{VAR_DIR / 'cache'}"
)
CACHES = {"default": env.cache("CACHE_URL", default=_DEFAULT_CACHE_URL)}
CACHES["default"]["KEY_PREFIX"] = "myroadmap"
if CACHES["default"]["BACKEND"].endswith("RedisCache"):
    # A Redis outage must not hang the login: fail fast, the rate limit then fails open.
    CACHES["default"].setdefault("OPTIONS", {}).update(
        {"socket_connect_timeout": min(1.0, REDIS_TIMEOUT_SECONDS), "socket_timeout": min(1.0, REDIS_TIMEOUT_SECONDS)})

# --- Abuse limits (rate limits) -----------------------------------------------
# django-ratelimit's "count/period" (s, m, h, d), counted in the cache above. Each limit
# holds per account and, separately, per client address (see TRUSTED_PROXY).
# Failed logins; past it even the right password is refused until the window ends.
LOGIN_RATE_LIMIT = env("LOGIN_RATE_LIMIT", default="10/m")
# Requests (successful or not) to register, open a checkout, cancel a session.
REGISTER_RATE_LIMIT = env("REGISTER_RATE_LIMIT", default="10/h")
CHECKOUT_RATE_LIMIT = env("CHECKOUT_RATE_LIMIT", default="20/h")
CANCEL_RATE_LIMIT = env("CANCEL_RATE_LIMIT", default="20/h")
# false: every limit off, for load tests and benchmarks that run from one address.
RATE_LIMIT_ENABLED = env.bool("RATE_LIMIT_ENABLED", default=True)
RATELIMIT_FAIL_OPEN = True  # django-ratelimit: a cache that cannot count refuses nobody

# --- Email --------------------------------------------------------------------
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="MyRoadmap <no-reply@myroadmap.local>")
ADMINS = [("Admin", a) for a in env.list("ADMIN_EMAILS", default=["admin@myroadmap.local"])]

# --- Booking policy -----------------------------------------------------------
BOOKING_ALLOWED_DURATIONS = env.list("BOOKING_ALLOWED_DURATIONS", cast=int, default=[30, 45, 60, 90, 120])
BOOKING_MAX_DAYS_AHEAD = env.int("BOOKING_MAX_DAYS_AHEAD", default=90)
CHECKOUT_HOLD_MINUTES = env.int("CHECKOUT_HOLD_MINUTES", default=30)
# --- Booking lead time ---------------------------------------------------------
# Sessions start at least this long after booking: longer than the hold.
BOOKING_MIN_LEAD_MINUTES = env.int("BOOKING_MIN_LEAD_MINUTES", default=120)
REFUND_CUTOFF_HOURS = env.int("REFUND_CUTOFF_HOURS", default=24)

# --- Browser pages, holds and availability ---------------------------------------
# Open Checkouts (slot holds) one mentee may have at once.
MAX_OPEN_HOLDS = env.int("MAX_OPEN_HOLDS", default=3)
LOGIN_URL = "/login"
LOGIN_REDIRECT_URL = "/sessions"
LOGOUT_REDIRECT_URL = "/mentors"

# --- Operations: logs, metrics, readiness, alerts, retention -----------------
# LOG_FORMAT=json: one JSON object per line (web, worker, beat) with request/payment ids.
LOG_FORMAT = env("LOG_FORMAT", default="plain")
LOGGING = logging_config(log_format="json" if LOG_FORMAT == "json" else "plain", level=env("LOG_LEVEL", default="INFO"))
CELERY_WORKER_HIJACK_ROOT_LOGGER = False  # worker and beat log through LOGGING above
# Celery's Django fixup closes every database connection before and after each task unless
# told to reuse them: a new PostgreSQL connection (and server backend) per task, about a
# fifth of a booking's worker CPU. Workers keep them like gunicorn does: CONN_MAX_AGE and
# the health check decide, before each task (worker.py); the fixup's own forced close comes
# only every this many tasks.
CELERY_DB_REUSE_MAX = 1000
# Bearer token /metrics requires; empty: open (set it in production).
METRICS_TOKEN = env("METRICS_TOKEN", default="")
# /api/health/ready thresholds: 503 when one is over.
HEALTH_WORKER_PING_TIMEOUT = env.float("HEALTH_WORKER_PING_TIMEOUT", default=1.0)
HEALTH_MAX_BEAT_AGE_SECONDS = env.int("HEALTH_MAX_BEAT_AGE_SECONDS", default=300)
HEALTH_MAX_UNPROCESSED_EVENT_AGE_SECONDS = env.int("HEALTH_MAX_UNPROCESSED_EVENT_AGE_SECONDS", default=900)
HEALTH_MAX_FAILED_EVENTS = env.int("HEALTH_MAX_FAILED_EVENTS", default=10)
HEALTH_MAX_FAILED_REFUNDS = env.int("HEALTH_MAX_FAILED_REFUNDS", default=10)
# Admins are mailed when no webhook arrived this long while Stripe completed checkouts.
WEBHOOK_SILENCE_ALERT_MINUTES = env.int("WEBHOOK_SILENCE_ALERT_MINUTES", default=60)
# Processed and ignored webhook events older than this are pruned daily; failed ones are kept.
WEBHOOK_EVENT_RETENTION_DAYS = env.int("WEBHOOK_EVENT_RETENTION_DAYS", default=90)
