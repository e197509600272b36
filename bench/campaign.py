"""SmartEngage campaign throughput: messages per second end to end, and a dry run over a large eligible set.

    .venv/bin/python bench/campaign.py          # measure and write the `campaign` section of docs/benchmarks.md

Runs in a child process bound to its own PostgreSQL database (`shokti_bench_campaign` by default,
BENCH_CAMPAIGN_DATABASE_URL) and Redis db (BENCH_CAMPAIGN_REDIS_URL, purged afterwards: the broker
copies of the send jobs, which a worker would find done). The model is the test suite's local
OpenAI-compatible server (the real `openai` SDK over HTTP on 127.0.0.1), not the internet, run in
a child process of its own like a remote model.

1. End to end, one process (what one worker process does with one run): the fake model answers
   every call after 1 s. A real (not dry) run of BENCH_CAMPAIGN_SENDS due customers on the console
   channel: segment batch, consent/caps, template, concurrent generation (AI_BULK_MAX_CONCURRENCY
   calls in flight, the next batch's calls overlapping this batch's sends), safety filter, deep
   link, per batch one transaction with the atomic cap reservation + intents + ledger jobs + queued
   messages, then each send job, message/event/recipient records, metrics. Figure: seconds per 100
   messages (ceiling 1 s = the aim of 100 messages/s).
2. Database round trips per sent message, one send at a time (independent of the machine's load).
3. Dry run over BENCH_CAMPAIGN_DRY customers with the model answering at once: everything but the
   send (prompt, link, recipient rows; the model and AISession for the dry-run sample of each
   batch, the approved fallback for the others). Figure: ms per 1,000 customers (ceiling 500 ms =
   the aim of 2,000 customers/s).
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
NAME = "campaign"
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/shokti_bench_campaign"
DEFAULT_REDIS = "redis://127.0.0.1:6379/8"
SENDS = int(os.environ.get("BENCH_CAMPAIGN_SENDS", "1000"))
DRY = int(os.environ.get("BENCH_CAMPAIGN_DRY", "20000"))
CONCURRENCY = int(os.environ.get("BENCH_CAMPAIGN_CONCURRENCY", "250"))
BATCH = int(os.environ.get("BENCH_CAMPAIGN_BATCH", "500"))
MODEL_LATENCY_SECONDS = 1.0
CEILING_SECONDS_PER_100_MESSAGES = 1.0
CEILING_MS_PER_1000_DRY = 500.0
QUERY_SENDS = 100
CEILING_QUERIES_PER_MESSAGE = 25.0
AI_TEXT = "প্রিয় গ্রাহক, আপনার সার্ভিসের সময় হয়েছে। এখনই বুক করুন: [BOOKING_LINK]"


def main() -> list[dict]:
    """Run the benchmark in a child process bound to its own database; returns the figures."""
    with tempfile.NamedTemporaryFile(suffix=".json") as output:
        env = {
            **os.environ,
            "DATABASE_URL": os.environ.get("BENCH_CAMPAIGN_DATABASE_URL", DEFAULT_URL),
            "REDIS_URL": os.environ.get("BENCH_CAMPAIGN_REDIS_URL", DEFAULT_REDIS),
            "DJANGO_SETTINGS_MODULE": "shokti.settings",
            "AI_BULK_MAX_CONCURRENCY": str(CONCURRENCY),
            "BENCH_CAMPAIGN_OUTPUT": output.name,
        }
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        subprocess.run([sys.executable, __file__], env=env, cwd=BASE_DIR, check=True)
        return json.loads(Path(output.name).read_text())


def _database_create(url: str) -> None:
    import psycopg

    match = re.match(r"^(?P<server>.+)/(?P<name>[^/?]+)(?P<query>\?.*)?$", url)
    with psycopg.connect(f"{match['server']}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{match["name"]}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{match["name"]}"')


def _company(slug: str, customers: int):
    """A company with `customers` due customers (last booking 22 days ago, consented), templates, whole-day window."""
    from django.core.cache import cache
    from django.db import connection

    from crm.models import Company
    from engage.policy.services import policy_get_or_create
    from engage.prompts.services import templates_seed_defaults

    company = Company.objects.create(name=f"Bench {slug}", slug=slug)
    templates_seed_defaults(company=company)
    policy = policy_get_or_create(company=company)
    policy.presets.filter(name="default").update(send_window_start_hour=0, send_window_end_hour=24, batch_size=BATCH)
    cache.clear()
    last_booking_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=22)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO crm_contact (company_id, name, phone, email, locale, timezone, is_email_consented,"
            " is_sms_consented, is_whatsapp_consented, created_at, updated_at)"
            " SELECT %s, 'গ্রাহক ' || n, '+88017' || lpad(n::text, 8, '0'), 'c' || n || '@bench.test', 'bn',"
            " 'Asia/Dhaka', true, true, true, now(), now() FROM generate_series(1, %s) AS n",
            [company.pk, customers],
        )
        cursor.execute(
            "INSERT INTO crm_customer (company_id, contact_id, last_booking_at, created_at)"
            " SELECT company_id, id, %s, now() FROM crm_contact WHERE company_id = %s",
            [last_booking_at, company.pk],
        )
        cursor.execute("ANALYZE")
    return company


def _sdk_warm(*, company) -> None:
    """One model call before the timing: a worker process makes its SDK client (one per endpoint) once.

    Building the client costs ~65 ms of CPU (loading the CA bundle): a cold-start cost of the
    process, not of the run. (Before `_sdk_client` took a lock, the first batch's hundreds of
    threads each built their own: 91 in one profiled run.)
    """
    from engage.ai.client import ai_generate

    ai_generate(company=company, agent_type="smartengage", purpose="warm-up", message_type=None,
                messages=[{"role": "user", "content": "warm-up"}])


def _measure_run(*, company, is_dry_run: bool) -> tuple[float, dict]:
    """A campaign's run: (wall seconds, its answer with `cpu_seconds`: this process's CPU, every thread)."""
    from engage.campaigns.models import Campaign
    from engage.campaigns.runner import campaign_run_execute
    from engage.campaigns.runs import campaign_run_trigger

    _sdk_warm(company=company)
    campaign = Campaign.objects.create(company=company, name="Bench", channel="console")
    run = campaign_run_trigger(campaign=campaign, is_dry_run=is_dry_run)
    started, cpu_started = time.perf_counter(), time.process_time()
    result = campaign_run_execute(run_id=run.pk)
    return time.perf_counter() - started, {**result, "cpu_seconds": time.process_time() - cpu_started}


class _ModelProcess:
    """The test suite's fake OpenAI server in a child process (stopped by its own PID)."""

    def __init__(self, process: subprocess.Popen, base_url: str) -> None:
        self.process, self.base_url = process, base_url

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


# A listen backlog of 5 (http.server's default) drops the SYNs of hundreds of connections opened at
# once, and each dropped one costs the client a 1 s SYN retry: a remote model's server would not.
MODEL_SERVER = """
import sys, time
from http.server import ThreadingHTTPServer
ThreadingHTTPServer.request_queue_size = 1024
from shokti.testing.fake_openai import FakeOpenAI
fake = FakeOpenAI()
fake.reply(sys.argv[2])
fake.delay = float(sys.argv[1])
fake.requests = type("Forget", (list,), {"append": lambda self, item: None})()
fake.start()
print(fake.base_url, flush=True)
while True:
    time.sleep(3600)
"""


def _model_process(*, delay: float) -> _ModelProcess:
    process = subprocess.Popen(
        [sys.executable, "-c", MODEL_SERVER, str(delay), AI_TEXT], cwd=BASE_DIR, stdout=subprocess.PIPE, text=True
    )
    return _ModelProcess(process, process.stdout.readline().strip())


def run() -> None:
    import logging

    import django

    _database_create(os.environ["DATABASE_URL"])
    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from shokti.celery import app as celery_app

    logging.getLogger("shokti.console_channel").setLevel(logging.WARNING)
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    call_command("migrate", verbosity=0)
    settings.OPENAI_API_KEY = "bench"
    # The model runs in its own process, as a remote model would: its HTTP work does not share our GIL.
    slow = _model_process(delay=MODEL_LATENCY_SECONDS)
    fast = _model_process(delay=0.0)
    try:
        # 1. end to end, model latency 1 s
        settings.OPENAI_BASE_URL = slow.base_url
        # A worker process that has run a campaign before: its bulk pool's threads are started (a
        # process's first run also pays ~1-2 s of thread starts; measured separately, docs/benchmarks.md).
        _measure_run(company=_company("bench-warm-up", CONCURRENCY), is_dry_run=False)
        send_seconds, sent = _measure_run(company=_company("bench-sends", SENDS), is_dry_run=False)
        rate = sent["sent"] / send_seconds
        cpu_per_message = sent["cpu_seconds"] * 1000 / max(1, sent["sent"])
        print(f"end to end: {sent['sent']:,} sent ({sent['failed']} failed, {sent['skipped']} skipped) in "
              f"{send_seconds:.1f} s = {rate:.0f} messages/s; process CPU {cpu_per_message:.2f} ms a message")
        # 2. round trips per sent message, one send at a time on this connection (load-independent)
        settings.OPENAI_BASE_URL = fast.base_url
        settings.SMARTENGAGE_SEND_CONCURRENCY = 1
        company = _company("bench-queries", QUERY_SENDS)  # its setup is not the run's
        statements = collections.Counter()

        def count_statement(execute, sql, params, many, context):
            statements[" ".join(sql.split())[:60]] += 1
            return execute(sql, params, many, context)

        with connection.execute_wrapper(count_statement):
            _, counted = _measure_run(company=company, is_dry_run=False)
        queries_per_message = statements.total() / max(1, counted["sent"])
        for statement, times in statements.most_common(8):
            print(f"  {times / max(1, counted['sent']):.2f} a message: {statement}")
        print(f"{queries_per_message:.1f} queries per sent message over {counted['sent']} sends")
        # 3. dry run, model at once
        dry_seconds, dry = _measure_run(company=_company("bench-dry", DRY), is_dry_run=True)
        dry_rate = dry["rendered"] / dry_seconds
        cpu_per_customer = dry["cpu_seconds"] * 1000 / max(1, dry["rendered"])
        print(f"dry run: {dry['rendered']:,} rendered in {dry_seconds:.1f} s = {dry_rate:.0f} customers/s; "
              f"process CPU {cpu_per_customer:.3f} ms a customer")
    finally:
        for process in (slow, fast):
            process.stop()
        celery_app.control.purge()
    load_average = "/".join(f"{value:.1f}" for value in os.getloadavg())
    figures = [
        {
            "figure": f"end to end, one process, model latency {MODEL_LATENCY_SECONDS:.0f} s: time per 100 messages",
            "value": 100 / rate if rate else float("inf"),
            "unit": "s",
            "ceiling": CEILING_SECONDS_PER_100_MESSAGES,
            "note": f"{rate:.0f} messages/s over {sent['sent']:,} sends, process CPU {cpu_per_message:.1f} ms a "
                    f"message; {CONCURRENCY} model calls in flight, batches of {BATCH}; load average {load_average}",
        },
        {
            "figure": "database round trips per sent message (whole run / sends, one send at a time)",
            "value": queries_per_message,
            "unit": "queries",
            "ceiling": CEILING_QUERIES_PER_MESSAGE,
            "note": f"{QUERY_SENDS} sends; segment, intent, ledger job, send, records, counts",
        },
        {
            "figure": "dry run, model answering at once: time per 1,000 customers",
            "value": 1_000_000 / dry_rate if dry_rate else float("inf"),
            "unit": "ms",
            "ceiling": CEILING_MS_PER_1000_DRY,
            "note": f"{dry_rate:,.0f} customers/s over {dry['rendered']:,} eligible, process CPU "
                    f"{cpu_per_customer:.2f} ms a customer",
        },
    ]
    output = os.environ.get("BENCH_CAMPAIGN_OUTPUT")
    if output:
        Path(output).write_text(json.dumps(figures))


def _write_section(figures: list[dict]) -> None:
    """Standalone runs write this module's table the way bench/run_all.py does."""
    sys.path.insert(0, str(BASE_DIR / "bench"))
    import run_all

    run_all.section_write(NAME, figures, 0.0)


if __name__ == "__main__":
    sys.path.insert(0, str(BASE_DIR))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shokti.settings")
    if os.environ.get("BENCH_CAMPAIGN_OUTPUT"):
        run()
    else:
        _write_section(main())
