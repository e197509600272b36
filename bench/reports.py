"""The dashboard at scale: the backfill, a rollup tick and every card's p95, on a year of one company's data at
BENCH_REPORTS_SCALE of the issue's 1M customers / 10M bookings / 1M messages (0.02 by default, extrapolated; 1 is the
full size, measured: a fill of about 21 minutes on this 2-core machine, then about 3 minutes of measuring).

    .venv/bin/python bench/reports.py                       # fill (once) and measure, write docs/benchmarks.md
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/shokti_bench_reports_full BENCH_REPORTS_SCALE=1 \
        .venv/bin/python bench/run_all.py reports

Own database (`shokti_bench_reports` by default, created and migrated if missing), filled once by set-based SQL
(one `INSERT ... SELECT ... FROM generate_series` per table) over 365 days: SCALE x 1M outbound messages (3 channels,
the company's template versions, 10 campaigns over 5 service categories), an open for 60% and a click for 20% of
them, SCALE x 1M leads' worth of AI sessions, SCALE x 10M bookings each with its punctuality row (5 zones,
5 categories), SCALE x 1M customers and leads. Every figure carries this process's and PostgreSQL's CPU time and the
load next to its wall time.

Figures:
- backfill (`manage.py reports_backfill`'s function) over the year, extrapolated two ways that bracket the full
  size: linearly by 1/SCALE (pessimistic: the sparse year writes a rollup row for every ~4 raw rows) and from the
  full-density 3-day refresh x 365/3 (optimistic: no slowdown from bigger tables);
- one tick (`rollups_refresh_recent`: the last 3 local days) on a second company filled with 3 days at the full
  size's density (27,397 bookings and 2,740 messages a day with their events): measured, not extrapolated; and the
  same on the scaled-down year;
- card p95: each of the 5 cards x 4 periods, cache cleared before each read (cold), 5 reads each. Cards read the
  rollups, whose size depends on days x segment values, not on raw rows: the filled year has the full-scale
  segment cardinality, so the p95 is the full-scale figure (operations reads the live ledger: an empty one here).
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/shokti_bench_reports"
SCALE = float(os.environ.get("BENCH_REPORTS_SCALE", "0.02"))
FULL = {"messages": 1_000_000, "bookings": 10_000_000, "customers": 1_000_000}
SLUG = "bench-reports"
DAYS = 365


def setup() -> None:
    os.environ.setdefault("DATABASE_URL", DEFAULT_URL)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shokti.settings")
    os.environ.setdefault("DATABASE_STATEMENT_TIMEOUT_MS", "0")  # the full-size fill's statements run for minutes
    sys.path.insert(0, str(BASE_DIR))
    from bench.run_all import database_prepare

    database_prepare()


# Set-based fill (PostgreSQL): each big table is one `INSERT ... SELECT ... FROM generate_series(...)`, random() per row
# (seeded by setseed) for the same distributions the per-row fill had; contact, customer and worker ids come out of
# one statement each, so they are consecutive and picked by offset from the first.
CONTACTS_FILL = """
INSERT INTO crm_contact (company_id, name, phone, email, locale, timezone, is_email_consented, is_sms_consented,
                         is_whatsapp_consented, created_at, updated_at, external_id)
SELECT %(company)s, %(letter)s || g, '+880' || %(prefix)s || lpad(g::text, 9, '0'), '', 'bn', 'Asia/Dhaka', false, false,
       false, %(end)s, %(end)s, ''
FROM generate_series(0, %(n)s - 1) AS g
"""
CUSTOMERS_FILL = """
INSERT INTO crm_customer (company_id, contact_id, last_booking_at, created_at, updated_at, external_id, is_active)
SELECT %(company)s, c.id, %(end)s - random() * interval '400 days', %(end)s, %(end)s, '', true
FROM crm_contact AS c WHERE c.company_id = %(company)s ORDER BY c.id
"""
MESSAGES_FILL = """
INSERT INTO engage_message (company_id, contact_id, direction, channel, agent_type, message_type, subject, body, status,
                            created_at, updated_at, sent_at, delivered_at, provider_message_id, provider_response, error,
                            correlation_id, external_id, template_version_id)
SELECT %(company)s, s.contact, 'outbound', s.channel, 'smartengage', 'reminder', '', 'x', 'delivered', s.at, s.at, s.at,
       s.at + interval '2 minutes', '', '{}', '', gen_random_uuid(), '', s.version
FROM (SELECT %(first_contact)s + floor(random() * %(contacts)s)::bigint AS contact,
             (ARRAY['sms', 'whatsapp', 'email'])[1 + floor(random() * 3)::int] AS channel,
             (%(versions)s::bigint[])[1 + floor(random() * cardinality(%(versions)s::bigint[]))::int] AS version,
             %(end)s - random() * %(days)s * interval '1 day' AS at
      FROM generate_series(1, %(n)s) AS g) AS s
"""
RECIPIENTS_FILL = """
INSERT INTO engage_campaignrecipient (company_id, campaign_id, run_id, customer_id, message_id, status, reason, body,
                                      correlation_id, error, created_at, updated_at, cycle_started_at)
SELECT %(company)s, (%(campaigns)s::bigint[])[s.k], (%(runs)s::bigint[])[s.k], cu.id, s.id, 'sent', '', '', gen_random_uuid(), '', s.created_at,
       s.created_at, s.created_at
FROM (SELECT m.id, m.contact_id, m.created_at, random() AS r, 1 + floor(random() * 10)::int AS k
      FROM engage_message AS m WHERE m.company_id = %(company)s) AS s
JOIN crm_customer AS cu ON cu.contact_id = s.contact_id
WHERE s.r < 0.5
"""
EVENTS_FILL = """
INSERT INTO crm_event (company_id, type, target_id, payload, source, correlation_id, occurred_at, contact_id)
SELECT %(company)s, v.type, '', v.payload::jsonb, '', v.correlation_id, s.sent_at + v.after, s.contact_id
FROM (SELECT m.contact_id, m.correlation_id, m.sent_at, random() AS opened, random() AS clicked, random() AS booked
      FROM engage_message AS m WHERE m.company_id = %(company)s) AS s
CROSS JOIN LATERAL (VALUES
    ('notification_opened', s.opened < 0.6, interval '10 minutes', '{}', s.correlation_id),
    ('message_clicked', s.clicked < 0.2, interval '30 minutes', '{}', s.correlation_id),
    ('booking_created', s.clicked < 0.2 AND s.booked < 0.3, interval '2 hours', '{"amount": 1500}', NULL::uuid)
) AS v (type, kept, after, payload, correlation_id)
WHERE v.kept
"""
AI_SESSIONS_FILL = """
INSERT INTO engage_aisession (company_id, agent_type, purpose, prompt_messages, model, response_text, final_text,
                              tokens_in, tokens_out, latency_ms, outcome, error, created_at, safety)
SELECT %(company)s, 'sales', 'reply', '[]', '', '', '', 300, 80, 100 + floor(random() * 2900)::int,
       (ARRAY['ok', 'ok', 'ok', 'fallback', 'rejected'])[1 + floor(random() * 5)::int], '',
       %(end)s - random() * %(days)s * interval '1 day', '{"reasons": [{"code": "banned_phrase"}]}'
FROM generate_series(1, %(n)s) AS g
"""
LEADS_FILL = """
INSERT INTO crm_lead (company_id, contact_id, pipeline_id, stage_id, status, source, channel, summary, score,
                      created_at, updated_at, is_ai_paused, ad_click_id, ad_headline, ad_referral, ad_source_id, ad_url,
                      external_id)
SELECT %(company)s, s.contact, %(pipeline)s, s.stage, 'open', s.source, 'whatsapp', '', 0, s.at, s.at, false, '', '',
       '{}', '', '', ''
FROM (SELECT %(first_contact)s + floor(random() * %(contacts)s)::bigint AS contact,
             (%(stages)s::bigint[])[1 + floor(random() * cardinality(%(stages)s::bigint[]))::int] AS stage,
             (ARRAY['ad', 'website', 'whatsapp'])[1 + floor(random() * 3)::int] AS source,
             %(end)s - random() * %(days)s * interval '1 day' AS at
      FROM generate_series(1, %(n)s) AS g) AS s
"""
BOOKINGS_FILL = """
INSERT INTO crm_booking (company_id, customer_id, worker_id, service_id, status, scheduled_at, created_at, updated_at,
                         cancellation_reason, cancelled_by, external_id, zone)
SELECT %(company)s, s.customer, s.worker, s.service, 'completed', s.at, s.at, s.at, '', '', '', s.zone
FROM (SELECT %(first_customer)s + floor(random() * %(customers)s)::bigint AS customer,
             (%(workers)s::bigint[])[1 + floor(random() * cardinality(%(workers)s::bigint[]))::int] AS worker,
             (%(services)s::bigint[])[1 + floor(random() * 5)::int] AS service,
             (ARRAY['Dhanmondi', 'Gulshan', 'Mirpur', 'Uttara', 'Banani'])[1 + floor(random() * 5)::int] AS zone,
             %(end)s - random() * %(days)s * interval '1 day' AS at
      FROM generate_series(1, %(n)s) AS g) AS s
"""
PUNCTUALITY_FILL = """
INSERT INTO coaching_bookingpunctuality (booking_id, company_id, worker_id, scheduled_at, local_date, outcome,
                                         minutes_late, is_excused, excused_reason, computed_at)
SELECT b.id, b.company_id, b.worker_id, b.scheduled_at, ((b.scheduled_at AT TIME ZONE 'UTC') + interval '6 hours')::date,
       (ARRAY['on_time', 'on_time', 'late'])[1 + floor(random() * 3)::int], floor(random() * 30)::int, false, '',
       %(end)s
FROM crm_booking AS b WHERE b.company_id = %(company)s
"""


def fill(*, slug: str = SLUG, days: int = DAYS, messages_n: int | None = None, bookings_n: int | None = None,
         customers_n: int | None = None) -> tuple:
    from django.db import connection

    from crm.models import Company, Contact, Customer, Pipeline, Service, Stage, Worker
    from engage.api import Campaign
    from engage.campaigns.models import CampaignRun
    from engage.prompts.models import PromptTemplateVersion

    company = Company.objects.filter(slug=slug).first()
    if company is not None:
        return company, None
    started = time.perf_counter()
    company = Company.objects.create(name=f"Bench {slug}", slug=slug)
    end = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    n_customers = customers_n if customers_n is not None else int(FULL["customers"] * SCALE)
    n_messages = messages_n if messages_n is not None else int(FULL["messages"] * SCALE)
    n_bookings = bookings_n if bookings_n is not None else int(FULL["bookings"] * SCALE)
    prefix = "9" if slug != SLUG else "1"
    services = [Service.objects.create(company=company, name=f"S{n}", category=f"cat{n % 5}",
                                       base_price=Decimal(1000)) for n in range(5)]
    pipeline = Pipeline.objects.create(company=company, name="Sales")
    stages = [Stage.objects.create(pipeline=pipeline, name=name, order=order, kind=kind)
              for order, (name, kind) in enumerate(Pipeline.DEFAULT_STAGES, start=1)]
    campaigns = [Campaign.objects.create(company=company, name=f"K{n}", service=services[n % 5]) for n in range(10)]
    runs = [CampaignRun.objects.create(company=company, campaign=campaign) for campaign in campaigns]
    versions = list(PromptTemplateVersion.objects.filter(template__company=company).values_list("pk", flat=True)[:12])
    params = {"company": company.pk, "end": end, "days": days, "pipeline": pipeline.pk,
              "stages": [stage.pk for stage in stages], "services": [service.pk for service in services],
              "campaigns": [campaign.pk for campaign in campaigns], "runs": [run.pk for run in runs],
              "versions": versions, "contacts": n_customers, "customers": n_customers}

    def run(name: str, sql: str, **extra) -> None:
        step = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(sql, {**params, **extra})
            print(f"    {name}: {cursor.rowcount:,} rows in {time.perf_counter() - step:.0f} s", flush=True)

    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.21)")
    run("contacts", CONTACTS_FILL, letter="C", prefix=prefix, n=n_customers)
    run("customers", CUSTOMERS_FILL)
    params["first_contact"] = Contact.objects.filter(company=company).order_by("pk").values_list("pk", flat=True)[0]
    params["first_customer"] = Customer.objects.filter(company=company).order_by("pk").values_list("pk", flat=True)[0]
    worker_contacts = Contact.objects.bulk_create(
        [Contact(company=company, name=f"W{n}", phone=f"+880{int(prefix) + 1}{n:09d}")
         for n in range(max(50, n_customers // 100))], batch_size=5000)
    workers = Worker.objects.bulk_create([Worker(company=company, contact=contact) for contact in worker_contacts],
                                         batch_size=5000)
    run("messages", MESSAGES_FILL, n=n_messages)
    run("campaign recipients", RECIPIENTS_FILL)
    run("events", EVENTS_FILL)
    run("AI sessions", AI_SESSIONS_FILL, n=n_messages // 2)
    run("leads", LEADS_FILL, n=n_customers)
    run("bookings", BOOKINGS_FILL, n=n_bookings, workers=[worker.pk for worker in workers])
    run("punctuality", PUNCTUALITY_FILL)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return company, time.perf_counter() - started


class Clock:
    """Wall time, this process's CPU and the PostgreSQL backends' CPU (default and reports aliases, when on this
    machine) of one step: the CPU figures hold whatever the other engineers' load does to the wall clock."""

    def __enter__(self) -> Clock:
        self.wall, self.cpu, self.db = time.perf_counter(), time.process_time(), _db_cpu()
        return self

    def __exit__(self, *_) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu
        db = _db_cpu()
        self.db = db - self.db if db is not None and self.db is not None else None

    def note(self) -> str:
        db = f", PostgreSQL {self.db:.2f} s CPU" if self.db is not None else ""
        return f"Python {self.cpu:.2f} s CPU{db}, load {os.getloadavg()[0]:.1f}"


def _db_cpu() -> float | None:
    from django.db import connections

    from bench.coaching import backend_cpu_seconds

    seen, total = set(), 0.0
    for alias in ("default", "reports"):
        connection = connections[alias]
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        if pid in seen:
            continue
        seen.add(pid)
        cpu = backend_cpu_seconds(connection)
        if cpu is None:
            return None
        total += cpu
    return total


def main() -> list[dict]:
    setup()
    from django.core.cache import cache

    from reports import selectors
    from reports.rollups.services import rollups_backfill, rollups_refresh_recent

    company, filled = fill()
    print(f"  filled in {filled:.0f} s" if filled else "  (already filled)", flush=True)
    factor = 1 / SCALE
    with Clock() as backfill:
        rollups_backfill(company=company)
    print(f"  backfill {backfill.wall:.1f} s ({backfill.note()})", flush=True)
    with Clock() as tick:
        rollups_refresh_recent(company=company)
    print(f"  tick {tick.wall:.2f} s ({tick.note()})", flush=True)
    # A tick at the full scale's density: 3 days of 10M bookings / 1M messages a year, 1M customers' daily leads.
    dense, filled_dense = fill(slug=f"{SLUG}-dense", days=3, messages_n=FULL["messages"] * 3 // 365,
                               bookings_n=FULL["bookings"] * 3 // 365, customers_n=FULL["customers"] * 3 // 365)
    print(f"  dense filled in {filled_dense:.0f} s" if filled_dense else "  (dense already filled)", flush=True)
    rollups_refresh_recent(company=dense)  # warm
    dense_ticks = []
    for _ in range(3):
        with Clock() as clock:
            rollups_refresh_recent(company=dense)
        dense_ticks.append(clock)
    dense_tick = sorted(dense_ticks, key=lambda clock: clock.wall)[1]
    timings = []
    with Clock() as reads:
        for card in selectors.CARDS:
            for period in selectors.PERIODS:
                for _ in range(5):
                    cache.clear()
                    started = time.perf_counter()
                    selectors.card(company=company, card=card, period=period)
                    timings.append((time.perf_counter() - started) * 1000)
        for dimension in selectors.DIMENSIONS["engagement"]:
            for _ in range(3):
                cache.clear()
                started = time.perf_counter()
                selectors.breakdown(company=company, card="engagement", dimension=dimension, period="90d")
                timings.append((time.perf_counter() - started) * 1000)
    p95 = statistics.quantiles(timings, n=20)[18]
    size = (f"{int(FULL['messages'] * SCALE):,} messages, {int(FULL['bookings'] * SCALE):,} bookings, "
            f"{int(FULL['customers'] * SCALE):,} customers over {DAYS} days")
    rows = [
        {"figure": f"dashboard card p95, cold cache (5 cards x 4 periods + 5 breakdowns; {size})", "value": p95,
         "unit": "ms", "ceiling": 300, "note": f"rollup reads; all {len(timings)} reads: {reads.note()}"},
        {"figure": "rollup tick at full density (3 days of 10M bookings and 1M messages a year: "
                   f"{FULL['bookings'] * 3 // 365:,} bookings, {FULL['messages'] * 3 // 365:,} messages), median of 3",
         "value": dense_tick.wall, "unit": "s", "ceiling": 5, "note": f"measured; {dense_tick.note()}"},
        {"figure": f"rollup tick, last 3 local days ({size})", "value": tick.wall, "unit": "s", "ceiling": 5,
         "note": tick.note()},
    ]
    if SCALE >= 1:
        return [*rows, {"figure": f"full backfill of the year ({size})", "value": backfill.wall, "unit": "s",
                        "ceiling": 300, "note": f"measured at full size; {backfill.note()}"}]
    return [
        *rows,
        {"figure": f"full backfill of the year ({size})", "value": backfill.wall, "unit": "s", "ceiling": 300 * SCALE,
         "note": f"ceiling 300 s scaled by {SCALE}; linear extrapolation to full size: {backfill.wall * factor:.0f} s,"
                 f" pessimistic: at this sparse size a rollup row holds ~4 raw rows; {backfill.note()}"},
        {"figure": "full backfill of a year at full size, extrapolated from the full-density 3-day refresh x 365/3",
         "value": dense_tick.wall * 365 / 3, "unit": "s", "ceiling": 300,
         "note": "optimistic: assumes no slowdown from bigger tables; BENCH_REPORTS_SCALE=1 measures it"},
    ]


if __name__ == "__main__":
    for row in main():
        print(row)
