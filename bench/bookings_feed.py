"""The bookings feed's throughput: the bulk API and `manage.py import_bookings`.

    make bench                                        # with the other benchmarks (bench/run_all.py)
    .venv/bin/python bench/run_all.py bookings_feed   # only this one
    BENCH_FEED_FILE_ROWS=1000000 .venv/bin/python bench/run_all.py bookings_feed   # the 1M first load

In the benchmark database, one company gets 10,000 customers, 200 workers and 20 services with
external ids (made once, found again). Then:
- POST /api/bookings/bulk with 1,000 new bookings a request (API key, Django's whole stack in this
  process, throttles lifted), BENCH_FEED_BULK_REQUESTS times: rows per second, new rows;
- the same requests again: a replay, every row found unchanged;
- `manage.py import_bookings` of a CSV of BENCH_FEED_FILE_ROWS (default 100,000) new bookings, in a
  subprocess, and the same file again (all unchanged): seconds, and the projection to 1M rows.
Every booking is completed (so `last_booking_at` moves) and records `booking_created`.
Aims (ceilings): 5,000 rows/s for the bulk API (as a ceiling on the time per 1,000 rows: 200 ms);
the 1M-row load in 5 minutes (30 s per 100,000 rows).

Wall clock on a shared machine says more about the neighbours than about the code, so every figure
also carries CPU time, which contention does not inflate: Python's (this process for the API, the
command and its parsing child for the load, from getrusage) and PostgreSQL's (the CPU of the
backends serving us, read from /proc/<pid>/stat), with the load average at the start and the end.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shokti.settings")

SLUG = "bench-bookings-feed"
CUSTOMERS = 10_000
WORKERS = 200
SERVICES = 20
BULK_REQUESTS = int(os.environ.get("BENCH_FEED_BULK_REQUESTS", "20"))
FILE_ROWS = int(os.environ.get("BENCH_FEED_FILE_ROWS", "100000"))


def _company():
    from crm.models import Company, Contact, Customer, Service, Worker

    company, _ = Company.objects.get_or_create(slug=SLUG, defaults={"name": "Bench bookings feed"})
    if not Service.objects.filter(company=company).exists():
        Service.objects.bulk_create(Service(company=company, name=f"Service {i}", category="home", base_price=1000,
                                            external_id=f"svc-{i}") for i in range(SERVICES))
        contacts = Contact.objects.bulk_create(
            Contact(company=company, name=f"গ্রাহক {i}", phone=f"+88017{i:08d}") for i in range(CUSTOMERS + WORKERS)
        )
        Customer.objects.bulk_create(Customer(company=company, contact=contact, external_id=f"cus-{i}")
                                     for i, contact in enumerate(contacts[:CUSTOMERS]))
        Worker.objects.bulk_create(Worker(company=company, contact=contact, external_id=f"wrk-{i}")
                                   for i, contact in enumerate(contacts[CUSTOMERS:]))
    return company


def _row(index: int, prefix: str) -> dict:
    scheduled = dt.datetime(2025, 12, 1, 8, 0) + dt.timedelta(minutes=7 * index)
    return {
        "external_id": f"{prefix}-{index}", "customer_external_id": f"cus-{index % CUSTOMERS}",
        "worker_external_id": f"wrk-{index % WORKERS}", "service_external_id": f"svc-{index % SERVICES}",
        "status": "completed", "scheduled_at": scheduled.isoformat(),
        "arrived_at": (scheduled + dt.timedelta(minutes=index % 20)).isoformat(),
        "finished_at": (scheduled + dt.timedelta(hours=2)).isoformat(), "rating": 1 + index % 5,
        "price": f"{800 + index % 700}.00", "zone": "মিরপুর",
    }


TICK = os.sysconf("SC_CLK_TCK")


def _process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process so far; 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


class BackendCpu:
    """CPU of the PostgreSQL backends serving our database (other than `exclude`) while a block runs.

    Polled every 50 ms and the last reading of each backend kept; a backend that exits between
    polls loses at most its last 50 ms.
    """

    def __init__(self, exclude: int):
        self.exclude, self.seen, self.start = exclude, {}, {}
        self._stop = threading.Event()

    def _poll(self):
        import psycopg
        from django.conf import settings

        database = settings.DATABASES["default"]
        with psycopg.connect(dbname=database["NAME"], host=database.get("HOST") or None,
                             port=database.get("PORT") or None, user=database.get("USER") or None,
                             autocommit=True) as connection:
            own = connection.execute("SELECT pg_backend_pid()").fetchone()[0]
            while True:
                pids = [row[0] for row in connection.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> ALL(%s)",
                    [[own, self.exclude]])]
                for pid in pids:
                    cpu = _process_cpu(pid)
                    self.start.setdefault(pid, cpu)
                    self.seen[pid] = max(cpu, self.seen.get(pid, 0.0))
                if self._stop.wait(0.05):
                    return

    def __enter__(self):
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def seconds(self) -> float:
        # A backend seen first mid-run started with the connection: its CPU before was its start-up.
        return sum(self.seen[pid] - self.start[pid] for pid in self.seen)


def _bulk(client, key: dict, prefix: str) -> dict:
    """Seconds (wall, Python CPU, PostgreSQL CPU) for BULK_REQUESTS bulk requests of 1,000 rows each."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    backend_before = _process_cpu(backend)
    cpu_before = time.process_time()
    started = time.perf_counter()
    for request in range(BULK_REQUESTS):
        rows = [_row(request * 1000 + index, prefix) for index in range(1000)]
        response = client.post("/api/bookings/bulk", {"rows": rows}, content_type="application/json", **key)
        assert response.status_code == 200, response.content[:500]
        assert response.json()["errors"] == 0, response.json()["results"][:3]
    return {"wall": time.perf_counter() - started, "python": time.process_time() - cpu_before,
            "postgres": _process_cpu(backend) - backend_before}


def _load(path: Path) -> dict:
    """Seconds (wall, Python CPU of the command and its child, PostgreSQL CPU) of one import_bookings."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        own = cursor.fetchone()[0]
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with BackendCpu(exclude=own) as backends:
        done = subprocess.run([sys.executable, "manage.py", "import_bookings", str(path), "--company", SLUG,
                               "--no-progress"], cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"import_bookings failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    python = (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
    return {"wall": wall, "python": python, "postgres": backends.seconds}


def _cpu_note(measured: dict, per: int, rows: int, unit: str) -> str:
    """Python and PostgreSQL CPU per `per` rows, in `unit` (ms or s)."""
    scale = per / rows * (1000 if unit == "ms" else 1)
    return (f"CPU per {per:,} rows: Python {measured['python'] * scale:,.1f} {unit}, "
            f"PostgreSQL {measured['postgres'] * scale:,.1f} {unit}")


def main() -> list[dict]:
    import django

    django.setup()
    from django.conf import settings
    from django.test import Client
    from django.test.utils import override_settings

    from crm.services import api_key_create

    company = _company()
    load_before = os.getloadavg()
    _, raw_key = api_key_create(company=company, name="bench")
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "api_key": "1000000/minute"}
    prefix = f"bulk-{uuid.uuid4().hex[:8]}"
    rows = BULK_REQUESTS * 1000
    with override_settings(ALLOWED_HOSTS=[*settings.ALLOWED_HOSTS, "testserver"],
                           REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}):
        client = Client()
        key = {"HTTP_X_API_KEY": raw_key}
        created = _bulk(client, key, prefix)
        replayed = _bulk(client, key, prefix)

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bookings.csv"
        file_prefix = f"file-{uuid.uuid4().hex[:8]}"
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(_row(0, "x")))
            writer.writeheader()
            for index in range(FILE_ROWS):
                writer.writerow(_row(index, file_prefix))
        loaded = _load(path)
        reloaded = _load(path)
    load_after = os.getloadavg()
    per_100k = 100_000 / FILE_ROWS
    load = f"load average {load_before[0]:.1f} at the start, {load_after[0]:.1f} at the end"
    return [
        {"figure": f"POST /api/bookings/bulk, 1,000 new rows a request ({rows:,} rows): time per 1,000 rows",
         "value": round(1000 * created["wall"] / rows * 1000, 1), "unit": "ms", "ceiling": 200,
         "note": f"{rows / created['wall']:,.0f} rows/s; {_cpu_note(created, 1000, rows, 'ms')}; {load}"},
        {"figure": "the same requests again (a replay: every row unchanged): time per 1,000 rows",
         "value": round(1000 * replayed["wall"] / rows * 1000, 1), "unit": "ms", "ceiling": 200,
         "note": f"{rows / replayed['wall']:,.0f} rows/s; {_cpu_note(replayed, 1000, rows, 'ms')}"},
        {"figure": f"manage.py import_bookings, {FILE_ROWS:,} new rows (CSV): per 100,000 rows",
         "value": round(loaded["wall"] * per_100k, 1), "unit": "s", "ceiling": 30,
         "note": f"{FILE_ROWS / loaded['wall']:,.0f} rows/s; 1M rows in "
                 f"{loaded['wall'] * 1_000_000 / FILE_ROWS / 60:.1f} min; {_cpu_note(loaded, 100_000, FILE_ROWS, 's')}"},
        {"figure": "the same file again (all unchanged): per 100,000 rows",
         "value": round(reloaded["wall"] * per_100k, 1), "unit": "s", "ceiling": 30,
         "note": f"{FILE_ROWS / reloaded['wall']:,.0f} rows/s; {_cpu_note(reloaded, 100_000, FILE_ROWS, 's')}; {load}"},
    ]


if __name__ == "__main__":
    for figure in main():
        print(f"{figure['figure']}: {figure['value']} {figure['unit']} (ceiling {figure['ceiling']})")
