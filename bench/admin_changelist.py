"""Admin changelists at 1M rows: p50/p95 of a page, through Django's test client, as a logged-in staff user.

    .venv/bin/python bench/admin_changelist.py            # fill (once) and measure
    BENCH_ADMIN_DATABASE_URL=postgres://... ROWS=1000000 .venv/bin/python bench/admin_changelist.py

It works in its own database (created if missing, `shokti_bench_admin` by default), filled once with
SQL `INSERT ... SELECT generate_series` (1M contacts, customers, bookings, events and leads for
one big company, plus a small company of 1,000 rows each whose staff page through the same big
tables, and 1M messages on the big company's leads), then times 20 requests of each changelist and of
the console's inbox (its JSON rows per view, its page) and pipeline board. `main()` returns the figures (p95 a page;
ceiling 150 ms) for `bench/run_all.py`, which writes them to the `admin_changelist` section of
`docs/benchmarks.md`; run standalone, this script writes that table itself.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/shokti_bench_admin"
ROWS = int(os.environ.get("ROWS", "1000000"))
SMALL_ROWS = 1000
REQUESTS = 20
# Issue 19: every list, the inbox and the board answer in under 150 ms (p95) at 1M rows.
CEILING_SECONDS = 0.15
NAME = "admin_changelist"

# (label, model, query string)
PAGES = [
    ("Contact", "contact", ""),
    ("Contact, consented to SMS", "contact", "is_sms_consented__exact=1"),
    ("Customer", "customer", ""),
    ("Booking", "booking", ""),
    ("Booking, completed, drilled to a month", "booking", "status__exact=completed&scheduled_at__year=2026&scheduled_at__month=3"),
    ("Event", "event", ""),
    ("Event, one type", "event", "type=message.sent"),
    ("Lead", "lead", ""),
    ("Lead, open", "lead", "status__exact=open"),
]
# The console's working pages (engage.admin.console), by URL name and query string: the inbox's JSON
# rows (what its page polls) per view, and the pipeline board.
CONSOLE_PAGES = [
    ("Inbox rows, all open", "admin:crm_lead_inbox_rows", ""),
    ("Inbox rows, unread", "admin:crm_lead_inbox_rows", "view=unread"),
    ("Inbox rows, needs a human", "admin:crm_lead_inbox_rows", "view=needs_human"),
    ("Inbox rows, WhatsApp", "admin:crm_lead_inbox_rows", "channel=whatsapp_cloud"),
    ("Inbox page", "admin:crm_lead_inbox", ""),
    ("Pipeline board", "admin:crm_lead_board", ""),
]


def main() -> list[dict]:
    """Run the benchmark in a child process bound to its own database; returns the figures."""
    url = os.environ.get("BENCH_ADMIN_DATABASE_URL", DEFAULT_URL)
    with tempfile.NamedTemporaryFile(suffix=".json") as output:
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "DJANGO_SETTINGS_MODULE": "shokti.settings",
            "BENCH_ADMIN_OUTPUT": output.name,
        }
        subprocess.run([sys.executable, __file__], env=env, cwd=BASE_DIR, check=True)
        return json.loads(Path(output.name).read_text())


def _database_create(url: str) -> None:
    import psycopg

    match = re.match(r"^(?P<server>.+)/(?P<name>[^/?]+)(?P<query>\?.*)?$", url)
    server, name = match["server"], match["name"]
    with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
        if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            connection.execute(f'CREATE DATABASE "{name}"')


def _fill(company_slug: str, rows: int) -> tuple[int, float]:
    """Fill one company with `rows` contacts/customers/bookings/events/leads; returns (company id, seconds)."""
    from django.db import connection, transaction

    from crm.models import Company
    from crm.services import pipeline_get_or_create_default

    company, created = Company.objects.get_or_create(slug=company_slug, defaults={"name": company_slug})
    if not created and company.contacts.exists():
        return company.pk, 0.0
    started = time.perf_counter()
    pipeline = pipeline_get_or_create_default(company=company)
    stage_ids = list(pipeline.stages.order_by("order").values_list("id", flat=True))
    params = {"company": company.pk, "rows": rows, "pipeline": pipeline.pk}
    statements = [
        # Services and workers: small lookup tables.
        """INSERT INTO crm_service (company_id, name, name_bn, category, base_price, duration_minutes, is_active)
           SELECT %(company)s, 'Service ' || n, 'সেবা ' || n, 'category ' || (n %% 3), 500 + n * 100, 60, true
           FROM generate_series(1, 10) AS n""",
        """INSERT INTO crm_contact (company_id, name, phone, email, locale, timezone, is_email_consented,
               is_sms_consented, is_whatsapp_consented, created_at, updated_at)
           SELECT %(company)s, 'Contact ' || n, '+8801' || lpad((%(company)s * 10000000 + n)::text, 9, '0'),
               'contact' || n || '@bench.test', 'bn', 'Asia/Dhaka', n %% 2 = 0, n %% 3 <> 0, n %% 5 <> 0,
               now() - (n || ' minutes')::interval, now()
           FROM generate_series(1, %(rows)s) AS n""",
        """INSERT INTO crm_customer (company_id, contact_id, last_booking_at, created_at)
           SELECT %(company)s, id, now() - ((id %% 700) || ' days')::interval, now()
           FROM crm_contact WHERE company_id = %(company)s""",
        """INSERT INTO crm_worker (company_id, contact_id, skills, zones, is_active, created_at, ratings_avg)
           SELECT %(company)s, id, '["cleaning"]', '["Dhanmondi"]', true, now(), 4.5
           FROM crm_contact WHERE company_id = %(company)s ORDER BY id LIMIT 100""",
        """INSERT INTO crm_booking (company_id, customer_id, worker_id, service_id, status, scheduled_at,
               arrived_at, finished_at, rating, price, created_at)
           SELECT %(company)s, customer.id, workers.ids[1 + customer.id %% array_length(workers.ids, 1)],
               services.ids[1 + customer.id %% array_length(services.ids, 1)],
               (ARRAY['scheduled', 'in_progress', 'completed', 'cancelled'])[1 + customer.id %% 4],
               timestamptz '2026-11-01' - ((customer.id %% 730) || ' days')::interval,
               NULL, NULL, 1 + customer.id %% 5, 1500, now()
           FROM crm_customer AS customer,
               (SELECT array_agg(id) AS ids FROM crm_worker WHERE company_id = %(company)s) AS workers,
               (SELECT array_agg(id) AS ids FROM crm_service WHERE company_id = %(company)s) AS services
           WHERE customer.company_id = %(company)s""",
        """INSERT INTO crm_event (company_id, type, contact_id, target_id, payload, source, occurred_at)
           SELECT %(company)s,
               (ARRAY['lead.created', 'message.sent', 'message.received', 'stage.changed',
                      'notification_opened'])[1 + id %% 5],
               id, '', jsonb_build_object('body', repeat('x', 200), 'n', id), 'bench',
               now() - ((id %% 500000) || ' minutes')::interval
           FROM crm_contact WHERE company_id = %(company)s""",
        f"""INSERT INTO crm_lead (company_id, contact_id, pipeline_id, stage_id, status, channel, source,
               summary, score, created_at, updated_at, is_ai_paused)
           SELECT %(company)s, id, %(pipeline)s, (ARRAY{stage_ids})[1 + id %% 5],
               (ARRAY['open', 'open', 'open', 'won', 'lost'])[1 + id %% 5], 'whatsapp_cloud', 'website',
               repeat('summary ', 50), id %% 100, now(), now(), false
           FROM crm_contact WHERE company_id = %(company)s""",
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 0")  # the fill is long; requests keep the timeout
        # Rows are consistent by construction: skip the deferred per-row foreign-key triggers,
        # which would take minutes at COMMIT.
        cursor.execute("SET LOCAL session_replication_role = replica")
        for statement in statements:
            cursor.execute(statement, params)
    return company.pk, time.perf_counter() - started


def _fill_messages(company_id: int, rows: int) -> float:
    """`rows` messages on the company's leads (two a lead, the newer one inbound on every third lead),
    and a few leads waiting for a person; once (kept when the table already has the company's rows)."""
    from django.db import connection, transaction

    from engage.messaging.models import Message

    if Message.objects.filter(company_id=company_id).exists():
        return 0.0
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 0")
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            """INSERT INTO engage_message (company_id, contact_id, lead_id, direction, channel, agent_type,
                   message_type, subject, body, status, provider_message_id, provider_response, error,
                   external_id, created_at, updated_at)
               SELECT lead.company_id, lead.contact_id, lead.id,
                   CASE WHEN turn = 2 AND lead.id %% 3 = 0 THEN 'inbound'
                        WHEN turn = 1 THEN 'inbound' ELSE 'outbound' END,
                   'whatsapp_cloud', CASE WHEN turn = 2 AND lead.id %% 3 <> 0 THEN 'smartengage' ELSE '' END,
                   '', '', 'message ' || turn || ' of lead ' || lead.id, 'sent', '', '{}', '', '',
                   now() - ((lead.id %% 100000) || ' minutes')::interval + (turn || ' seconds')::interval, now()
               FROM crm_lead AS lead, generate_series(1, 2) AS turn
               WHERE lead.company_id = %(company)s
               ORDER BY lead.id LIMIT %(rows)s""",
            {"company": company_id, "rows": rows},
        )
        cursor.execute(
            "UPDATE crm_lead SET handoff_requested_at = now(), is_ai_paused = true"
            " WHERE company_id = %(company)s AND status = 'open' AND id %% 997 = 0",
            {"company": company_id},
        )
    return time.perf_counter() - started


def _staff_user(email: str, company_id: int):
    from django.contrib.auth.models import Group

    from crm.models import Membership, User

    user, _ = User.objects.get_or_create(email=email, defaults={"is_staff": True})
    user.groups.add(Group.objects.get(name="Operations"))
    Membership.objects.get_or_create(user=user, company_id=company_id)
    return user


class _SqlTimer:
    """Adds up the time spent in the database (a connection execute wrapper)."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - started


def _measure(client, url: str, plural: str) -> tuple[float, float, float, float, int]:
    """(p50, p95, median CPU seconds of this process, median seconds in SQL, rows counted) of `url`."""
    from django.db import connection

    response = client.get(url)  # warm: caches, plans
    assert response.status_code == 200, (url, response.status_code)
    # The paginator says how many rows were counted: "1000000 contacts".
    counted = re.search(rf"(\d+) {re.escape(plural)}\s", response.content.decode())
    timings, cpu_timings, sql_timings = [], [], []
    for _ in range(REQUESTS):
        timer = _SqlTimer()
        with connection.execute_wrapper(timer):
            started, cpu_started = time.perf_counter(), time.process_time()
            response = client.get(url)
            timings.append(time.perf_counter() - started)
            cpu_timings.append(time.process_time() - cpu_started)
        sql_timings.append(timer.seconds)
        assert response.status_code == 200
    timings.sort()
    p95 = timings[min(len(timings) - 1, round(0.95 * len(timings)) - 1)]
    count = int(counted[1]) if counted else -1
    return statistics.median(timings), p95, statistics.median(cpu_timings), statistics.median(sql_timings), count


def run() -> None:
    import django

    _database_create(os.environ["DATABASE_URL"])
    django.setup()
    from django.apps import apps
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    # Not setup_test_environment(): its instrumented template rendering (the test client keeping
    # a copy of every context) would be measured too, inflating each page by a third.
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    call_command("migrate", verbosity=0)
    big_id, big_seconds = _fill("bench-big", ROWS)
    small_id, small_seconds = _fill("bench-small", SMALL_ROWS)
    message_seconds = _fill_messages(big_id, ROWS) + _fill_messages(small_id, SMALL_ROWS)
    if message_seconds:
        print(f"filled {ROWS:,} messages in {message_seconds:.1f} s")
        with connection.cursor() as cursor:
            cursor.execute("SET statement_timeout = 0")
            cursor.execute("ANALYZE engage_message")
            cursor.execute("ANALYZE crm_lead")
            cursor.execute("RESET statement_timeout")
    if big_seconds or small_seconds:
        print(f"filled {ROWS:,} rows a table in {big_seconds:.1f} s (+{small_seconds:.1f} s small company)")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_user_tables WHERE relname LIKE 'crm\\_%%'"
            " AND last_vacuum IS NULL AND last_autovacuum IS NULL"
        )
        if cursor.fetchone()[0]:
            # Fresh statistics and a visibility map, as a long-lived database has.
            cursor.execute("SET statement_timeout = 0")
            cursor.execute("VACUUM ANALYZE")
            cursor.execute("RESET statement_timeout")

    results = []
    for who, email, company_id in [("big company", "ops@big.bench", big_id), ("small company", "ops@small.bench", small_id)]:
        client = Client()
        client.force_login(_staff_user(email, company_id))
        for label, model_name, query in PAGES:
            url = reverse(f"admin:crm_{model_name}_changelist") + (f"?{query}" if query else "")
            plural = str(apps.get_model("crm", model_name)._meta.verbose_name_plural)
            p50, p95, cpu, sql, count = _measure(client, url, plural)
            results.append((who, label, p50, p95, cpu, sql, count))
            print(f"{who:13} {label:42} p50 {p50 * 1000:7.1f} ms  p95 {p95 * 1000:7.1f} ms  "
                  f"CPU {cpu * 1000:6.1f} ms  SQL {sql * 1000:6.1f} ms  ({count:,} rows counted)", flush=True)
        for label, url_name, query in CONSOLE_PAGES:
            url = reverse(url_name) + (f"?{query}" if query else "")
            p50, p95, cpu, sql, count = _measure(client, url, "\x00")  # nothing counted on these pages
            results.append((who, label, p50, p95, cpu, sql, count))
            print(f"{who:13} {label:42} p50 {p50 * 1000:7.1f} ms  p95 {p95 * 1000:7.1f} ms  "
                  f"CPU {cpu * 1000:6.1f} ms  SQL {sql * 1000:6.1f} ms", flush=True)

    figures = [
        {
            "figure": f"{label}{'' if label.startswith(('Inbox', 'Pipeline')) else ' changelist'} p95, staff of the {who}",
            "value": p95 * 1000,
            "unit": "ms",
            "ceiling": CEILING_SECONDS * 1000,
            "note": f"p50 {p50 * 1000:.0f} ms; Python CPU {cpu * 1000:.0f} ms + SQL {sql * 1000:.0f} ms a request"
            + (f"; {count:,} rows counted" if count >= 0 else ""),
        }
        for who, label, p50, p95, cpu, sql, count in results
    ]
    Path(os.environ["BENCH_ADMIN_OUTPUT"]).write_text(json.dumps(figures))


if __name__ == "__main__":
    sys.path.insert(0, str(BASE_DIR))
    if os.environ.get("BENCH_ADMIN_OUTPUT"):
        run()
    else:
        # Standalone: measure in the child, then write this module's table as `make bench` does.
        from bench.run_all import section_write

        started = time.perf_counter()
        section_write(NAME, main(), time.perf_counter() - started)
