"""SmartEngage segmentation at 1M customers: the eligibility query against a hand-written SQL lower bound.

    .venv/bin/python bench/segmentation.py                 # fill (once) and measure, write docs/benchmarks.md
    BENCH_SEGMENTATION_DATABASE_URL=postgres://... BENCH_SEGMENTATION_CUSTOMERS=1000000 .venv/bin/python bench/segmentation.py

Works in its own database (created if missing, `shokti_bench_segmentation` by default), filled once by
`manage.py seed_demo --now 2026-11-22 --customers N --bookings-per-customer 10` (teammate C's fast COPY
loader), plus SQL `INSERT ... SELECT` of outbound messages for one customer in five over the last ten
days (one in ten of them CoachNova), so the cap and "already reminded" subqueries have rows to find;
then `VACUUM ANALYZE`. The clock of the measurement is 2026-11-23 09:00 UTC (the daily campaign's
hour; 15:00 in Dhaka), default preset (21 days, +7 day window, 9-18), email channel.

Figures (warm: one unmeasured run first, then RUNS timed runs through Django's connection, each
planned for its own parameters as a run's batches are: `engage.campaigns.segmentation.custom_plans`):
- one keyset batch of 100 eligible customers (`engage.campaigns.segmentation.customer_segment`), p50/p95;
- the same batch as a hand-written lower bound: only the cadence range, consent and address, no
  caps, no cycle, no time-zone window (what reading the candidates costs at all);
- counting the whole eligible set, and the lower bound's count;
- a dry run of a campaign over the whole eligible set (`campaign_run_execute`, the benchmark's clock):
  segment batches, skip records, context, prompt, deep link, the fallback's safety judgement and a
  recipient row for every customer. No model key is set here, so nobody waits for a model (its
  latency is bench/campaign.py's subject); the lower bound is the hand-written count above.
"""

from __future__ import annotations

import datetime as dt
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
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/shokti_bench_segmentation"
CUSTOMERS = int(os.environ.get("BENCH_SEGMENTATION_CUSTOMERS", "1000000"))
SEED_DAY = "2026-11-22"
NOW = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
RUNS = 30
BATCH = 100
NAME = "segmentation"
CEILING_BATCH_MS = 200.0
CEILING_FULL_MS = 10000.0
CEILING_DRY_RUN_MS_PER_1000 = 500.0  # the aim: a dry run of at least 2,000 customers/s

LOWER_BOUND_BATCH = """
SELECT cu.id, cu.contact_id
FROM crm_customer AS cu JOIN crm_contact AS c ON c.id = cu.contact_id
WHERE cu.company_id = %(company)s AND cu.id > 0
  AND cu.last_booking_at <= %(upper)s AND cu.last_booking_at > %(lower)s
  AND c.is_email_consented AND c.email <> ''
ORDER BY cu.id LIMIT %(limit)s
"""
LOWER_BOUND_COUNT = """
SELECT count(*)
FROM crm_customer AS cu JOIN crm_contact AS c ON c.id = cu.contact_id
WHERE cu.company_id = %(company)s
  AND cu.last_booking_at <= %(upper)s AND cu.last_booking_at > %(lower)s
  AND c.is_email_consented AND c.email <> ''
"""
MESSAGES_FILL = """
INSERT INTO engage_message (company_id, contact_id, direction, channel, agent_type, message_type, subject, body,
    status, provider_message_id, provider_response, error, external_id, created_at, updated_at)
SELECT cu.company_id, cu.contact_id, 'outbound', 'email',
    CASE WHEN cu.id %% 50 = 0 THEN 'coachnova' ELSE 'smartengage' END, 'reminder', '', 'bench reminder',
    CASE WHEN cu.id %% 35 = 0 THEN 'failed' ELSE 'sent' END, '', '{}', '', '',
    %(now)s - ((cu.id %% 240) || ' hours')::interval, %(now)s
FROM crm_customer AS cu
WHERE cu.company_id = %(company)s AND cu.id %% 5 = 0
"""


def main() -> list[dict]:
    """Run the benchmark in a child process bound to its own database; returns the figures."""
    url = os.environ.get("BENCH_SEGMENTATION_DATABASE_URL", DEFAULT_URL)
    with tempfile.NamedTemporaryFile(suffix=".json") as output:
        env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "shokti.settings",
               "BENCH_SEGMENTATION_OUTPUT": output.name}
        # Filling 1M customers rebuilds indexes in statements longer than the 30 s default timeout.
        env.setdefault("DATABASE_STATEMENT_TIMEOUT_MS", "0")
        subprocess.run([sys.executable, __file__], env=env, cwd=BASE_DIR, check=True)
        return json.loads(Path(output.name).read_text())


def _database_create(url: str) -> None:
    import psycopg

    match = re.match(r"^(?P<server>.+)/(?P<name>[^/?]+)(?P<query>\?.*)?$", url)
    with psycopg.connect(f"{match['server']}/postgres", autocommit=True) as connection:
        if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [match["name"]]).fetchone():
            connection.execute(f'CREATE DATABASE "{match["name"]}"')


def _timed(function, runs: int = RUNS) -> tuple[float, float, object]:
    result = function()  # warm: plans, buffers
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        result = function()
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return statistics.median(timings), timings[min(len(timings) - 1, round(0.95 * len(timings)) - 1)], result


def _fill() -> int:
    from django.core.management import call_command
    from django.db import connection

    from crm import demo
    from crm.models import Company, Customer
    from engage.messaging.models import Message

    company = Company.objects.filter(slug=demo.HOME_SERVICES_SLUG).first()
    if company is None or Customer.objects.filter(company=company).count() < CUSTOMERS:
        started = time.perf_counter()
        call_command(
            "seed_demo", "--now", SEED_DAY, "--customers", str(CUSTOMERS), "--bookings-per-customer", "10", verbosity=0
        )
        print(f"seed_demo --customers {CUSTOMERS:,}: {time.perf_counter() - started:.0f} s")
        company = Company.objects.get(slug=demo.HOME_SERVICES_SLUG)
    if not Message.objects.filter(company=company, body="bench reminder").exists():
        with connection.cursor() as cursor:
            cursor.execute(MESSAGES_FILL, {"company": company.pk, "now": NOW})
            print(f"{cursor.rowcount:,} outbound messages added")
            cursor.execute("VACUUM ANALYZE")
    return company.pk


def run() -> None:
    import django

    _database_create(os.environ["DATABASE_URL"])
    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from crm.models import Company
    from engage.campaigns.segmentation import SegmentCriteria, custom_plans, customer_segment
    from engage.policy.services import policy_for

    call_command("migrate", verbosity=0)
    company = Company.objects.get(pk=_fill())
    preset = policy_for(company=company).preset("default")
    criteria = SegmentCriteria.from_preset(preset, channel="email")
    params = {
        "company": company.pk,
        "upper": NOW - dt.timedelta(days=criteria.cadence_days),
        "lower": NOW - dt.timedelta(days=criteria.cadence_days + criteria.window_days),
        "limit": BATCH,
    }

    # As a run reads them (customer_segment_batches): planned for their own parameters each time, never
    # the generic plan PostgreSQL may keep for a statement psycopg has prepared (30-130 ms a batch).
    def batch():
        with custom_plans():
            return [customer.pk for customer in customer_segment(company=company, criteria=criteria, now=NOW, limit=BATCH)]

    def full_count():
        with custom_plans():
            return customer_segment(company=company, criteria=criteria, now=NOW).count()

    def raw(sql):
        def query():
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall()
        return query

    batch_p50, batch_p95, batch_ids = _timed(batch)
    bound_p50, bound_p95, bound_rows = _timed(raw(LOWER_BOUND_BATCH))
    full_p50, full_p95, eligible = _timed(full_count, runs=10)
    bound_full_p50, bound_full_p95, candidates = _timed(raw(LOWER_BOUND_COUNT), runs=10)
    with connection.cursor() as cursor:
        sql, sql_params = customer_segment(company=company, criteria=criteria, now=NOW, limit=BATCH).query.sql_with_params()
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", sql_params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    print(plan)
    print(f"batch p50 {batch_p50:.1f} ms p95 {batch_p95:.1f} ms ({len(batch_ids)} rows); "
          f"lower bound p50 {bound_p50:.1f} p95 {bound_p95:.1f} ms ({len(bound_rows)} rows)")
    print(f"full count p50 {full_p50:.0f} ms p95 {full_p95:.0f} ms ({eligible:,} eligible); "
          f"lower bound p50 {bound_full_p50:.0f} p95 {bound_full_p95:.0f} ms ({candidates[0][0]:,} candidates)")
    figures = [
        {"figure": f"eligibility, one keyset batch of {BATCH}, p95", "value": batch_p95, "unit": "ms",
         "ceiling": CEILING_BATCH_MS,
         "note": f"p50 {batch_p50:.1f} ms; {batch_p95 / bound_p95:.1f}x the lower bound"},
        {"figure": f"lower bound: hand-written SQL batch of {BATCH} (range + consent only), p95", "value": bound_p95,
         "unit": "ms", "ceiling": CEILING_BATCH_MS, "note": f"p50 {bound_p50:.1f} ms"},
        {"figure": "eligibility, counting the whole eligible set, p95", "value": full_p95 / 1000, "unit": "s",
         "ceiling": CEILING_FULL_MS / 1000,
         "note": f"p50 {full_p50:.0f} ms; {eligible:,} eligible of {candidates[0][0]:,} candidates; "
                 f"{full_p95 / bound_full_p95:.1f}x the lower bound"},
        {"figure": "lower bound: hand-written SQL count of the candidates, p95", "value": bound_full_p95 / 1000,
         "unit": "s", "ceiling": CEILING_FULL_MS / 1000, "note": f"p50 {bound_full_p50:.0f} ms"},
    ]
    dry_seconds, dry = _dry_run(company=company)
    print(f"dry run over the whole eligible set: {dry['rendered']:,} rendered, {dry['skipped']:,} skipped "
          f"in {dry_seconds:.1f} s = {dry['rendered'] / dry_seconds:.0f} customers/s")
    figures.append({
        "figure": "dry run over the whole eligible set: time per 1,000 customers", "unit": "ms",
        "value": dry_seconds * 1000 / max(1, dry["rendered"]) * 1000, "ceiling": CEILING_DRY_RUN_MS_PER_1000,
        "note": f"{dry['rendered']:,} rendered in {dry_seconds:.1f} s, {dry['rendered'] / dry_seconds:,.0f} customers/s;"
                f" {dry['skipped']:,} left out recorded with their reasons; the lower bound reads the candidates"
                f" in {bound_full_p50 / 1000:.2f} s",
    })
    output = os.environ.get("BENCH_SEGMENTATION_OUTPUT")
    if output:
        Path(output).write_text(json.dumps(figures))


def _dry_run(*, company) -> tuple[float, dict]:
    """A dry run of an email campaign over the whole eligible set at NOW, in one slice, through the ledger's service."""
    from django.conf import settings
    from django.utils import timezone

    from engage.campaigns.models import Campaign, CampaignRecipient
    from engage.campaigns.runner import campaign_run_execute
    from engage.campaigns.runs import campaign_run_trigger

    settings.OPENAI_API_KEY = ""  # the approved fallback for everyone: no model to wait for
    settings.SMARTENGAGE_RUN_SLICE_SECONDS = 3600  # one slice: no continuation job for a worker to run
    campaign, _ = Campaign.objects.get_or_create(company=company, name="Bench dry run", defaults={"channel": "email"})
    CampaignRecipient.objects.filter(campaign=campaign).delete()  # the previous bench run's rows
    real_now = timezone.now
    timezone.now = lambda: NOW  # the benchmark's clock, for the segment and the send window alike
    try:
        run = campaign_run_trigger(campaign=campaign, is_dry_run=True)
        started = time.perf_counter()
        result = campaign_run_execute(run_id=run.pk)
        return time.perf_counter() - started, result
    finally:
        timezone.now = real_now


def _write_section(figures: list[dict], elapsed: float) -> None:
    """Standalone runs write this module's table the way bench/run_all.py does."""
    sys.path.insert(0, str(BASE_DIR / "bench"))
    import run_all

    run_all.section_write(NAME, figures, elapsed)


if __name__ == "__main__":
    sys.path.insert(0, str(BASE_DIR))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shokti.settings")
    if os.environ.get("BENCH_SEGMENTATION_OUTPUT"):
        run()
    else:
        started = time.perf_counter()
        figures = main()
        _write_section(figures, time.perf_counter() - started)
