"""Suite-wide setup: the suite runs on real PostgreSQL and Redis, and says clearly when one is down."""
import ast
import os
import socket
import threading
import time
import uuid
import warnings
from collections import Counter
from urllib.parse import urlparse

import pytest
from _pytest.nodeid import NodeId

# CPython 3.11 keeps the AST constructor's recursion depth in state that all threads share
# (python/cpython#106905): two threads parsing at once, pytest formatting a failure and a
# worker thread logging a traceback (3.11's traceback parses each line for its ^^^ markers),
# can end in "SystemError: AST constructor recursion depth mismatch", which crashed an xdist
# worker and lost the report it was writing. Here one parse runs at a time.
_ast_parse, _ast_lock = ast.parse, threading.RLock()


def _ast_parse_one_at_a_time(*args, **kwargs):
    with _ast_lock:
        return _ast_parse(*args, **kwargs)


ast.parse = _ast_parse_one_at_a_time


def _reachable(url: str, default_port: int) -> str | None:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=3):
            return None
    except OSError as exc:
        return str(exc)


def _redacted(url: str) -> str:
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@")
    return url


def pytest_sessionstart(session):
    database_url = os.environ.get("DATABASE_URL", "")
    broker_url = os.environ.get("CELERY_BROKER_URL", "")
    if not database_url.startswith("postgres"):
        pytest.exit("The suite runs on PostgreSQL: set DATABASE_URL (make test does)", returncode=3)
    if not broker_url.startswith("redis"):
        pytest.exit("The suite runs on Redis: set CELERY_BROKER_URL (make test does)", returncode=3)
    for name, url, port in (("PostgreSQL", database_url, 5432), ("Redis", broker_url, 6379)):
        error = _reachable(url, port)
        if error:
            pytest.exit(f"{name} at {_redacted(url)} is unreachable ({error}); start it and run again", returncode=3)


@pytest.fixture(autouse=True)
def fresh_rate_limit_counters(settings):
    """The abuse limits count in Redis, where counts outlive a test: each test starts from zero."""
    settings.RATELIMIT_CACHE_PREFIX = f"rl:{uuid.uuid4().hex[:12]}:"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Passwords hashed in this process with 1,000 PBKDF2 iterations instead of Django's
    1,000,000 (half a second or more per user made and per login, thousands of times a run).
    Still pbkdf2_sha256, so the stacks the tests start (production settings) verify them,
    and rehash them at full strength on their first successful login, as after an upgrade."""
    settings.PASSWORD_HASHERS = ["tests.hashers.FastPBKDF2PasswordHasher", *settings.PASSWORD_HASHERS]


def pytest_configure(config):
    _flush_by_delete()


def _flush_by_delete() -> None:
    """After each transactional test pytest-django empties the tables with Django's flush:
    on PostgreSQL one TRUNCATE of them all, which makes new files for every table and index
    (one to two seconds here, for tables holding a few rows), then post_migrate creates
    every content type and permission again. Here flush DELETEs the rows instead, in one
    round trip, and leaves the content types and permissions, which are what post_migrate
    would create again (it still runs, finds them and adds nothing): the same tables, the
    same rows, in a tenth of the time.

    Every foreign key Django makes is DEFERRABLE INITIALLY DEFERRED, so within flush's
    transaction the order does not matter (one that was not would fail the flush, loudly).
    Sequences are left as TRUNCATE without RESTART IDENTITY leaves them. Only this process's
    flushes change (the tests' teardown); a flush that resets sequences or cascades is Django's."""
    from django.contrib.auth.models import Permission
    from django.contrib.contenttypes.models import ContentType
    from django.db.backends.postgresql.operations import DatabaseOperations

    truncate = DatabaseOperations.sql_flush
    kept = {ContentType._meta.db_table, Permission._meta.db_table}

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        if not tables or reset_sequences or allow_cascade:
            return truncate(self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
        return [" ".join(f"{style.SQL_KEYWORD('DELETE FROM')} {style.SQL_FIELD(self.quote_name(table))};"
                         for table in tables if table not in kept)]

    DatabaseOperations.sql_flush = sql_flush


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's, and before the test database is dropped, the connections still open
    to it (threads of the in-process worker, a relay's LISTEN) are closed: otherwise the drop
    fails ("being accessed by other users") and leaves the database behind."""
    yield
    from django.db import connection

    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")


# --- Order: the longest tests first -----------------------------------------------------
# Under xdist (make test) each of them then takes a worker early while the short tests fill
# the other(s), instead of one starting near the end and running on alone. Tests are
# independent of order (transactional tests flush; schedule tests re-run their migrations).
SLOWEST_FIRST = (
    "tests/e2e/test_make_run.py::",
    "tests/e2e/test_chaos.py::test_hundreds_of_bookings_survive_every_fault",
    "tests/e2e/test_chaos.py::test_a_cancel_while_redis_is_unreachable",
    "tests/flows/test_booking.py::test_duplicate_and_reordered_deliveries_over_100_bookings",
    "tests/test_project_files.py::test_the_suite_names_the_url_of_a_service_that_is_down",
    "tests/security/test_login_rate_limit.py::test_the_limit_holds_across_several_gunicorn_workers",
    "tests/flows/test_safety_nets.py::test_reconcile_creates_the_sessions_whose_webhooks_never_came",
)


@pytest.hookimpl(trylast=True)  # after pytest-django's own ordering (database tests first)
def pytest_collection_modifyitems(config, items):
    _one_nodeid_per_test(config, items)
    _xdist_groups_in_nodeids(config, items)

    def rank(item) -> int:
        return next((n for n, prefix in enumerate(SLOWEST_FIRST) if item.nodeid.startswith(prefix)),
                    len(SLOWEST_FIRST))

    items.sort(key=rank)  # stable: the rest keep their order


def _xdist_groups_in_nodeids(config, items) -> None:
    """xdist 3.8's --dist loadgroup marks a test of an xdist_group by setting item._nodeid to
    `<nodeid>@<group>`, and groups tests by that suffix. pytest 9 builds nodeid from item._id
    and never reads _nodeid, so the groups were lost: the ops stack started once per test
    and two chaos stacks ran at once. The suffix goes where pytest 9 reads it (on the
    workers, after xdist's own hook; trylast)."""
    if not getattr(config.option, "loadgroup", False):
        return
    for item in items:
        groups = sorted({str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
                         for mark in item.iter_markers("xdist_group")})
        if groups and not item.nodeid.endswith(f"@{'_'.join(groups)}"):
            item._id = NodeId.parse(f"{item.nodeid}@{'_'.join(groups)}")
            assert item.nodeid.endswith(f"@{'_'.join(groups)}"), item.nodeid  # pytest still reads _id


def _one_nodeid_per_test(config, items) -> None:
    """schemathesis's tests, one per operation, are named `test_x[GET /path]` but under
    pytest 9 all get the nodeid `...::test_x` (pytest builds it from the original name and a
    callspec they don't have). xdist's loadgroup tells tests apart by nodeid: it would run one
    of the 19 and report the others nowhere. Each gets its name as its nodeid, as pytest 8 gave."""
    counts = Counter(item.nodeid for item in items)
    for item in items:
        original = getattr(item, "originalname", None)
        if counts[item.nodeid] > 1 and original and item.name.startswith(f"{original}[") and item.name.endswith("]"):
            item._id = item.parent.id.child(original).with_params(item.name[len(original) + 1:-1])
    duplicated = [nodeid for nodeid, n in Counter(item.nodeid for item in items).items() if n > 1]
    if duplicated and hasattr(config, "workerinput"):
        raise pytest.UsageError(f"tests sharing a nodeid, which xdist would run once: {duplicated[:5]}")


# --- Celery: pytest-celery's session worker, running OUR app on the Redis broker ----------


@pytest.fixture(scope="session")
def celery_session_app():
    from worker import app

    app.control.purge()  # nothing left over from an earlier run reaches this worker
    return app


@pytest.fixture(scope="session")
def celery_worker_parameters():
    # Our app keeps no results, so the worker's ping-through-results check can't work.
    return {"perform_ping_check": False, "shutdown_timeout": 30}


DATABASE_FIXTURES = {"db", "transactional_db", "live_server", "django_db_reset_sequences",
                     "django_db_serialized_rollback"}


@pytest.fixture(autouse=True)
def in_process_worker_quiet_between_tests(request):
    """Once pytest-celery's session worker runs in this process, its outbox relay claims
    events only during tests that may use the database, and after each test (before
    pytest-django flushes the tables) the worker finishes the task in hand and the tasks
    still queued are dropped. Otherwise a task still holding row locks can deadlock the
    flush, a backlog delays the next test, and between tests, where database access is
    blocked, the relay logs a failed pass every few seconds."""
    from celery.worker import state

    from tests.stack import relays_running, suite_relays_held

    uses_database = bool(request.node.get_closest_marker("django_db")) or bool(
        DATABASE_FIXTURES & set(request.fixturenames))
    for relay in relays_running():
        relay.resume() if uses_database and not suite_relays_held() else relay.pause()
    yield
    relays = relays_running()  # including one this test started
    for relay in relays:
        relay.pause()
    if relays:
        deadline = time.monotonic() + 10
        while state.active_requests and time.monotonic() < deadline:
            time.sleep(0.02)
        # What this test queued and the worker has not taken (the 100-booking run leaves
        # hundreds of confirmation mails) would otherwise hold up the next test's tasks
        # behind it, for rows the flush is about to delete.
        from worker import app

        app.control.purge()


# --- Stripe: the offline sandbox as a real process, delivering to a live API ------------

STRIPE_TEST_KEY = "sk_test_backend_suite"
WEBHOOK_SECRET = "whsec_backend_suite"
CONNECT_WEBHOOK_SECRET = "whsec_backend_suite_connect"


@pytest.fixture(scope="session")
def stripe_sandbox_process(live_server):
    from stripe_sandbox.process import SandboxProcess

    with SandboxProcess(
        webhook_url=f"{live_server.url}/api/payments/webhook",
        webhook_secret=WEBHOOK_SECRET,
        connect_webhook_url=f"{live_server.url}/api/payments/connect-webhook",
        connect_webhook_secret=CONNECT_WEBHOOK_SECRET,
        retry_base=0.1,
        max_attempts=6,
        retry_max_delay=1.0,
    ) as sandbox:
        yield sandbox


@pytest.fixture
def stripe_sandbox(stripe_sandbox_process, settings):
    """A clean sandbox, with the backend's settings pointing at it (key, base, webhook secrets)."""
    stripe_sandbox_process.reset()
    settings.STRIPE_SECRET_KEY = STRIPE_TEST_KEY
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_backend_suite"
    settings.STRIPE_API_BASE = stripe_sandbox_process.api_base
    settings.STRIPE_WEBHOOK_SECRETS = [WEBHOOK_SECRET]
    settings.STRIPE_CONNECT_WEBHOOK_SECRETS = [CONNECT_WEBHOOK_SECRET]
    yield stripe_sandbox_process
    # Let in-flight deliveries land before the database is flushed for the next test. What a
    # paused sandbox holds never goes out (the next test's reset drops it): waiting for it
    # (wait_until_delivered counts paused as busy) would only sit out the 10 s.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status = stripe_sandbox_process.webhook_status()
        if not status["in_flight"] and (status["paused"] or not status["queued"]):
            break
        time.sleep(0.05)


# --- Browser: one Debian Chromium for the whole session (the sandbox's hosted page, our pages) --
# Playwright's sync API allows one instance per thread, so every browser test shares it.

# Debian's package; CHROMIUM_PATH only moves it (e.g. to check the loud skip).
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

_browser_skip_reasons: list[str] = []


@pytest.fixture(scope="session")
def chromium():
    """Playwright's Chromium: Debian's build, never a downloaded one."""
    if not os.path.exists(CHROMIUM):
        reason = (f"BROWSER TESTS NOT RUN: {CHROMIUM} is missing "
                  "(apt-get install -y chromium); they are skipped, not passed")
        _browser_skip_reasons.append(reason)
        warnings.warn(reason)  # listed in the warnings summary; the terminal summary repeats it
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright
    # Playwright's sync API keeps an event loop in this thread; tests beside it still query
    # the database synchronously (they never run inside that loop), which Django allows only when told.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def pytest_terminal_summary(terminalreporter):
    if _browser_skip_reasons:
        terminalreporter.write_sep("!", "BROWSER TESTS SKIPPED, NOT PASSED", red=True, bold=True)
        terminalreporter.write_line(_browser_skip_reasons[0], red=True, bold=True)
