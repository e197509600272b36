"""Burnout alerts' hourly evaluation at scale: one company of 10,000 workers (BENCH_BURNOUT_WORKERS) with 36 days of
bookings, evaluated as the hourly ledger job does (`reports.burnout.services.burnout_evaluate`).

    .venv/bin/python bench/burnout.py                       # fill (once) and measure, write docs/benchmarks.md
    BENCH_BURNOUT_WORKERS=20000 .venv/bin/python bench/burnout.py

Own database (`shokti_bench_burnout` by default, DATABASE_URL wins), filled once: W workers with their contacts and
500 customers (`bulk_create`), and by SQL `INSERT ... SELECT generate_series` for each worker and each of the last 36 Dhaka days
(today included) 3 jobs of 90 minutes from 08:00 with a day off every 7th day, except one worker in 33, who works 5 jobs
of 130 minutes every day (about 76 h in 7 days: an alert), and one in 25, who has a 22:30 job every other day (late
nights: a watch); one job in 50 is cancelled by the worker, one in 3 rated (4 or 5, steady), arrivals 0-7 minutes
after the time (never late). About 2.8 jobs a day a worker.

Figures (each the median of 3 runs after one warm-up run; the first run opens the alerts, the next ones find nothing
new, as an hour later):
- the hourly evaluation's wall time, with the load (`os.getloadavg`) beside it;
- its CPU time: the Python process (`time.process_time`) and the PostgreSQL backend serving it (utime + stime from
  /proc/<backend pid>/stat: the same machine);
- its query time (wall, summed over every statement through `connection.execute_wrapper`) and statement count.
The ceiling is ours: 30 s of CPU (Python + PostgreSQL) an hour for 10,000 workers, so a beat of many such companies
stays a small share of a worker's hour.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/shokti_bench_burnout"
WORKERS = int(os.environ.get("BENCH_BURNOUT_WORKERS", "10000"))
DAYS = 36
SLUG = "bench-burnout"
FILL_NAME = "Bench burnout (steady arrivals and ratings)"  # a database filled another way is filled again
CEILING_CPU_S = 30.0 * WORKERS / 10_000

BOOKINGS_FILL = """
INSERT INTO crm_booking (company_id, customer_id, worker_id, service_id, status, scheduled_at, arrived_at, started_at,
                         finished_at, cancelled_at, cancelled_by, cancellation_reason, rating, zone, external_id,
                         created_at, updated_at)
SELECT %(company)s, %(first_customer)s + (w.id + d) %% 500, w.id, %(service)s,
       CASE WHEN cancelled THEN 'cancelled' ELSE 'completed' END,
       s.at, CASE WHEN cancelled THEN NULL ELSE s.at + make_interval(mins => ((w.id + d) %% 8)::int) END,
       CASE WHEN cancelled THEN NULL ELSE s.at END,
       CASE WHEN cancelled THEN NULL ELSE s.at + make_interval(mins => s.minutes) END,
       CASE WHEN cancelled THEN s.at - interval '1 hour' END,
       CASE WHEN cancelled THEN 'worker' ELSE '' END, '',
       CASE WHEN NOT cancelled AND (w.id + d + k) %% 3 = 0 THEN 4 + w.id %% 2 END,
       'Mirpur', '', s.at - interval '2 days', s.at
FROM crm_worker AS w
CROSS JOIN generate_series(0, %(days)s - 1) AS d
CROSS JOIN generate_series(1, 6) AS k
CROSS JOIN LATERAL (
    SELECT w.id %% 33 = 0 AS heavy, w.id %% 25 = 1 AS nights, (w.id + d + k) %% 50 = 0 AS cancelled
) AS kind
CROSS JOIN LATERAL (
    SELECT CASE WHEN k = 6 THEN ((%(today)s::date - d) + time '22:30') AT TIME ZONE 'Asia/Dhaka'
                ELSE ((%(today)s::date - d) + time '08:00') AT TIME ZONE 'Asia/Dhaka'
                     + make_interval(mins => ((k - 1) * CASE WHEN heavy THEN 140 ELSE 150 END)::int) END AS at,
           CASE WHEN heavy THEN 130 ELSE 90 END AS minutes
) AS s
WHERE w.company_id = %(company)s
  AND ((k <= 3 AND NOT heavy AND (w.id + d) %% 7 <> 0) OR (k <= 5 AND heavy) OR (k = 6 AND nights AND d %% 2 = 0))
"""


def setup() -> None:
    os.environ.setdefault("DATABASE_URL", DEFAULT_URL)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shokti.settings")
    os.environ.setdefault("DATABASE_STATEMENT_TIMEOUT_MS", "0")
    sys.path.insert(0, str(BASE_DIR))
    from bench.run_all import database_prepare

    database_prepare()


def fill():
    from decimal import Decimal

    from django.db import connection, transaction

    from crm.models import Booking, Company, Contact, Customer, Service, Worker

    company = Company.objects.filter(slug=SLUG).first()
    if company is not None and company.name == FILL_NAME and Worker.objects.filter(company=company).count() == WORKERS:
        return company, None
    if company is not None:
        raise SystemExit(f"{SLUG} was filled another way: drop the benchmark database and run again.")
    started = time.perf_counter()
    with transaction.atomic():
        company = Company.objects.create(name=FILL_NAME, slug=SLUG, timezone="Asia/Dhaka")
        service = Service.objects.create(company=company, name="Cleaning", category="Cleaning",
                                         base_price=Decimal(1000), duration_minutes=90)
        contacts = Contact.objects.bulk_create([Contact(company=company, name=f"Customer {n}",
                                                        phone=f"+8809{n:09d}") for n in range(500)])
        customers = Customer.objects.bulk_create([Customer(company=company, contact=contact) for contact in contacts])
        today = dt.datetime.now(dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=6))).date()
        people = Contact.objects.bulk_create([Contact(company=company, name=f"Worker {n}", phone=f"+8801{n:09d}")
                                              for n in range(WORKERS)], batch_size=5000)
        Worker.objects.bulk_create([Worker(company=company, contact=contact, zones=["Mirpur"]) for contact in people],
                                   batch_size=5000)
        with connection.cursor() as cursor:
            cursor.execute(BOOKINGS_FILL, {"company": company.pk, "first_customer": min(c.pk for c in customers),
                                           "service": service.pk, "days": DAYS, "today": today})
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE crm_booking")
    print(f"  filled {Booking.objects.filter(company=company).count():,} bookings of {WORKERS:,} workers", flush=True)
    return company, time.perf_counter() - started


def _backend_cpu() -> float:
    """CPU seconds (user + system) of this connection's PostgreSQL backend so far (same machine: /proc)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # PostgreSQL on another machine (or container): its CPU is not counted
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(company) -> dict:
    from django.db import connection

    from reports.burnout.services import burnout_evaluate

    queries = {"n": 0, "seconds": 0.0}

    def timed(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            queries["n"] += 1
            queries["seconds"] += time.perf_counter() - started

    database_before, cpu_before, wall_before = _backend_cpu(), time.process_time(), time.perf_counter()
    with connection.execute_wrapper(timed):
        counts = burnout_evaluate(company=company, notify=False)
    wall = time.perf_counter() - wall_before
    cpu = time.process_time() - cpu_before
    database = _backend_cpu() - database_before
    return {"wall": wall, "python_cpu": cpu, "database_cpu": database, "query_s": queries["seconds"],
            "queries": queries["n"], "counts": counts, "load": os.getloadavg()[0]}


def main() -> list[dict]:
    setup()
    from crm.models import Booking
    from reports.burnout.models import BurnoutAlert

    company, filled = fill()
    print(f"  filled in {filled:.0f} s" if filled else "  (already filled)", flush=True)
    bookings = Booking.objects.filter(company=company).count()
    BurnoutAlert.objects.filter(company=company).delete()
    first = measure(company)
    print(f"  first: {first}", flush=True)
    runs = [measure(company) for _ in range(3)]
    for run in runs:
        print(f"  hourly: {run}", flush=True)

    def median(key: str) -> float:
        return statistics.median(run[key] for run in runs)

    total_cpu = median("python_cpu") + median("database_cpu")
    size = f"{WORKERS:,} workers, {bookings:,} bookings over {DAYS} days"
    load = f"load {min(run['load'] for run in runs):.1f}-{max(run['load'] for run in runs):.1f} on 2 shared CPUs"
    return [
        {"figure": f"hourly burnout evaluation, CPU (Python + PostgreSQL backend), median of 3 ({size})",
         "value": total_cpu, "unit": "s", "ceiling": CEILING_CPU_S,
         "note": f"Python {median('python_cpu'):.2f} s + PostgreSQL {median('database_cpu'):.2f} s; "
                 f"{runs[0]['counts']['evaluated']:,} workers evaluated, {first['counts']['opened']:,} alerts open"},
        {"figure": f"hourly burnout evaluation, wall time, median of 3 ({size})", "value": median("wall"),
         "unit": "s", "ceiling": 60, "note": f"{load}; queries {median('query_s'):.2f} s over "
                                             f"{int(median('queries'))} statements"},
        {"figure": f"first evaluation (opens every alert, with its timeline event), wall ({size})",
         "value": first["wall"], "unit": "s", "ceiling": 120,
         "note": f"CPU: Python {first['python_cpu']:.2f} s + PostgreSQL {first['database_cpu']:.2f} s; load "
                 f"{first['load']:.1f}"},
    ]


if __name__ == "__main__":
    for row in main():
        print(row)
