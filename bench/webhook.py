"""POST /inbound-message on the web server (granian) + PostgreSQL: throughput, latency, the raw-SQL ceiling, duplicates.

    make bench                                   # with the other benchmarks (bench/run_all.py)
    .venv/bin/python bench/run_all.py webhook    # only this one
    DATABASE_URL=postgres://... REDIS_URL=redis://... .venv/bin/python bench/webhook.py

What it does, in the benchmark database (migrated by run_all):
1. Starts the web server as the Procfile does (`python -m shokti.web`, BENCH_WEBHOOK_WORKERS workers of 2 threads,
   default 2, access log off) on a free port,
   with throttling lifted so the limit measured is the server's, not the API-key quota.
2. Closed loop, driven by wrk (bench/webhook.lua; `make bench` installs Debian's wrk) for
   BENCH_WEBHOOK_SECONDS (default 15; wrk runs for a time, not a count, and the count is
   reported): new inbound messages from 16 connections on 2 wrk threads, a fresh connection per request as a webhook sender makes (
   close it anyway), from a pool of 2,000 phone numbers, so contacts and leads are both created
   and found: requests/s, p50, p99.
3. Duplicates: one delivery repeated for 5 s (same external_id), also by wrk: requests/s and p50.
4. Open loop (last, so an overloaded server's backlog spoils nothing else): 200 requests/s offered
   at a constant rate for 15 s; latency is counted from the moment each request was due (no
   coordinated omission), and a request unanswered after 30 s counts as failed: p50, p99.
5. The ceiling: the same database work as the service does (the dedupe probe; one transaction
   with the contact upsert, the open-lead lookup or its INSERT ... SELECT of the first stage, and
   message + job + event in one statement; the API key is cached per process, so it is not read)
   with raw psycopg on 4 connections: transactions/s.

The load generators (wrk for the closed loops; asyncio on raw sockets in this process for the
open loop, which wrk cannot pace) run on the same 2 CPUs as the server and the database: the
figures are for the whole machine, client included.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shokti.settings")

SECONDS = int(os.environ.get("BENCH_WEBHOOK_SECONDS", "15"))
REQUESTS = 5000  # the raw-psycopg ceiling's transactions
WORKERS = int(os.environ.get("BENCH_WEBHOOK_WORKERS", "2"))
RAW_CONNECTIONS = 4
CONCURRENCY = int(os.environ.get("BENCH_WEBHOOK_CONCURRENCY", "16"))
RATE = 200
RATE_SECONDS = 15
DUPLICATE_SECONDS = 5
PHONE_POOL = 2000
RUN = uuid.uuid4().hex[:8]


# --- the load generator -------------------------------------------------------------------


def _request_bytes(port: int, raw_key: str, body: dict) -> bytes:
    payload = json.dumps(body).encode()
    head = (
        f"POST /inbound-message HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"X-Api-Key: {raw_key}\r\nContent-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + payload


async def _post(port: int, request: bytes) -> int:
    """The HTTP status of one request on a fresh connection; 0 for a reset, refusal or a 30 s timeout."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 30)
        try:
            writer.write(request)
            response = await asyncio.wait_for(reader.read(), 30)  # sync workers close after each response
        finally:
            writer.close()
    except (TimeoutError, OSError):
        return 0
    return int(response[9:12]) if response.startswith(b"HTTP/1.") else 0


def _body(index: int, prefix: str) -> dict:
    return {
        "phone_number": f"+8801712{index % PHONE_POOL:06d}",
        "contact_name": f"Bench {index % PHONE_POOL}",
        "message_text": f"{prefix} {RUN} message {index}: is the AC servicing available this week?",
        "channel": "console",
        "external_id": f"{prefix}-{RUN}-{index}",
    }


async def open_loop(port: int, requests: list[bytes], rate: float) -> tuple[list[float], dict]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05

    async def one(due: float, request: bytes) -> None:
        await asyncio.sleep(max(0.0, due - loop.time()))
        status = await _post(port, request)
        latencies.append(loop.time() - due)  # from when it was due: queueing counts
        statuses[status] = statuses.get(status, 0) + 1

    await asyncio.gather(*(one(start + index / rate, request) for index, request in enumerate(requests)))
    return latencies, statuses


WRK_THREADS = 2
WRK_SCRIPT = ROOT / "bench" / "webhook.lua"


def wrk_run(port: int, raw_key: str, seconds: int, *, duplicate: bool = False) -> dict:
    """Closed loop with wrk: CONCURRENCY connections for `seconds`; its JSON summary line."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed: `make bench` installs it (Debian package wrk)")
    env = {
        **os.environ,
        "WRK_API_KEY": raw_key,
        "WRK_RUN": uuid.uuid4().hex[:8],
        "WRK_PHONES": str(PHONE_POOL),
        "WRK_CONNECTION_CLOSE": "1",
    }
    if duplicate:
        env["WRK_DUPLICATE"] = "1"
    output = subprocess.run(
        [wrk, f"-t{WRK_THREADS}", f"-c{CONCURRENCY}", f"-d{seconds}s", "--timeout", "30s", "-s", str(WRK_SCRIPT),
         f"http://127.0.0.1:{port}"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout
    line = next((line for line in output.splitlines() if line.startswith("JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{output}")
    result = json.loads(line[5:])
    result["statuses"] = {202: result["answered"] - result["non202"]}
    if result["non202"]:
        result["statuses"]["not 202"] = result["non202"]
    if result["socket_errors"]:
        result["statuses"][0] = result["socket_errors"]
    return result


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


# --- the server ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_url() -> str:
    from django.conf import settings

    database = settings.DATABASES["default"]
    password = f":{database['PASSWORD']}" if database.get("PASSWORD") else ""
    return (
        f"postgres://{database.get('USER') or 'postgres'}{password}@{database.get('HOST') or '127.0.0.1'}:"
        f"{database.get('PORT') or 5432}/{database['NAME']}"
    )


def _start_server(port: int) -> subprocess.Popen:
    from django.conf import settings

    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "THROTTLE_API_KEY": "100000000/minute",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "shokti.web"],
        cwd=ROOT, env={**env, "PORT": str(port), "WEB_CONCURRENCY": str(WORKERS), "WEB_ACCESS_LOG": "false"},
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the web server did not start")


def _stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)  # the server and its workers
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)


# --- the raw-psycopg ceiling ----------------------------------------------------------------

RAW_SQL = {
    "dedupe": "SELECT lead_id, id, job_id FROM engage_message WHERE company_id = %s AND direction = 'inbound'"
              " AND external_id <> '' AND external_id = %s LIMIT 1",
    "contact": "INSERT INTO crm_contact (company_id, name, phone, email, locale, timezone, is_email_consented,"
               " is_sms_consented, is_whatsapp_consented, created_at, updated_at)"
               " VALUES (%s, %s, %s, '', 'bn', 'Asia/Dhaka', false, true, false, now(), now())"
               " ON CONFLICT (company_id, phone) WHERE NOT (phone = '') DO UPDATE SET updated_at = EXCLUDED.updated_at"
               " RETURNING id",
    "lead": "SELECT id, channel FROM crm_lead WHERE company_id = %s AND contact_id = %s AND status = 'open'"
            " ORDER BY id DESC LIMIT 1",
    "lead_insert": "INSERT INTO crm_lead (company_id, contact_id, pipeline_id, stage_id, status, channel, source,"
                   " summary, score, is_ai_paused, created_at, updated_at)"
                   " SELECT %s, %s, s.pipeline_id, s.id, 'open', 'console', '', '', 0, false, now(), now()"
                   " FROM crm_stage s JOIN crm_pipeline p ON p.id = s.pipeline_id"
                   " WHERE p.company_id = %s AND p.is_default ORDER BY s.\"order\" LIMIT 1 RETURNING id",
    # Message, job and event in one statement, as the service writes them on PostgreSQL.
    "message_job_event": (
        "WITH ids AS (SELECT nextval(pg_get_serial_sequence('engage_message', 'id')) AS message_id,"
        " nextval(pg_get_serial_sequence('engage_job', 'id')) AS job_id),"
        " message AS (INSERT INTO engage_message (id, company_id, contact_id, lead_id, direction, channel, agent_type,"
        " message_type, subject, body, status, provider_message_id, provider_response, error, correlation_id,"
        " external_id, job_id, created_at, updated_at) SELECT message_id, %(company)s, %(contact)s, %(lead)s,"
        " 'inbound', 'console', '', 'inbound', '', %(text)s, 'received', '', '{}', '', %(correlation)s, %(key)s,"
        " job_id, now(), now() FROM ids ON CONFLICT DO NOTHING RETURNING id, job_id),"
        " job AS (INSERT INTO engage_job (id, company_id, task_name, priority, payload, idempotency_key, status,"
        " attempts, max_attempts, next_run_at, dispatched_at, locked_by, last_error, created_at, updated_at)"
        " SELECT job_id, %(company)s, 'ai_engage', 100, jsonb_build_object('message_id', id),"
        " 'ai_engage:inbound:' || id, 'queued', 0, 5, now(), now(), '', '', now(), now() FROM message RETURNING id),"
        " event AS (INSERT INTO crm_event (company_id, type, contact_id, target_type_id, target_id, payload, source,"
        " correlation_id, occurred_at) SELECT %(company)s, 'message.received', %(contact)s, NULL, id::text, '{}',"
        " 'console', %(correlation)s, now() FROM message)"
        " SELECT message.id, job.id FROM message, job"
    ),
}


def _raw_worker(dsn: str, company_id: int, bodies: list[dict], done: list[int]) -> None:
    import psycopg

    with psycopg.connect(dsn) as connection:
        connection.autocommit = True
        for body in bodies:
            key = f"ext:{body['external_id']}"
            if connection.execute(RAW_SQL["dedupe"], [company_id, key]).fetchone():
                continue
            with connection.transaction():
                contact_id = connection.execute(
                    RAW_SQL["contact"], [company_id, body["contact_name"], body["phone_number"]]
                ).fetchone()[0]
                lead = connection.execute(RAW_SQL["lead"], [company_id, contact_id]).fetchone()
                if lead is None:
                    lead = connection.execute(RAW_SQL["lead_insert"], [company_id, contact_id, company_id]).fetchone()
                connection.execute(RAW_SQL["message_job_event"], {
                    "company": company_id, "contact": contact_id, "lead": lead[0], "text": body["message_text"],
                    "correlation": uuid.uuid4(), "key": key,
                }).fetchone()
            done.append(1)


def raw_ceiling(company_id: int, count: int) -> float:
    """Transactions per second of the same database work with raw psycopg, RAW_CONNECTIONS connections."""
    dsn = _database_url().replace("postgres://", "postgresql://", 1)
    bodies = [_body(index, "raw") for index in range(count)]
    slices = [bodies[worker::RAW_CONNECTIONS] for worker in range(RAW_CONNECTIONS)]
    done: list[int] = []
    threads = [threading.Thread(target=_raw_worker, args=(dsn, company_id, part, done)) for part in slices]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if len(done) != count:
        raise RuntimeError(f"raw ceiling: {len(done)} of {count} transactions")
    return count / elapsed


# --- the run -------------------------------------------------------------------------------


def _company(slug: str):
    from crm.models import Company
    from crm.services import api_key_create, pipeline_get_or_create_default

    company, _ = Company.objects.get_or_create(slug=slug, defaults={"name": f"Bench {slug}"})
    pipeline_get_or_create_default(company=company)
    api_key, raw_key = api_key_create(company=company, name=f"bench {RUN}")
    return company, api_key, raw_key


def _analyze() -> None:
    """Fresh planner statistics for the tables the webhook writes, as autovacuum keeps them.

    This machine's PostgreSQL runs with autovacuum off: without this, the tables grew run after run
    with no statistics and the open-lead lookup walked the company's open leads through
    lead_company_status (2,000 rows at 4,000 leads), each run slower than the last.
    """
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE crm_contact, crm_lead, engage_message, engage_job, crm_event")


def measure() -> dict:
    import django

    django.setup()
    from shokti.celery import app

    _, _, raw_key = _company("bench-webhook")
    raw_company, _, _ = _company("bench-webhook-raw")
    port = _free_port()
    server = _start_server(port)
    try:
        # Warm: the server listens before its workers have loaded Django; with 2 s of warm-up the
        # measured loop began while some were still booting (its p99 was 1.5-2.5 s, that boot).
        wrk_run(port, raw_key, 6)
        _analyze()
        new = wrk_run(port, raw_key, SECONDS)
        duplicate = wrk_run(port, raw_key, DUPLICATE_SECONDS, duplicate=True)

        # Last: if the server cannot keep up with the rate, its backlog must not spoil another phase.
        paced = [_request_bytes(port, raw_key, _body(index, "paced")) for index in range(RATE * RATE_SECONDS)]
        paced_latencies, paced_statuses = asyncio.run(open_loop(port, paced, RATE))
    finally:
        _stop(server)
        app.control.purge()  # no worker runs here: drop the ai_engage tasks the server queued

    raw_rate = raw_ceiling(raw_company.pk, REQUESTS)
    return {
        "requests": new["answered"], "workers": WORKERS, "concurrency": CONCURRENCY,
        "elapsed": new["seconds"], "rps": new["answered"] / new["seconds"],
        "p50_ms": new["p50_ms"], "p99_ms": new["p99_ms"], "statuses": new["statuses"],
        "paced_p50_ms": statistics.median(paced_latencies) * 1000,
        "paced_p99_ms": percentile(paced_latencies, 0.99) * 1000, "paced_statuses": paced_statuses,
        "duplicate_rps": duplicate["answered"] / duplicate["seconds"],
        "duplicate_p50_ms": duplicate["p50_ms"], "duplicate_p99_ms": duplicate["p99_ms"],
        "duplicate_statuses": duplicate["statuses"], "duplicates": duplicate["answered"],
        "raw_tps": raw_rate,
    }


def _failures(statuses: dict) -> str:
    """A note on answers other than 202 (0 = reset, refused or timed out); a run with them is not a clean run."""
    failed = {status: count for status, count in statuses.items() if status != 202}
    return f"; NOT 202: {failed}" if failed else ""


def figures(result: dict) -> list[dict]:
    share = result["rps"] / result["raw_tps"]
    return [
        {
            "figure": f"{result['requests']:,} new inbound messages (wrk, {result['concurrency']} connections, a new"
                      f" one per request), {result['workers']} web workers of 2 threads: requests/s, as seconds per 1,000"
                      " (aim: 500/s)",
            "value": 1000 / result["rps"], "unit": "s", "ceiling": 2.0,
            "note": f"{result['rps']:.0f} req/s, p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms"
                    + _failures(result["statuses"]),
        },
        {
            "figure": f"p99 latency at {RATE} requests/s offered at a constant rate for {RATE_SECONDS} s",
            "value": result["paced_p99_ms"], "unit": "ms", "ceiling": 50,
            "note": f"p50 {result['paced_p50_ms']:.1f} ms" + _failures(result["paced_statuses"]),
        },
        {
            "figure": "raw-psycopg ceiling / Django throughput (aim: Django at least 40% of the ceiling)",
            "value": 1 / share, "unit": "x", "ceiling": 2.5,
            "note": f"raw {result['raw_tps']:.0f} tx/s on {result['workers']} connections; Django {share:.0%} of it",
        },
        {
            "figure": f"duplicate delivery (same external_id) x{result['duplicates']:,}: p50, ceiling = a new message's p50",
            "value": result["duplicate_p50_ms"], "unit": "ms", "ceiling": round(result["p50_ms"], 1),
            "note": f"{result['duplicate_rps']:.0f} req/s, p99 {result['duplicate_p99_ms']:.1f} ms"
                    + _failures(result["duplicate_statuses"]),
        },
    ]


def main() -> list[dict]:
    load = os.getloadavg()[0]
    result = measure()
    result["load_average_before"] = load
    print(json.dumps(result, indent=2, default=str))
    return figures(result)


if __name__ == "__main__":
    from bench.run_all import database_prepare

    database_prepare()
    for row in main():
        print(row)
