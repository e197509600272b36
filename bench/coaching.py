"""CoachNova's punctuality and selection at scale: the full backfill, the daily incremental refresh and a run's
selection, measured at the issue's 100k workers (28 days of bookings each: 2.8M bookings); the backfill is projected
to 10M bookings (its classification linearly, the workers' stats, which read 28 days, by workers: said so).

    .venv/bin/python bench/coaching.py                     # fill (once, ~3 min) and measure, write docs/benchmarks.md
    BENCH_COACHING_WORKERS=10000 BENCH_COACHING_BOOKINGS_PER_WORKER=100 .venv/bin/python bench/coaching.py

Own database (`shokti_bench_coaching` by default, created if missing), filled once: one company, W workers with
their contacts, W customers, and W x N bookings over the last N days (one a day per worker, scheduled 10:00 Dhaka),
by SQL `INSERT ... SELECT generate_series`; one worker in twenty (5%) is late (15-60 min) two days in five (the
pattern), another one in twenty is late one day in fourteen (below it), one booking in 50 is cancelled by the
worker; then `VACUUM ANALYZE`. (Until 2026-12-07 one worker in three was in the pattern: far above real life.)

Figures (one timed run each; the backfill is destructive, so it is run once after emptying the coaching tables):
- full backfill (`coaching.punctuality.punctuality_backfill`, stats for yesterday): every booking classified, every
  worker's stats;
- the daily incremental (`punctuality_daily`, today): one booking in 100 of the last two days edited first (its
  worker's stats are recounted), the last two days' bookings reclassified (unchanged rows are not rewritten), every
  other worker's windows rolled by one day;
- a run's selection (`coaching.runs.run_select`, dry run): a row for every worker, written by two `INSERT ... SELECT`
  from the stored 14-day windows (coaching.runs_sql): the skip rows of the workers below the pattern, and the
  candidates' rows (late bookings, pattern key, consent, address, holdout bucket) without a round trip per worker.
The ceilings are the issue's (2 min for the projected backfill; 10 s and 1 s at 100k workers, scaled down when
fewer are measured); the notes give each step's CPU time (the database backend's and Python's) and the load.
"""

from __future__ import annotations

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
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/shokti_bench_coaching"
WORKERS = int(os.environ.get("BENCH_COACHING_WORKERS", "100000"))
PER_WORKER = int(os.environ.get("BENCH_COACHING_BOOKINGS_PER_WORKER", "28"))
FULL_WORKERS, FULL_BOOKINGS = 100_000, 10_000_000
NAME = "coaching"
SLUG = "bench-coaching"
FILL_NAME = "Bench coaching (5% in the pattern)"  # a database filled with another share is filled again

BOOKINGS_FILL = """
INSERT INTO crm_booking (company_id, customer_id, worker_id, service_id, status, scheduled_at, arrived_at,
                         cancelled_by, cancellation_reason, zone, external_id, created_at, updated_at, cancelled_at)
SELECT %(company)s, c.id, w.id, %(service)s,
       CASE WHEN (w.id + d) %% 50 = 0 THEN 'cancelled' ELSE 'completed' END,
       s.at,
       CASE WHEN (w.id + d) %% 50 = 0 THEN NULL
            WHEN w.id %% 20 = 0 AND d %% 5 < 2 THEN s.at + make_interval(mins => (15 + (w.id + d) %% 45)::int)
            WHEN w.id %% 20 = 1 AND d %% 14 = 0 THEN s.at + make_interval(mins => 25)
            ELSE s.at + make_interval(mins => ((w.id + d) %% 8)::int) END,
       CASE WHEN (w.id + d) %% 50 = 0 THEN 'worker' ELSE '' END, '', '', '', s.at - interval '2 days', s.at,
       CASE WHEN (w.id + d) %% 50 = 0 THEN s.at - interval '1 hour' END
FROM crm_worker AS w
JOIN crm_customer AS c ON c.company_id = w.company_id AND c.id - %(first_customer)s = w.id - %(first_worker)s
CROSS JOIN generate_series(1, %(days)s) AS d
CROSS JOIN LATERAL (SELECT (%(today)s::date - d + time '04:00') AT TIME ZONE 'UTC' AS at) AS s
WHERE w.company_id = %(company)s
"""


def main() -> list[dict]:
    url = os.environ.get("BENCH_COACHING_DATABASE_URL", DEFAULT_URL)
    _database_create(url)
    with tempfile.NamedTemporaryFile(suffix=".json") as output:
        env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "shokti.settings",
               "BENCH_COACHING_OUTPUT": output.name, "DATABASE_STATEMENT_TIMEOUT_MS": "0"}
        subprocess.run([sys.executable, __file__], env=env, cwd=BASE_DIR, check=True)
        return json.loads(Path(output.name).read_text())


def _database_create(url: str) -> None:
    import psycopg

    match = re.match(r"^(?P<server>.+)/(?P<name>[^/?]+)(?P<query>\?.*)?$", url)
    with psycopg.connect(f"{match['server']}/postgres", autocommit=True) as connection:
        if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [match["name"]]).fetchone():
            connection.execute(f'CREATE DATABASE "{match["name"]}"')


def _fill(today: dt.date):
    from django.core.management import call_command
    from django.db import connection, transaction

    from crm.models import Booking, Company, Contact, Customer, Service, Worker

    call_command("migrate", verbosity=0)
    company, _ = Company.objects.get_or_create(slug=SLUG, defaults={"name": FILL_NAME})
    if company.name == FILL_NAME and Booking.objects.filter(company=company).count() >= WORKERS * PER_WORKER:
        return company
    started = time.perf_counter()
    with transaction.atomic():
        with connection.cursor() as cursor:  # a million rows: not through Django's collector
            for table in ("coaching_coachingrecipient", "coaching_coachingrun", "coaching_bookingpunctuality",
                          "coaching_workerpunctuality", "crm_booking"):
                cursor.execute(f"DELETE FROM {table} WHERE company_id = %s", [company.pk])
        Worker.objects.filter(company=company).delete()
        Customer.objects.filter(company=company).delete()
        Contact.objects.filter(company=company).delete()
        service, _ = Service.objects.get_or_create(company=company, name="Cleaning",
                                                   defaults={"category": "cleaning", "base_price": 1000})
        contacts = Contact.objects.bulk_create(
            [Contact(company=company, name=f"Worker {n}", phone=f"+88019{n:08d}", is_sms_consented=True)
             for n in range(WORKERS)], batch_size=5000)
        workers = Worker.objects.bulk_create([Worker(company=company, contact=contact) for contact in contacts],
                                             batch_size=5000)
        customer_contacts = Contact.objects.bulk_create(
            [Contact(company=company, name=f"Customer {n}", phone=f"+88017{n:08d}") for n in range(WORKERS)],
            batch_size=5000)
        customers = Customer.objects.bulk_create([Customer(company=company, contact=contact)
                                                  for contact in customer_contacts], batch_size=5000)
        with connection.cursor() as cursor:
            cursor.execute(BOOKINGS_FILL, {
                "company": company.pk, "service": service.pk, "days": PER_WORKER, "today": today,
                "first_worker": min(worker.pk for worker in workers),
                "first_customer": min(customer.pk for customer in customers),
            })
            print(f"{cursor.rowcount:,} bookings in {time.perf_counter() - started:.0f} s", flush=True)
    Company.objects.filter(pk=company.pk).update(name=FILL_NAME)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return company


EDIT_RECENT = """
UPDATE crm_booking SET arrived_at = arrived_at + interval '1 minute', updated_at = now()
WHERE company_id = %(company)s AND scheduled_at >= now() - interval '2 days' AND arrived_at IS NOT NULL AND id %% 100 = 7
"""


def backend_cpu_seconds(connection) -> float | None:
    """CPU time (user + system) of this connection's PostgreSQL backend so far, when it runs on this machine: what a
    step cost the database whatever the other engineers' load did to the wall clock."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return _process_cpu_seconds(cursor.fetchone()[0])


def _process_cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class StatementTimer:
    """The slowest statements of a measured step (connection.execute_wrapper), with the database backend's CPU
    time each cost when it runs on this machine."""

    def __init__(self, connection=None) -> None:
        self.timings: list[tuple[float, str]] = []
        self.cpu: list[tuple[float, str]] = []
        self.pid = None
        if connection is not None:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                self.pid = cursor.fetchone()[0]

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        cpu_before = _process_cpu_seconds(self.pid) if self.pid else None
        try:
            return execute(sql, params, many, context)
        finally:
            text = " ".join(sql.split())[:90]
            self.timings.append((time.perf_counter() - started, text))
            cpu_after = _process_cpu_seconds(self.pid) if self.pid else None
            if cpu_before is not None and cpu_after is not None:
                self.cpu.append((cpu_after - cpu_before, text))

    def total(self, needle: str) -> float:
        return sum(seconds for seconds, sql in self.timings if needle in sql)

    def cpu_total(self, needle: str) -> float:
        return sum(seconds for seconds, sql in self.cpu if needle in sql)

    def top(self, n: int = 4) -> str:
        return "; ".join(f"{seconds * 1000:.0f} ms {sql}" for seconds, sql in sorted(self.timings, reverse=True)[:n])


def _spent(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


def run() -> None:
    import django

    django.setup()
    from django.db import connection

    from coaching import punctuality
    from coaching.models import BookingPunctuality, CoachingRecipient, CoachingRun, WorkerPunctuality
    from coaching.punctuality import local_today, punctuality_backfill, punctuality_daily
    from coaching.runs import _rules, coaching_settings_for, run_select
    from crm.models import Booking

    company = _fill(dt.date.today())
    today = local_today(company)
    bookings = Booking.objects.filter(company=company).count()
    scale = FULL_BOOKINGS / bookings
    worker_scale = FULL_WORKERS / WORKERS
    CoachingRecipient.objects.filter(company=company).delete()
    CoachingRun.objects.filter(company=company).delete()
    BookingPunctuality.objects.filter(company=company).delete()
    WorkerPunctuality.objects.filter(company=company).delete()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE coaching_bookingpunctuality")

    loads, cpu, python_cpu = {}, {}, {}
    loads["backfill"] = os.getloadavg()
    # The slices are classified on their own connections (punctuality.SQL_PARALLEL): each slice's backend CPU is
    # read around it, on the connection of the thread that runs it.
    slice_cpu: list[float] = []
    classify_range = punctuality.bookings_classify_range

    def measured_classify_range(**kwargs):
        before = backend_cpu_seconds(connection)
        try:
            return classify_range(**kwargs)
        finally:
            spent = _spent(before, backend_cpu_seconds(connection))
            if spent is not None:
                slice_cpu.append(spent)

    punctuality.bookings_classify_range = measured_classify_range
    cpu_before, process_before = backend_cpu_seconds(connection), time.process_time()
    timer = StatementTimer(connection)
    started = time.perf_counter()
    try:
        with connection.execute_wrapper(timer):
            backfill = punctuality_backfill(company=company, as_of=today - dt.timedelta(days=1))
    finally:
        punctuality.bookings_classify_range = classify_range
    backfill_s = time.perf_counter() - started
    main_cpu = _spent(cpu_before, backend_cpu_seconds(connection))
    cpu["backfill"] = None if main_cpu is None else main_cpu + sum(slice_cpu)
    python_cpu["backfill"] = time.process_time() - process_before
    # The bookings' classification grows with the bookings; the workers' stats read their last 28 days (already
    # the full 100k workers' 2.8M bookings at the issue's size): projected apart.
    # The classification is the time the main connection was not running the stats (or anything else).
    classify_s = backfill_s - sum(seconds for seconds, _sql in timer.timings)
    classify_cpu = sum(slice_cpu)
    backfill_projected = classify_s * scale + (backfill_s - classify_s) * worker_scale
    backfill_cpu_projected = (classify_cpu * scale + (cpu["backfill"] - classify_cpu) * worker_scale
                              if cpu["backfill"] is not None else None)
    print(f"backfill: {backfill}; classification {classify_s:.1f} s (CPU {classify_cpu:.1f} s, "
          f"{len(slice_cpu)} slices on {punctuality.SQL_PARALLEL} connections); "
          f"slowest: {timer.top(7)}", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE coaching_bookingpunctuality")
        cursor.execute("VACUUM ANALYZE coaching_workerpunctuality")
        cursor.execute(EDIT_RECENT, {"company": company.pk})
        edited = cursor.rowcount

    loads["daily"] = os.getloadavg()
    timer = StatementTimer(connection)
    cpu_before, process_before = backend_cpu_seconds(connection), time.process_time()
    started = time.perf_counter()
    with connection.execute_wrapper(timer):
        daily = punctuality_daily(company=company)
    daily_s = time.perf_counter() - started
    cpu["daily"] = _spent(cpu_before, backend_cpu_seconds(connection))
    python_cpu["daily"] = time.process_time() - process_before
    print(f"daily: {daily} ({edited} edited); slowest: {timer.top()}", flush=True)

    row = coaching_settings_for(company=company)
    run = CoachingRun.objects.create(company=company, is_dry_run=True, rules=_rules(row), as_of=today,
                                     trigger="bench")
    loads["select"] = os.getloadavg()
    timer = StatementTimer(connection)
    cpu_before, process_before = backend_cpu_seconds(connection), time.process_time()
    started = time.perf_counter()
    with connection.execute_wrapper(timer):
        selected = run_select(run=run)
    select_s = time.perf_counter() - started
    cpu["select"] = _spent(cpu_before, backend_cpu_seconds(connection))
    python_cpu["select"] = time.process_time() - process_before
    candidates_s = timer.total('FROM "coaching_workerpunctuality"')
    skips_s = timer.total("INSERT INTO coaching_coachingrecipient")
    inserts_cpu = timer.cpu_total("INSERT INTO coaching_coachingrecipient")
    print(f"selection: {selected}; slowest: {timer.top(6)}", flush=True)
    CoachingRun.objects.filter(pk=run.pk).update(status="cancelled")

    def load(step: str) -> str:
        spent = f"; CPU: database {cpu[step]:.2f} s, Python {python_cpu[step]:.2f} s" if cpu.get(step) is not None else ""
        return "load average before: " + "/".join(f"{value:.1f}" for value in loads[step]) + spent

    size = f"{WORKERS:,} workers, {bookings:,} bookings"
    figures = [
        {"figure": f"full backfill projected to 10M bookings and 100k workers, from {size} "
                   f"({backfill['classified']:,} classified)", "value": backfill_projected, "unit": "s",
         "ceiling": 120,
         "note": f"measured {backfill_s:.1f} s, of which the classification {classify_s:.1f} s (x {scale:.2f}) and the "
                 f"workers' stats {backfill_s - classify_s:.1f} s (x {worker_scale:.2f}); projected CPU: "
                 + (f"{backfill_cpu_projected:.0f} s" if backfill_cpu_projected is not None else "n/a")
                 + f" (classification {classify_cpu:.1f} s measured, {punctuality.SQL_PARALLEL} connections); "
                 f"{load('backfill')}"},
        {"figure": f"daily incremental, {size} ({daily['classified']:,} rewritten of the last 2 days' bookings, "
                   f"{daily.get('rolled', 0):,} workers rolled, {daily['workers'] - daily.get('rolled', 0):,} recounted)",
         "value": daily_s, "unit": "s", "ceiling": 10 / worker_scale,
         "note": f"linear extrapolation to 100k workers: {daily_s * worker_scale:.1f} s (issue: 10 s); {load('daily')}"},
        {"figure": f"a run's selection, {size} ({selected['candidates']:,} candidates, "
                   f"{selected['skipped_below_pattern']:,} skip rows below the pattern)", "value": select_s * 1000,
         "unit": "ms", "ceiling": 1000 / worker_scale,
         "note": f"linear extrapolation to 100k workers: {select_s * worker_scale:.2f} s (issue: 1 s); {load('select')}; "
                 f"of which the two INSERT ... SELECT {skips_s * 1000:.0f} ms (database CPU {inserts_cpu:.2f} s)"},
        {"figure": f"the selection's query: the candidates from the stored windows (rollup), {size}",
         "value": candidates_s * 1000, "unit": "ms", "ceiling": 1000 / worker_scale,
         "note": f"one indexed read; linear extrapolation to 100k workers: {candidates_s * worker_scale * 1000:.0f} ms"},
    ]
    for figure in figures:
        print(f"{figure['figure']}: {figure['value']:.2f} {figure['unit']} ({figure['note']})", flush=True)
    Path(os.environ["BENCH_COACHING_OUTPUT"]).write_text(json.dumps(figures))


def _write_section(figures: list[dict], elapsed: float) -> None:
    sys.path.insert(0, str(BASE_DIR / "bench"))
    import run_all

    run_all.section_write(NAME, figures, elapsed)


if __name__ == "__main__":
    sys.path.insert(0, str(BASE_DIR))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shokti.settings")
    if os.environ.get("BENCH_COACHING_OUTPUT"):
        run()
    else:
        started = time.perf_counter()
        figures = main()
        _write_section(figures, time.perf_counter() - started)
