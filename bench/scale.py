"""Scale: 1,000,000 sessions and 10,000 mentors in PostgreSQL; the list endpoints, the
booking overlap check and the stats recompute stay under 20 ms p50.

Data (INSERT ... SELECT generate_series, constraints respected: every scheduled session
of a mentor is free of overlap, amounts and durations positive, Stripe ids unique):
  10,000 mentors (5% inactive, 2 of 20 topics each), 50,000 mentees, 100,000 checkouts;
  mentor #1 has 50,000 sessions (one every 3 h for 17 years), the other 950,000 are spread
  over the other 9,999 mentors (~95 each, 100 h apart), 2% cancelled and refunded.
The sessions table is loaded with its indexes and constraints dropped, then they are
recreated (which validates every row), then ANALYZE + VACUUM. The database bench_scale is
reused by the next run only if its recorded and actual row counts match.

Timed: the HTTP endpoints on gunicorn (sequential, one client); slot_conflict and
mentor_stats_recompute in-process through Django. Plans: every SELECT each case runs is
captured in-process and re-run under EXPLAIN (ANALYZE, BUFFERS); the scan nodes and
index names are printed. Candidate indexes are then created in bench_scale only, measured,
and dropped again.

    make bench      # or: DATABASE_URL=... .venv/bin/python bench/scale.py
    BENCH_SCALE_REPEAT=40  BENCH_SCALE_REBUILD=1 (regenerate even if the counts match)
"""
import json
import os
import statistics
import time
from contextlib import ExitStack
from datetime import timedelta

import psycopg2
from _support import (
    BROKER_URL,
    Gunicorn,
    bench_database,
    database_exists,
    database_url,
    django_setup,
    flush_broker,
    request,
    request_json,
    write_results,
)

NAME = "bench_scale"
DATA_VERSION = 1
SESSIONS, MENTORS, MENTEES, CHECKOUTS = 1_000_000, 10_000, 50_000, 100_000
HOT_SESSIONS = 50_000  # mentor #1
HOT_MENTOR, MENTEE = 1, MENTORS + 1  # mentee #1 is user MENTORS + 1
PASSWORD = "bench-pass-2026-scale"
REPEAT = int(os.environ.get("BENCH_SCALE_REPEAT", "40"))
GOAL_MS = 20.0

FIRST = "ARRAY['Ada','Grace','Linus','Margaret','Guido','Barbara','Tim','Katherine','Alan','Radia','Frances','Hedy'," \
        "'Edsger','Donald','Ken','Dennis','Bjarne','Anders','Yukihiro','Rasmus','Brendan','James','Larry','Sophie'," \
        "'Joan','Mary','Karen','Lynn','Adele','Carol','Shafi','Ruth','Jean','Evelyn','Kathleen','Betty','Annie'," \
        "'Ida','Hilde','Emmy']"
LAST = "ARRAY['Lovelace','Hopper','Torvalds','Hamilton','Rossum','Liskov','Lee','Johnson','Turing','Perlman'," \
       "'Allen','Lamarr','Dijkstra','Knuth','Thompson','Ritchie','Stroustrup','Hejlsberg','Matsumoto','Lerdorf'," \
       "'Eich','Gosling','Wall','Wilson','Clarke','Keller','Jones','Conway','Goldberg','Shaw','Goldwasser','Leach'," \
       "'Sammet','Bartik','Booth','Holberton','Easley','Rhodes','Pirie','Noether']"

GENERATE = [
    ("users", f"""
INSERT INTO backend_user (id, password, is_superuser, email, name, is_active, is_staff, date_joined)
SELECT g, '!', false, 'user' || g || '@scale.bench',
       CASE WHEN g <= {MENTORS} THEN 'Mentor ' || g ELSE 'Mentee ' || g END, true, false, now()
FROM generate_series(1, {MENTORS + MENTEES}) g"""),
    ("expertise", """
INSERT INTO backend_expertise (id, slug, name) SELECT g, 'topic-' || g, 'Topic ' || g FROM generate_series(1, 20) g"""),
    ("mentors", f"""
INSERT INTO backend_mentor (id, user_id, name, headline, bio, hourly_rate, currency, is_active, total_sessions,
                            total_minutes, total_earnings, created_at)
SELECT g, g, ({FIRST})[1 + g % 40] || ' ' || ({LAST})[1 + (g / 40) % 40] || ' ' || g,
       'Mentoring on topic ' || (1 + g % 20) || ' and topic ' || (1 + (g * 7 + 3) % 20),
       'A mentor of the scale benchmark.', 6000 + (g % 20) * 500, 'usd', g % 20 <> 0, 0, 0, 0, now()
FROM generate_series(1, {MENTORS}) g"""),
    ("mentor topics", f"""
INSERT INTO backend_mentor_expertise (mentor_id, expertise_id)
SELECT g, 1 + g % 20 FROM generate_series(1, {MENTORS}) g
UNION ALL SELECT g, 1 + (g * 7 + 3) % 20 FROM generate_series(1, {MENTORS}) g"""),
    ("checkouts", f"""
INSERT INTO backend_checkout (mentee_id, mentor_id, title, description, scheduled_at, duration_minutes, ends_at,
                              amount, currency, stripe_checkout_session_id, checkout_url, status, expires_at,
                              created_at, updated_at)
SELECT {MENTORS} + 1 + g % {MENTEES}, 2 + g % {MENTORS - 1}, 'Checkout ' || g, '', t, 60, t + interval '1 hour',
       7000, 'usd', 'cs_scale_co_' || g, '', CASE WHEN g % 500 = 0 THEN 'open' WHEN g % 3 = 0 THEN 'expired'
       ELSE 'complete' END, CASE WHEN g % 500 = 0 THEN now() + interval '20 minutes' ELSE t - interval '1 day' END,
       t - interval '2 days', t - interval '2 days'
FROM (SELECT g, date_trunc('hour', now()) + interval '5 days' + (g % 2000) * interval '1 hour' - interval '60 days'
             * (g % 2) AS t FROM generate_series(1, {CHECKOUTS}) g) c"""),
    ("sessions of mentor 1", f"""
INSERT INTO sessions (title, description, scheduled_at, duration_minutes, ends_at, status, payment_status, amount,
                      currency, refunded_amount, is_disputed, stripe_payment_id, stripe_checkout_session_id,
                      created_at, updated_at, mentee_id, mentor_id)
SELECT 'Session h' || k, '', t, d, t + d * interval '1 minute',
       CASE WHEN k % 50 = 7 THEN 'cancelled' WHEN t > now() THEN 'scheduled' ELSE 'completed' END,
       CASE WHEN k % 50 = 7 THEN 'refunded' ELSE 'paid' END, 100 * d, 'usd',
       CASE WHEN k % 50 = 7 THEN 100 * d ELSE 0 END, false, 'pi_scale_h' || k, 'cs_scale_h' || k,
       t - interval '3 days', t - interval '3 days', {MENTORS} + 1 + k % {MENTEES}, {HOT_MENTOR}
FROM (SELECT k, date_trunc('hour', now()) + (k - {HOT_SESSIONS - 20}) * interval '3 hours' AS t,
             (ARRAY[30, 45, 60, 90, 120])[1 + k % 5] AS d FROM generate_series(0, {HOT_SESSIONS - 1}) k) s"""),
    ("sessions of the others", f"""
INSERT INTO sessions (title, description, scheduled_at, duration_minutes, ends_at, status, payment_status, amount,
                      currency, refunded_amount, is_disputed, stripe_payment_id, stripe_checkout_session_id,
                      created_at, updated_at, mentee_id, mentor_id)
SELECT 'Session ' || g, '', t, d, t + d * interval '1 minute',
       CASE WHEN g % 50 = 7 THEN 'cancelled' WHEN t > now() THEN 'scheduled' ELSE 'completed' END,
       CASE WHEN g % 50 = 7 THEN 'refunded' ELSE 'paid' END, 100 * d, 'usd',
       CASE WHEN g % 50 = 7 THEN 100 * d ELSE 0 END, false, 'pi_scale_' || g, 'cs_scale_' || g,
       t - interval '3 days' - (g % 1000) * interval '1 second', t - interval '3 days', {MENTORS} + 1 + g % {MENTEES},
       2 + g % {MENTORS - 1}
FROM (SELECT g, date_trunc('hour', now()) - interval '300 days' + (g / {MENTORS - 1}) * interval '100 hours'
                + (g % 48) * interval '30 minutes' AS t,
             (ARRAY[30, 45, 60, 90, 120])[1 + g % 5] AS d
      FROM generate_series(0, {SESSIONS - HOT_SESSIONS - 1}) g) s"""),
    ("mentor stats", """
UPDATE backend_mentor m SET total_sessions = a.n, total_minutes = a.minutes, total_earnings = a.earnings,
                            stats_updated_at = now()
FROM (SELECT mentor_id, count(*) n, sum(duration_minutes) minutes, sum(amount) - sum(refunded_amount) earnings
      FROM sessions WHERE payment_status = 'paid' AND status <> 'cancelled' GROUP BY mentor_id) a
WHERE a.mentor_id = m.id"""),
]



def connect(url: str):
    conn = psycopg2.connect(url)
    conn.autocommit = True
    return conn


def counts(cursor) -> dict:
    cursor.execute("SELECT (SELECT count(*) FROM sessions), (SELECT count(*) FROM backend_mentor), "
                   "(SELECT count(*) FROM backend_user), (SELECT count(*) FROM backend_checkout)")
    s, m, u, c = cursor.fetchone()
    return {"sessions": s, "mentors": m, "users": u, "checkouts": c}


EXPECTED = {"sessions": SESSIONS, "mentors": MENTORS, "users": MENTORS + MENTEES, "checkouts": CHECKOUTS}


def reusable() -> bool:
    if os.environ.get("BENCH_SCALE_REBUILD") or not database_exists(NAME):
        return False
    try:
        conn = connect(database_url(NAME))
    except psycopg2.Error:
        return False
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT version, counts FROM bench_meta")
            version, recorded = cursor.fetchone()
            actual = counts(cursor)
            ok = version == DATA_VERSION and recorded == actual == EXPECTED
            print(f"{NAME} exists: counts {actual}, data version {version}: {'reused' if ok else 'rebuilt'}")
            return ok
    except psycopg2.Error:
        return False
    finally:
        conn.close()


def generate() -> str:
    url = bench_database(NAME)
    started = time.perf_counter()
    conn = connect(url)
    with conn.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '256MB'; SET synchronous_commit = off")
        # The sessions table's secondary indexes and constraints, to recreate after the load.
        cursor.execute("""SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
                          WHERE conrelid = 'sessions'::regclass AND contype IN ('u', 'x', 'f') ORDER BY contype""")
        constraints = cursor.fetchall()
        cursor.execute("""SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'sessions'
                          AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = 'sessions'::regclass)""")
        indexes = cursor.fetchall()
        for name, _ in constraints:
            cursor.execute(f'ALTER TABLE sessions DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        for label, sql in GENERATE[:-1]:
            t = time.perf_counter()
            cursor.execute(sql)
            print(f"  {label}: {cursor.rowcount} rows in {time.perf_counter() - t:.1f} s", flush=True)
        t = time.perf_counter()
        for _, definition in indexes:
            cursor.execute(definition)
        for name, definition in constraints:
            cursor.execute(f'ALTER TABLE sessions ADD CONSTRAINT "{name}" {definition}')
        print(f"  sessions: {len(indexes)} indexes and {len(constraints)} constraints recreated (rows validated) "
              f"in {time.perf_counter() - t:.1f} s", flush=True)
        label, sql = GENERATE[-1]
        cursor.execute(sql)
        for table in ("backend_user", "backend_expertise", "backend_mentor", "backend_mentor_expertise",
                      "backend_checkout", "sessions"):
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        t = time.perf_counter()
        cursor.execute("VACUUM (ANALYZE)")
        print(f"  vacuum analyze in {time.perf_counter() - t:.1f} s", flush=True)
        actual = counts(cursor)
        if actual != EXPECTED:
            raise RuntimeError(f"generated {actual}, expected {EXPECTED}")
        cursor.execute("CREATE TABLE bench_meta (version int, counts jsonb)")
        cursor.execute("INSERT INTO bench_meta VALUES (%s, %s)", [DATA_VERSION, json.dumps(actual)])
    conn.close()
    print(f"generated {SESSIONS:,} sessions, {MENTORS:,} mentors in {time.perf_counter() - started:.0f} s", flush=True)
    return url


# ---- Measuring ------------------------------------------------------------------------


def http_case(port: int, path: str, token: str | None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    def run():
        status = request("GET", port, path, None, headers)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status}")
    return run


def timed(run, repeat: int = REPEAT) -> float:
    for _ in range(3):
        run()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        run()
        times.append((time.perf_counter() - t) * 1000)
    return round(statistics.median(times), 2)


def plan_nodes(plan: dict) -> list[str]:
    """Scan/join nodes of a JSON plan, e.g. 'Index Only Scan using x on sessions'."""
    node = plan["Node Type"]
    label = node
    if "Index Name" in plan:
        label += f" using {plan['Index Name']}"
    if "Relation Name" in plan and "Index Name" not in plan:
        label += f" on {plan['Relation Name']}"
    if node in ("Hash Join", "Merge Join", "Nested Loop", "Aggregate", "Limit", "Hash", "Materialize", "Result"):
        label = None  # structural: keep the output to the scans and sorts
    labels = [label] if label else []
    for child in plan.get("Plans", []):
        labels += plan_nodes(child)
    return labels


def explain_case(in_process) -> list[dict]:
    """Run the case in-process, capture its SELECTs, EXPLAIN (ANALYZE, BUFFERS) each one."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        in_process()
    plans = []
    for query in captured.captured_queries:
        sql = query["sql"]
        if not sql.lstrip().upper().startswith("SELECT") or "backend_user" in sql and "sessions" not in sql \
                and "backend_mentor" not in sql:
            continue  # the JWT's user lookup: a primary-key fetch on every authenticated request
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql)
            result = cursor.fetchone()[0]
            result = json.loads(result) if isinstance(result, str) else result
        top = result[0]
        buffers = top["Plan"].get("Shared Hit Blocks", 0) + top["Plan"].get("Shared Read Blocks", 0)
        plans.append({"sql": sql, "nodes": plan_nodes(top["Plan"]),
                      "execution_ms": round(top["Execution Time"], 2), "buffers": buffers})
    return plans


def sql_p50(cursor, statements: list[str], repeat: int = REPEAT) -> float:
    """p50 of running `statements` one after the other (fetching every row), in ms."""
    def run():
        for sql in statements:
            cursor.execute(sql)
            cursor.fetchall()
    return timed(run, repeat)


def main() -> None:
    url = database_url(NAME) if reusable() else generate()
    env = {"DATABASE_URL": url, "CELERY_BROKER_URL": BROKER_URL, "STRIPE_SECRET_KEY": "sk_test_bench_only",
           "STRIPE_WEBHOOK_SECRET": "whsec_bench_scale"}
    django_setup(url, **env)
    from django.contrib.auth.hashers import make_password
    from django.test import Client
    from django.utils import timezone

    from backend.models import User
    from backend.services.mentors import mentor_stats_recompute
    from backend.services.slots import slot_conflict

    password = make_password(PASSWORD)
    User.objects.filter(pk__in=[HOT_MENTOR, MENTEE]).update(password=password)
    now = timezone.now()
    slot = now.replace(minute=0, second=0, microsecond=0) + timedelta(days=3, hours=1, minutes=30)
    client = Client()

    rows = []
    with ExitStack() as stack:
        stack.callback(flush_broker)
        api = stack.enter_context(Gunicorn(env, workers=2))
        tokens = {}
        for user_id in (HOT_MENTOR, MENTEE):
            status, body = request_json("POST", api.port, "/api/auth/login",
                                        {"email": f"user{user_id}@scale.bench", "password": PASSWORD})
            if status != 200:
                raise RuntimeError(f"login user{user_id}: {status} {body}")
            tokens[user_id] = body["access"]

        def endpoint(path, user=None):
            auth = {"HTTP_AUTHORIZATION": f"Bearer {tokens[user]}"} if user else {}

            def in_process():
                response = client.get(path, **auth)
                assert response.status_code == 200, (path, response.status_code)
            return http_case(api.port, path, tokens.get(user)), in_process

        def after_page(path, page, user=None):
            """`path` continued with the cursor that follows `page` (fetched once, not timed)."""
            headers = {"Authorization": f"Bearer {tokens[user]}"} if user else {}
            status, body = request_json("GET", api.port, f"{path}&page={page}", headers=headers)
            if status != 200 or not body.get("next_cursor"):
                raise RuntimeError(f"no cursor after {path} page {page}: {status}")
            return endpoint(f"{path}&cursor={body['next_cursor']}", user)

        def conflict(mentor_id, mentee_id):
            def run():
                slot_conflict(mentor_id=mentor_id, mentee_id=mentee_id, starts=slot, ends=slot + timedelta(hours=1))
            return run, run

        def recompute(mentor_id):
            def run():
                mentor_stats_recompute(mentor_id=mentor_id)
            return run, run

        cases = {
            "GET /api/mentors page 1": endpoint("/api/mentors?page=1"),
            "GET /api/mentors deep page 450": endpoint("/api/mentors?page=450"),
            "GET /api/mentors deep page 450 by cursor": after_page("/api/mentors?page_size=20", 449),
            "GET /api/mentors?expertise=topic-3 page 1": endpoint("/api/mentors?expertise=topic-3&page=1"),
            "GET /api/mentors?expertise=topic-3 deep page 45": endpoint("/api/mentors?expertise=topic-3&page=45"),
            "GET /api/mentors?q=lovelace": endpoint("/api/mentors?q=lovelace"),
            "GET /api/mentors?expertise=topic-3&q=grace": endpoint("/api/mentors?expertise=topic-3&q=grace"),
            "GET /api/sessions (mentee, 20 sessions) page 1": endpoint("/api/sessions", MENTEE),
            "GET /api/sessions?role=mentor (50,000 sessions) page 1": endpoint("/api/sessions?role=mentor", HOT_MENTOR),
            "GET /api/sessions?role=mentor deep page 1000": endpoint("/api/sessions?role=mentor&page=1000",
                                                                     HOT_MENTOR),
            "GET /api/sessions?role=mentor deep page 1000 by cursor": after_page("/api/sessions?role=mentor", 999,
                                                                                 HOT_MENTOR),
            "slot_conflict (mentor with 50,000 sessions)": conflict(HOT_MENTOR, MENTEE),
            "slot_conflict (mentor with ~95 sessions)": conflict(2, MENTEE),
            "mentor_stats_recompute (mentor with 50,000 sessions)": recompute(HOT_MENTOR),
            "mentor_stats_recompute (mentor with ~95 sessions)": recompute(2),
        }

        def measure(name):
            timed_run, in_process = cases[name]
            return {"case": name, "p50_ms": timed(timed_run), "plans": explain_case(in_process)}

        def show(row, prefix=""):
            met = row["p50_ms"] < GOAL_MS
            print(f"{prefix}{row['case']:<56} p50 {row['p50_ms']:>8} ms  {'met' if met else 'MISSED'}", flush=True)
            for plan in row["plans"]:
                print(f"{prefix}    {plan['execution_ms']:>7} ms {plan['buffers']:>6} buf  "
                      f"{'; '.join(plan['nodes'])}", flush=True)

        print(f"p50 of {REPEAT} sequential runs each (goal < {GOAL_MS:g} ms); EXPLAIN (ANALYZE, BUFFERS) of each SELECT:")
        for name in cases:
            row = measure(name)
            row["goal_met"] = row["p50_ms"] < GOAL_MS
            rows.append(row)
            show(row)

    missed = [r["case"] for r in rows if not r["goal_met"]]
    print(f"goal p50 < {GOAL_MS:g} ms: {len(rows) - len(missed)}/{len(rows)} met"
          + (f"; missed: {', '.join(missed)}" if missed else ""))
    path = write_results("scale", {"goal": f"p50 < {GOAL_MS:g} ms", "data": EXPECTED | {"hot_mentor_sessions": HOT_SESSIONS},
                                   "repeat": REPEAT, "cases": rows,
                                   "goals_met": len(rows) - len(missed), "goals_missed": missed})
    print(f"results: {path.relative_to(path.parents[2])}")
    keyset = [r for r in rows if r["case"].endswith("by cursor")]
    print(f"goal 3 deep pages by cursor p50 < {GOAL_MS:g} ms: "
          + ", ".join(f"{r['case']} {r['p50_ms']} ms" for r in keyset)
          + f": {'met' if all(r['goal_met'] for r in keyset) else 'not met'}")


if __name__ == "__main__":
    main()
