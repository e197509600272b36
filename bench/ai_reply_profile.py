"""Where one AI reply job's time goes: SQL statements and Python CPU of the `ai_engage` handler, end to end.

    .venv/bin/python bench/ai_reply_profile.py            # the breakdown (queries by kind, CPU by part)
    .venv/bin/python bench/ai_reply_profile.py --cprofile # and the top functions by cumulative CPU

Runs in this process, one job after another (no Celery), against the test suite's fake model
answering at once (its HTTP server in threads of this process: the worker's CPU is this thread's,
time.thread_time). A pool of BENCH_PROFILE_POOL (20) connections, as the io worker has
(DATABASE_POOL_MAX_SIZE: the connection goes back to the pool while the model answers). The
statements are counted by an execute wrapper, not Django's debug cursor (whose SQL formatting cost
~2 ms a job that the worker does not pay). Its own PostgreSQL database (BENCH_PROFILE_DATABASE_URL, default
`shokti_bench_ai_profile`). BENCH_PROFILE_REPLIES (200) inbound messages, each from its own lead,
are captured with dispatch held, then each `ai_engage` job runs through `job_execute` (claim,
lease, handler, completion), as the io worker runs it. What the bench (`bench/ai_replies.py`)
measures at load is this CPU per reply, shared by the worker's threads under one GIL.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import os
import pstats
import re
import statistics
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/shokti_bench_ai_profile"
REPLIES = int(os.environ.get("BENCH_PROFILE_REPLIES", "200"))
POOL = os.environ.get("BENCH_PROFILE_POOL", "20")
AI_TEXT = "Yes, the deep-cleaning package is available on Friday. Shall I book 10:00 for you?"


def _database_create(url: str) -> None:
    import psycopg

    match = re.match(r"^(?P<server>.+)/(?P<name>[^/?]+)(?P<query>\?.*)?$", url)
    with psycopg.connect(f"{match['server']}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{match["name"]}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{match["name"]}"')


def _kind(sql: str) -> str:
    """A statement's verb and main table: `SELECT engage_message`, `INSERT crm_event` ..."""
    verb = sql.lstrip().split(None, 1)[0].upper()
    if verb == "WITH":
        verb = "WITH(" + (re.search(r"\b(UPDATE|INSERT|DELETE)\b", sql) or re.search("SELECT", sql))[0] + ")"
    table = re.search(r'(?:FROM|INTO|UPDATE)\s+"?([a-z_]+)"?', sql)
    return f"{verb} {table[1] if table else '?'}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cprofile", action="store_true")
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = os.environ.get("BENCH_PROFILE_DATABASE_URL", DEFAULT_URL)
    os.environ.pop("REDIS_URL", None)
    os.environ["CELERY_BROKER_URL"] = "memory://"
    os.environ["DATABASE_POOL_MAX_SIZE"] = POOL
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    _database_create(os.environ["DATABASE_URL"])
    sys.path.insert(0, str(BASE_DIR))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shokti.settings")
    import django

    django.setup()
    import logging

    from django.core.management import call_command
    from django.db import connection, transaction
    from django.test.utils import override_settings

    from crm.models import Company
    from engage.conversations.inbound import inbound_message_capture
    from engage.ledger.models import Job
    from engage.ledger.services import job_dispatch_held, job_execute
    from shokti.testing.fake_openai import FakeOpenAI

    logging.disable(logging.WARNING)
    call_command("migrate", verbosity=0)
    company = Company.objects.create(name="Bench replies", slug="bench-replies")
    fake = FakeOpenAI()
    fake.reply(AI_TEXT)
    fake.requests = type("Forget", (list,), {"append": lambda self, item: None})()
    fake.start()
    with override_settings(OPENAI_API_KEY="bench", OPENAI_BASE_URL=fake.base_url):
        with job_dispatch_held(), transaction.atomic():
            for n in range(REPLIES + 1):
                inbound_message_capture(
                    company=company, channel="console", text="Is the deep-cleaning package available on Friday?",
                    phone=f"+88017{n + 1:08d}", email="", contact_name=f"Lead {n}", source="bench",
                    external_id=f"bench-{n}",
                )
        job_ids = list(Job.objects.filter(task_name="ai_engage").order_by("id").values_list("id", flat=True))
        job_execute(job_id=job_ids[0], worker="profile")  # warm-up: SDK client, caches, imports
        job_ids = job_ids[1:]
        kinds: collections.Counter[str] = collections.Counter()
        profiler = cProfile.Profile(time.thread_time) if args.cprofile else None  # CPU, this thread
        cpu_started, wall_started, thread_started = time.process_time(), time.perf_counter(), time.thread_time()
        statements: list[str] = []
        per_job: list[float] = []

        def counted(execute, sql, params, many, context):
            statements.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(counted):
            if profiler:
                profiler.enable()
            for job_id in job_ids:
                job_started = time.thread_time()
                assert job_execute(job_id=job_id, worker="profile") == "completed"
                per_job.append(time.thread_time() - job_started)
            if profiler:
                profiler.disable()
        cpu, wall = time.process_time() - cpu_started, time.perf_counter() - wall_started
        thread_cpu = time.thread_time() - thread_started
        for sql in statements:
            kinds[_kind(sql)] += 1
        # The fake model's own CPU (its HTTP server is a thread of this process): the same calls alone.
        import openai

        client = openai.OpenAI(base_url=fake.base_url, api_key="bench")
        model_started = time.process_time()
        for _ in job_ids:
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
        model_cpu = time.process_time() - model_started
        fake.stop()
    count = len(job_ids)
    print(f"{count} ai_engage jobs: {len(statements) / count:.1f} SQL statements a job, "
          f"CPU {cpu / count * 1000:.1f} ms a job (of which the fake model and its HTTP round trip "
          f"~{model_cpu / count * 1000:.1f} ms), wall {wall / count * 1000:.1f} ms a job")
    print(f"the worker's own CPU (this thread alone, without the fake model's server threads): "
          f"{thread_cpu / count * 1000:.2f} ms a job, median {statistics.median(per_job) * 1000:.2f} ms")
    for kind, number in kinds.most_common():
        print(f"  {number / count:5.2f}  {kind}")
    if profiler:
        stats = pstats.Stats(profiler)
        stats.sort_stats("cumulative").print_stats(60)
        stats.sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    main()
