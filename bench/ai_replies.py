"""AI replies at load: how many inbound messages one io worker process answers per second.

    .venv/bin/python bench/ai_replies.py        # measure and write the `ai_replies` section of docs/benchmarks.md

The worker is the Procfile's `io` worker: one Celery process, `--pool threads --concurrency
BENCH_AI_CONCURRENCY` (64), `-Q io`, a database connection pool of BENCH_AI_POOL (20) connections
(DATABASE_POOL_MAX_SIZE) that threads give back while they wait on the model. The model is the test
suite's OpenAI-compatible fake server in a process of its own, answering every call after 1 s (the
real `openai` SDK over HTTP on 127.0.0.1). Its own PostgreSQL database (`shokti_bench_ai_replies`,
BENCH_AI_DATABASE_URL) and Redis db (BENCH_AI_REDIS_URL, purged after).

BENCH_AI_REPLIES (1,000) inbound messages, each from its own lead on the console channel, are
captured in one transaction, so their `ai_engage` jobs reach the broker together at commit; the
clock runs from that commit until the last job is completed. Each job runs the whole reply:
conversation and knowledge base, the model, the safety filter, the send, the records, the follow-up
and summary jobs. Figure: seconds per 100 replies (ceiling 2 s = the aim of 50 replies/s).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
NAME = "ai_replies"
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/shokti_bench_ai_replies"
DEFAULT_REDIS = "redis://127.0.0.1:6379/7"
REPLIES = int(os.environ.get("BENCH_AI_REPLIES", "1000"))
CONCURRENCY = int(os.environ.get("BENCH_AI_CONCURRENCY", "64"))
POOL = int(os.environ.get("BENCH_AI_POOL", "20"))
MODEL_LATENCY_SECONDS = 1.0
CEILING_SECONDS_PER_100 = 2.0
AI_TEXT = "Yes, the deep-cleaning package is available on Friday. Shall I book 10:00 for you?"
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


def main() -> list[dict]:
    with tempfile.NamedTemporaryFile(suffix=".json") as output:
        env = {
            **os.environ,
            "DATABASE_URL": os.environ.get("BENCH_AI_DATABASE_URL", DEFAULT_URL),
            "REDIS_URL": os.environ.get("BENCH_AI_REDIS_URL", DEFAULT_REDIS),
            "DJANGO_SETTINGS_MODULE": "shokti.settings",
            "BENCH_AI_OUTPUT": output.name,
        }
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        env.pop("CELERY_BROKER_URL", None)
        subprocess.run([sys.executable, __file__], env=env, cwd=BASE_DIR, check=True)
        return json.loads(Path(output.name).read_text())


def _database_create(url: str) -> None:
    import psycopg

    match = re.match(r"^(?P<server>.+)/(?P<name>[^/?]+)(?P<query>\?.*)?$", url)
    with psycopg.connect(f"{match['server']}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{match["name"]}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{match["name"]}"')


def _model_process() -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-c", MODEL_SERVER, str(MODEL_LATENCY_SECONDS), AI_TEXT], cwd=BASE_DIR,
        stdout=subprocess.PIPE, text=True,
    )
    return process, process.stdout.readline().strip()


def _worker(*, model_url: str, log_path: Path) -> subprocess.Popen:
    env = {
        **os.environ, "OPENAI_API_KEY": "bench", "OPENAI_BASE_URL": model_url, "DATABASE_POOL_MAX_SIZE": str(POOL),
        "LOG_LEVEL": "WARNING",
    }
    command = [
        str(Path(sys.executable).parent / "celery"), "-A", "shokti", "worker", "--pool", "threads", "-c",
        str(CONCURRENCY), "-Q", "io", "-n", f"bench-io-{os.getpid()}@%h", "--without-gossip", "--without-mingle",
        "--loglevel", "WARNING",
    ]
    process = subprocess.Popen(command, env=env, cwd=BASE_DIR, stdout=log_path.open("w"), stderr=subprocess.STDOUT,
                               start_new_session=True)
    return process


def _cpu_seconds(pid: int) -> float:
    """The process's CPU time so far (user + system, all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run() -> None:
    import logging

    import django

    _database_create(os.environ["DATABASE_URL"])
    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    from crm.models import Company
    from engage.conversations.inbound import inbound_message_capture
    from engage.ledger.models import Job
    from shokti.celery import app as celery_app
    from shokti.liveness import workers_alive

    logging.getLogger("shokti.console_channel").setLevel(logging.WARNING)
    call_command("migrate", verbosity=0)
    celery_app.control.purge()
    company = Company.objects.create(name="Bench replies", slug="bench-replies")
    model, model_url = _model_process()
    log_path = Path(tempfile.gettempdir()) / f"bench-ai-replies-{os.getpid()}.log"
    worker = _worker(model_url=model_url, log_path=log_path)
    try:
        deadline = time.monotonic() + 60
        while not any("io" in alive["queues"] for alive in workers_alive()):
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the io worker did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        # A warm-up reply: the worker's first job builds its SDK client and fills its caches.
        inbound_message_capture(company=company, channel="console", text="warm-up", phone="+8801700000000",
                                email="", contact_name="Warm up", source="bench", external_id="warm-up")
        while Job.objects.filter(task_name="ai_engage").exclude(status="completed").exists():
            time.sleep(0.2)
        started_at = cpu_started = None

        def committed() -> None:
            nonlocal started_at, cpu_started
            started_at = time.perf_counter()
            cpu_started = _cpu_seconds(worker.pid)

        with transaction.atomic():
            transaction.on_commit(committed)  # first: the clock starts before the jobs are published
            for n in range(REPLIES):
                inbound_message_capture(
                    company=company, channel="console", text="Is the deep-cleaning package available on Friday?",
                    phone=f"+88017{n + 1:08d}", email="", contact_name=f"Lead {n}", source="bench",
                    external_id=f"bench-{n}",
                )
        while True:
            pending = Job.objects.filter(task_name="ai_engage").exclude(status__in=["completed", "dead"]).count()
            if not pending:
                break
            time.sleep(0.1)
        seconds = time.perf_counter() - started_at
        worker_cpu = _cpu_seconds(worker.pid) - cpu_started
        completed = Job.objects.filter(task_name="ai_engage", status="completed").count() - 1
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at))"
                " FROM engage_job WHERE task_name = 'ai_engage' AND idempotency_key <> ''"
            )
            job_p50 = cursor.fetchone()[0]
            cursor.execute("SELECT count(*) FROM engage_message WHERE direction = 'outbound' AND status = 'sent'")
            sent = cursor.fetchone()[0]
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
        model.terminate()
        model.wait(timeout=10)
        celery_app.control.purge()
    rate = completed / seconds
    cpu_per_reply = worker_cpu / completed * 1000 if completed else 0.0
    print(f"{completed:,} AI replies in {seconds:.1f} s = {rate:.1f}/s (job p50 {job_p50:.2f} s, {sent:,} sent;"
          f" worker CPU {cpu_per_reply:.1f} ms a reply)")
    load_average = "/".join(f"{value:.1f}" for value in os.getloadavg())
    figures = [
        {
            "figure": f"AI replies, one io worker process, model latency {MODEL_LATENCY_SECONDS:.0f} s: time per 100 replies",
            "value": 100 / rate if rate else float("inf"),
            "unit": "s",
            "ceiling": CEILING_SECONDS_PER_100,
            "note": f"{rate:.1f} replies/s over {completed:,}; --pool threads -c {CONCURRENCY}, a pool of {POOL} "
                    f"connections; job p50 {job_p50:.2f} s; the worker's CPU {cpu_per_reply:.1f} ms a reply; "
                    f"load average {load_average}",
        },
    ]
    output = os.environ.get("BENCH_AI_OUTPUT")
    if output:
        Path(output).write_text(json.dumps(figures))


def _write_section(figures: list[dict]) -> None:
    sys.path.insert(0, str(BASE_DIR / "bench"))
    import run_all

    run_all.section_write(NAME, figures, 0.0)


if __name__ == "__main__":
    sys.path.insert(0, str(BASE_DIR))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shokti.settings")
    if os.environ.get("BENCH_AI_OUTPUT"):
        run()
    else:
        _write_section(main())
