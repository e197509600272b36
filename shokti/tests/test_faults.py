"""The fault suite: a real server (granian, as the Procfile starts it), Celery worker and beat on the test PostgreSQL and a private Redis
this module may stop. Under a steady stream of inbound messages:

1. Redis stopped for 10 s: no 5xx, and every accepted message is answered once after it is back.
2. PostgreSQL terminates the connections mid-stream (pg_terminate_backend): no 500 (a 503 with
   Retry-After at worst), every accepted message answered once.
3. The worker SIGKILLed mid-job: the job completes within 60 s, once (a replacement worker, as a
   supervisor would start, takes it over when its lease expires; the reclaim is beat's).

Plus what only the real server shows: long URLs reaching Django (its JSON 414, /book tokens of thousands of
characters), what the server answers itself (no HTML), and /health?deep=1.

Transactional (the processes see committed rows only). The faults run in one test on one stack: the
flush after a transactional test empties tables whose rows the long-lived processes hold (content type
ids, beat's schedules), so the read-only test of the server's errors comes last.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from django.apps import apps as django_apps
from django.db import connection

from crm.services import api_key_create
from crm.tests.factories import CompanyFactory, ContactFactory
from engage.ledger.services import job_enqueue
from engage.models import Job, Message
from shokti.schedules import DEFAULT_SCHEDULES, schedules_create
from shokti.testing.celery_worker import (
    RedisServer,
    WorkerProcess,
    broker_for_this_process,
    free_port,
    start_worker,
    test_database_url,
    wait_for,
)

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
RATE_PER_SECOND = 15
# Short leases and heartbeats, so a dead worker is noticed in seconds; everything else as in production.
STACK_ENV = {
    "JOBS_LEASE_SECONDS": "6",
    "JOBS_HEARTBEAT_SECONDS": "1",
    "WORKER_HEARTBEAT_SECONDS": "1",
    "JOBS_DISPATCH_TIMEOUT_SECONDS": "20",
    "THROTTLE_API_KEY": "100000/minute",
    "OPENAI_API_KEY": "",  # replies are the approved fallback texts: no model in this suite
    "LOG_LEVEL": "INFO",
    "PYTHONUNBUFFERED": "1",
}


class Process:
    def __init__(self, command: list[str], env: dict[str, str], log_path: Path):
        self.log_path = log_path
        self.process = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=log_path.open("w"), stderr=subprocess.STDOUT, start_new_session=True
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(timeout=15)
                return
            except subprocess.TimeoutExpired:
                continue


@pytest.fixture(scope="module")
def stack(django_db_setup, django_db_blocker, tmp_path_factory):
    """The web server (2 workers), a thread-pool Celery worker on default+io, and beat, on a private Redis."""
    directory = tmp_path_factory.mktemp("faults")
    redis = RedisServer(free_port(), directory, persistent=True)
    redis.start()
    with django_db_blocker.unblock():
        database_url = test_database_url()
        # An earlier transactional test's flush emptied beat's schedules: beat starts with them made again.
        schedules_create(django_apps, DEFAULT_SCHEDULES)
    env = {
        **os.environ, **STACK_ENV, "DATABASE_URL": database_url, "REDIS_URL": redis.url,
        "CELERY_BROKER_URL": redis.url,
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    port = free_port()
    web = Process(
        [str(BIN / "python"), "-m", "shokti.web"],
        {**env, "PORT": str(port), "WEB_CONCURRENCY": "2"}, directory / "web.log",
    )
    beat = Process(
        [str(BIN / "celery"), "-A", "shokti", "beat", "--loglevel", "INFO", "-S", "django"],
        env, directory / "beat.log",
    )
    workers: list[WorkerProcess] = []

    def worker() -> WorkerProcess:
        started = start_worker(
            broker_url=redis.url, database_url=database_url, log_dir=directory, pool="threads", concurrency=8,
            extra_env={**STACK_ENV, "REDIS_URL": redis.url},
        )
        workers.append(started)
        return started

    base_url = f"http://127.0.0.1:{port}"
    try:
        worker()
        deadline = time.monotonic() + 90
        while True:
            try:
                # both web workers load Django as they start: warm them up before the clock runs
                for _ in range(4):
                    requests.get(f"{base_url}/health", timeout=60)
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the web server did not answer:\n{web.log()[-3000:]}") from None
                time.sleep(0.3)
        yield {"url": base_url, "redis": redis, "web": web, "beat": beat, "workers": workers, "new_worker": worker}
    finally:
        for started in workers:
            started.stop()
        beat.stop()
        web.stop()
        redis.stop()


@pytest.fixture
def tenant(stack):
    """A company and its key (and the default beat schedules, as a migrated database has them)."""
    schedules_create(django_apps, DEFAULT_SCHEDULES)
    company = CompanyFactory(slug="faults")
    return company, api_key_create(company=company, name="faults")[1]


def stream(base_url: str, key: str, *, seconds: float, tag: str, during=None) -> list[tuple[int, dict, str]]:
    """POST inbound messages at RATE_PER_SECOND for `seconds` (each its own lead); `during(elapsed)` is called
    every tick. Returns (status, body, external_id) for each."""
    results: list[tuple[int, dict, str]] = []
    lock = threading.Lock()
    session = requests.Session()

    def send(number: int) -> None:
        external_id = f"{tag}-{number}"
        body = {"phone_number": f"+88017{number:08d}", "message_text": "Do you clean sofas?", "channel": "console",
                "external_id": external_id}
        try:
            response = session.post(f"{base_url}/inbound-message", json=body, headers={"X-Api-Key": key}, timeout=30)
            status, payload = response.status_code, response.json()
        except requests.RequestException as error:
            status, payload = 0, {"error": str(error)}
        with lock:
            results.append((status, payload, external_id))

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        number = 0
        while (elapsed := time.monotonic() - started) < seconds:
            if during is not None:
                during(elapsed)
            due = int(elapsed * RATE_PER_SECOND)
            while number <= due:
                number += 1
                pool.submit(send, number)
            time.sleep(0.02)
    return results


def answered_once(results, *, worker: WorkerProcess, timeout: float = 90, first_run: bool = True) -> None:
    """Every accepted message's reply job completed (on its first run when `first_run`), one reply sent for each."""
    job_ids = [payload["job_id"] for status, payload, _ in results if status == 202]
    assert job_ids

    def done() -> bool:
        return not Job.objects.filter(pk__in=job_ids).exclude(status="completed").exists()

    wait_for(done, timeout=timeout, interval=1, message="every accepted message's reply", worker=worker)
    jobs = Job.objects.filter(pk__in=job_ids)
    attempts = set(jobs.values_list("attempts", flat=True))
    assert attempts == {1} if first_run else min(attempts) >= 1, attempts
    replies = Message.objects.filter(job_id__in=job_ids, direction="outbound")
    assert replies.count() == len(job_ids)
    assert replies.filter(status="sent").count() == len(job_ids)


def test_faults_under_a_stream_of_inbound_messages(stack, tenant, tmp_path):
    """Each fault in turn, on one stack: Redis stopped 10 s, PostgreSQL connections terminated, the worker killed.

    One test: the flush after a transactional test would empty tables (content types, beat's schedules)
    under the long-lived processes; the read-only test of the server's errors comes after it."""
    company, key = tenant
    deep_health_all_ok(stack)
    redis_stopped_for_10_seconds(stack, key)
    postgres_connections_terminated_mid_stream(stack, key)
    worker_killed_mid_job(stack, company, tmp_path)


def redis_stopped_for_10_seconds(stack, key: str) -> None:
    """No 5xx while Redis is away, and every accepted message answered once after it is back."""
    redis = stack["redis"]
    events = {}

    def outage(elapsed: float) -> None:
        if elapsed >= 4 and "stopped" not in events:
            redis.stop()
            events["stopped"] = time.monotonic()
        if elapsed >= 14 and "started" not in events:
            redis.start()
            events["started"] = time.monotonic()

    results = stream(stack["url"], key, seconds=20, tag="redis", during=outage)

    statuses = [status for status, _, _ in results]
    assert statuses and all(status == 202 for status in statuses), sorted(set(statuses))
    assert events["started"] - events["stopped"] >= 9.5
    # the messages that arrived while Redis was away were accepted into the ledger and run once it was back
    answered_once(results, worker=stack["workers"][0], timeout=90)


def postgres_connections_terminated_mid_stream(stack, key: str) -> None:
    """No 500 (a JSON 503 with Retry-After at worst), and every accepted message answered once."""
    terminated = []

    def terminate(elapsed: float) -> None:
        if (elapsed >= 3 and not terminated) or (elapsed >= 7 and len(terminated) == 1):
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                terminated.append(cursor.fetchone()[0])

    results = stream(stack["url"], key, seconds=12, tag="pg", during=terminate)

    assert len(terminated) == 2 and all(count > 0 for count in terminated), terminated
    statuses = [status for status, _, _ in results]
    assert 500 not in statuses and 0 not in statuses, sorted(set(statuses))
    for status, payload, _ in results:
        assert status in (202, 503), (status, payload)
        if status == 503:
            assert payload["error"]["code"] == "unavailable" and payload["error"]["retry_after_seconds"] > 0
    assert statuses.count(202) >= len(statuses) * 0.9
    # a job whose connection was cut mid-run failed that attempt and ran again: still one reply each
    answered_once(results, worker=stack["workers"][0], timeout=90, first_run=False)


def worker_killed_mid_job(stack, company, tmp_path) -> None:
    """The worker SIGKILLed mid-job: the job completes within 60 s, once, on the worker that replaces it."""
    victim = stack["workers"][0]
    contact = ContactFactory(company=company, phone="+8801712000042")
    calls_file, pid_file = tmp_path / "calls", tmp_path / "pid"
    with broker_for_this_process(stack["redis"].url):  # published where the stack's workers listen
        job = job_enqueue(
            company=company, task_name="reliability_send_then_wait",
            payload={"contact_id": contact.pk, "calls_file": str(calls_file), "pid_file": str(pid_file), "sleep": 120},
            idempotency_key="kill-the-worker",
        )
    wait_for(lambda: pid_file.exists(), timeout=30, message="the handler to send and stall", worker=victim)

    # when the whole worker process is killed (threads: the job dies with it), and a new one starts
    def alive() -> set[str]:
        return set(requests.get(f"{stack['url']}/health", params={"deep": 1}, timeout=30).json()["workers"]["alive"])

    before = wait_for(alive, timeout=30, message="the worker's heartbeat", worker=victim)
    os.killpg(victim.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    replacement = stack["new_worker"]()

    # then /health?deep=1 stops counting the dead worker (its heartbeat's time to live is 3 s here)
    wait_for(lambda: (names := alive()) and not names & before, timeout=30, interval=1,
             message="the dead worker to drop out of /health", worker=replacement)
    # and its lease runs out, beat's reclaim hands the job out, and the new worker completes it
    wait_for(lambda: Job.objects.get(pk=job.pk).status == "completed", timeout=60, interval=0.5,
             message="the job to complete", worker=replacement)
    assert time.monotonic() - killed_at < 60
    job.refresh_from_db()
    assert job.attempts == 2
    assert calls_file.read_text().split() == [str(victim.pid), str(replacement.pid)]
    sent = Message.objects.filter(job=job, direction="outbound")
    assert sent.count() == 1 and sent.get().status == "sent"  # the first run's send is not sent again


def deep_health_all_ok(stack) -> None:
    """Before any fault: /health?deep=1 sees the worker on both queues, beat ticking, nothing waiting."""
    def healthy() -> dict | None:
        response = requests.get(f"{stack['url']}/health", params={"deep": 1}, timeout=30)
        return response.json() if response.status_code == 200 else None

    body = wait_for(healthy, timeout=90, interval=1, message="a healthy deep check", worker=stack["workers"][0])

    assert body["checks"] == {
        "database": "ok", "redis": "ok", "workers": "ok", "beat": "ok", "jobs": "ok",
    }
    assert body["workers"]["per_queue"]["io"] >= 1 and body["workers"]["per_queue"]["default"] >= 1
    assert body["beat"]["last_tick_seconds_ago"] < 30


def test_long_urls_reach_django_and_the_server_answers_no_html(stack, tenant):
    too_long = requests.get(f"{stack['url']}/book", params={"token": "x" * 20000}, timeout=30)
    long_token = requests.get(f"{stack['url']}/book", params={"token": "x" * 6000}, timeout=30, allow_redirects=False)

    assert too_long.status_code == 414
    assert too_long.headers["Content-Type"] == "application/json"
    assert too_long.json()["error"]["code"] == "uri_too_long"
    assert long_token.status_code == 400
    assert long_token.json()["error"]["code"].startswith("link_")

    # What is not HTTP never reaches Django: the server's own 400, without a page.
    with socket.create_connection(("127.0.0.1", int(stack["url"].rsplit(":", 1)[1])), timeout=30) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        answer = sock.recv(4096)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") and body == b"", answer
