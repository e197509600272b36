"""Punctuality from bookings: one row per booking (on time, late, no-show, cancelled by the worker), and per worker
the rolling 14- and 28-day stats, in company-local days (Asia/Dhaka by default).

Incremental, never the whole history again:
- a booking reported completed (crm's `booking.completed` event) queues `coaching_punctuality_bookings` for it;
- the daily beat (`coaching.punctuality_daily`) classifies the bookings changed since the company's watermark
  (`updated_at`) or scheduled in the last two days, and refreshes the stats of the workers with a booking in the
  last 28 days (the windows roll, so those are the only ones whose numbers can change). On PostgreSQL the windows
  of a worker whose stats were computed for yesterday and whose bookings did not change are rolled by one day
  (today's bookings added, those of 14 and 28 days ago taken off: three days read, not 28); the others are
  recomputed from their 28 days;
- `manage.py coaching_backfill` classifies a whole company once, in slices of bookings by id.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import Exists, Max, Min, OuterRef, Q
from django.utils import timezone

from coaching.models import BookingPunctuality, CoachingSettings, WorkerPunctuality
from coaching.punctuality_sql import (
    bookings_classify_changed,
    bookings_classify_range,
    worker_stats_roll,
    worker_stats_upsert,
)
from crm.models import Booking, Company, Worker

Outcome = BookingPunctuality.Outcome
LATE_OUTCOMES = (Outcome.LATE, Outcome.NO_SHOW, Outcome.CANCELLED_BY_WORKER)
SLICE = 5000
SQL_SLICE = 200_000  # booking ids per statement of the PostgreSQL backfill
# Workers per statement of the PostgreSQL stats: each statement reads the company's 28 days once, so the backfill's
# 100k workers are one pass, not five.
SQL_WORKERS = 100_000
SQL_PARALLEL = 2  # connections classifying the backfill's slices at once
# Tests set it to run the Python loops on PostgreSQL too (the two paths are held equal).
PYTHON_ONLY = False
BOOKING_FIELDS = ("id", "worker_id", "status", "scheduled_at", "arrived_at", "cancelled_by")


def coaching_settings_for(*, company: Company) -> CoachingSettings:
    settings_row, _ = CoachingSettings.objects.get_or_create(company=company)
    return settings_row


def company_zone(company: Company) -> ZoneInfo:
    try:
        return ZoneInfo(company.timezone or "Asia/Dhaka")
    except Exception:  # an unknown zone name: the product's home
        return ZoneInfo("Asia/Dhaka")


def local_today(company: Company, *, at: dt.datetime | None = None) -> dt.date:
    return (at or timezone.now()).astimezone(company_zone(company)).date()


def booking_outcome(
    *, status: str, scheduled_at: dt.datetime, arrived_at: dt.datetime | None, cancelled_by: str, grace_minutes: int,
) -> tuple[str, int] | None:
    """(outcome, minutes late) of one booking, or None while it says nothing about punctuality yet (scheduled,
    or cancelled by the customer or the company)."""
    if status == Booking.Status.CANCELLED:
        if cancelled_by == Booking.CancelledBy.WORKER:
            return Outcome.CANCELLED_BY_WORKER, 0
        if cancelled_by == Booking.CancelledBy.SYSTEM and arrived_at is None:
            return Outcome.NO_SHOW, 0
        return None
    if arrived_at is None:
        return None
    minutes = max(0, int((arrived_at - scheduled_at).total_seconds() // 60))
    return (Outcome.LATE if minutes > grace_minutes else Outcome.ON_TIME), minutes


def bookings_classify(*, company: Company, bookings: Iterable[dict], grace_minutes: int | None = None) -> int:
    """Write the punctuality rows of these bookings (dicts of BOOKING_FIELDS); keeps a manager's excuse.

    A booking that no longer says anything (moved back to scheduled, cancelled by the customer) loses its row.
    """
    grace = coaching_settings_for(company=company).grace_minutes if grace_minutes is None else grace_minutes
    zone = company_zone(company)
    stamp = timezone.now()
    rows, gone = [], []
    for booking in bookings:
        if booking["worker_id"] is None:
            gone.append(booking["id"])
            continue
        result = booking_outcome(
            status=booking["status"], scheduled_at=booking["scheduled_at"], arrived_at=booking["arrived_at"],
            cancelled_by=booking["cancelled_by"], grace_minutes=grace,
        )
        if result is None:
            gone.append(booking["id"])
            continue
        rows.append(BookingPunctuality(
            booking_id=booking["id"], company_id=company.pk, worker_id=booking["worker_id"],
            scheduled_at=booking["scheduled_at"], local_date=booking["scheduled_at"].astimezone(zone).date(),
            outcome=result[0], minutes_late=result[1], computed_at=stamp,
        ))
    with transaction.atomic():
        if gone:
            BookingPunctuality.objects.filter(company=company, booking_id__in=gone).delete()
        BookingPunctuality.objects.bulk_create(
            rows, batch_size=2000, update_conflicts=True, unique_fields=["booking"],
            update_fields=["worker", "scheduled_at", "local_date", "outcome", "minutes_late", "computed_at"],
        )
    return len(rows)


def punctuality_bookings_refresh(*, company: Company, booking_ids: list[int], as_of: dt.date | None = None) -> int:
    """Classify these bookings and refresh their workers' stats (the booking-completion path)."""
    bookings = list(Booking.objects.filter(company=company, pk__in=booking_ids).values(*BOOKING_FIELDS))
    count = bookings_classify(company=company, bookings=bookings)
    workers = {booking["worker_id"] for booking in bookings if booking["worker_id"]}
    workers |= set(BookingPunctuality.objects.filter(booking_id__in=booking_ids).values_list("worker_id", flat=True))
    worker_stats_refresh(company=company, worker_ids=sorted(workers), as_of=as_of)
    return count


def _window_counts(rows: Iterable[tuple], *, as_of: dt.date) -> dict[int, dict[str, int]]:
    start_14 = as_of - dt.timedelta(days=13)
    start_28 = as_of - dt.timedelta(days=27)
    stats: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for worker_id, local_date, outcome, minutes, is_excused in rows:
        if not start_28 <= local_date <= as_of:
            continue
        windows = ("14", "28") if local_date >= start_14 else ("28", "prev")
        for window in windows:
            stat = stats[worker_id]
            if is_excused:
                if outcome != Outcome.ON_TIME:
                    stat[f"excused_{window}"] += 1
                continue
            stat[f"bookings_{window}"] += 1
            if outcome == Outcome.ON_TIME:
                stat[f"on_time_{window}"] += 1
            else:
                stat[f"late_{window}"] += 1
                if outcome == Outcome.LATE:
                    stat[f"late_arrivals_{window}"] += 1
                    stat[f"late_minutes_{window}"] += minutes
    return stats


def _rate(on_time: int, total: int) -> float | None:
    return round(100.0 * on_time / total, 1) if total else None


def worker_stats_refresh(*, company: Company, worker_ids: Iterable[int], as_of: dt.date | None = None) -> int:
    """Recompute the rolling stats of these workers from their last 28 days of punctuality rows (not excused)."""
    as_of = as_of or local_today(company)
    worker_ids = list(worker_ids)
    written = 0
    if connection.vendor == "postgresql" and not PYTHON_ONLY:
        for start in range(0, len(worker_ids), SQL_WORKERS):
            with transaction.atomic(), connection.cursor() as cursor:
                # 100k workers' groups hashed in memory, not spilled to disk (4 MB by default).
                cursor.execute("SET LOCAL work_mem = '64MB'")
                written += worker_stats_upsert(company_id=company.pk, as_of=as_of,
                                               worker_ids=worker_ids[start:start + SQL_WORKERS])
        return written
    for start in range(0, len(worker_ids), SLICE):
        chunk = worker_ids[start:start + SLICE]
        rows = BookingPunctuality.objects.filter(
            worker_id__in=chunk, local_date__gte=as_of - dt.timedelta(days=27), local_date__lte=as_of,
        ).values_list("worker_id", "local_date", "outcome", "minutes_late", "is_excused")
        stats = _window_counts(rows.iterator(chunk_size=10000), as_of=as_of)
        stamp = timezone.now()
        objects = []
        for worker_id in chunk:
            stat = stats.get(worker_id, {})
            rate_14 = _rate(stat.get("on_time_14", 0), stat.get("bookings_14", 0))
            rate_prev = _rate(stat.get("on_time_prev", 0), stat.get("bookings_prev", 0))
            objects.append(WorkerPunctuality(
                worker_id=worker_id, company_id=company.pk, as_of=as_of, updated_at=stamp,
                on_time_rate_14=rate_14, on_time_rate_28=_rate(stat.get("on_time_28", 0), stat.get("bookings_28", 0)),
                trend=round(rate_14 - rate_prev, 1) if rate_14 is not None and rate_prev is not None else None,
                **{field: stat.get(field, 0) for field in STAT_FIELDS},
            ))
        WorkerPunctuality.objects.bulk_create(
            objects, batch_size=2000, update_conflicts=True, unique_fields=["worker"],
            update_fields=["as_of", "updated_at", "on_time_rate_14", "on_time_rate_28", "trend", *STAT_FIELDS],
        )
        written += len(objects)
    return written


STAT_FIELDS = tuple(
    f"{name}_{window}" for window in ("14", "28")
    for name in ("bookings", "on_time", "late", "late_minutes", "late_arrivals", "excused")
)


def punctuality_daily(*, company: Company, now: dt.datetime | None = None) -> dict[str, int]:
    """The daily incremental refresh of one company (see the module's docstring)."""
    now = now or timezone.now()
    row = coaching_settings_for(company=company)
    as_of = local_today(company, at=now)
    since = row.punctuality_refreshed_at
    changed = Q(scheduled_at__gte=now - dt.timedelta(days=2), scheduled_at__lte=now)
    if since is not None:
        changed |= Q(updated_at__gte=since)
    if connection.vendor == "postgresql" and not PYTHON_ONLY:
        with transaction.atomic():
            classified, changed = bookings_classify_changed(
                company_id=company.pk, zone=str(company_zone(company)), grace=row.grace_minutes,
                since=since or now - dt.timedelta(days=2), recent=now - dt.timedelta(days=2), now=now)
            rolled = worker_stats_roll(company_id=company.pk, as_of=as_of, changed=sorted(changed))
        # The rest: workers whose bookings changed, and rows not computed for yesterday (a missed day); the first
        # refresh (no watermark) computes every worker with a booking in the windows.
        stale = set(WorkerPunctuality.objects.filter(company=company).exclude(as_of=as_of)
                    .values_list("worker_id", flat=True))
        if since is None:
            stale |= set(_workers_in_windows(company, as_of))
        refreshed = rolled + worker_stats_refresh(company=company, worker_ids=sorted(changed | stale), as_of=as_of)
        CoachingSettings.objects.filter(pk=row.pk).update(punctuality_refreshed_at=now)
        return {"classified": classified, "workers": refreshed, "rolled": rolled}
    bookings = Booking.objects.filter(changed, company=company).values(*BOOKING_FIELDS)
    classified = bookings_classify(company=company, bookings=bookings.iterator(chunk_size=SLICE),
                                   grace_minutes=row.grace_minutes)
    workers = _workers_in_windows(company, as_of)
    refreshed = worker_stats_refresh(company=company, worker_ids=list(workers), as_of=as_of)
    # Workers who fell out of every window keep an honest empty row.
    stale = WorkerPunctuality.objects.filter(company=company, as_of__lt=as_of).values_list("worker_id", flat=True)
    refreshed += worker_stats_refresh(company=company, worker_ids=list(stale), as_of=as_of)
    CoachingSettings.objects.filter(pk=row.pk).update(punctuality_refreshed_at=now)
    return {"classified": classified, "workers": refreshed}


def _workers_in_windows(company: Company, as_of: dt.date):
    return (BookingPunctuality.objects.filter(company=company, local_date__gte=as_of - dt.timedelta(days=28))
            .values_list("worker_id", flat=True).distinct())


def punctuality_backfill(*, company: Company, as_of: dt.date | None = None) -> dict[str, int]:
    """Classify every booking of the company (slices by id) and compute every worker's stats once."""
    row = coaching_settings_for(company=company)
    started = timezone.now()
    classified, last_id = 0, 0
    if connection.vendor == "postgresql" and not PYTHON_ONLY:
        bounds = Booking.objects.filter(company=company).aggregate(low=Min("pk"), high=Max("pk"))
        if bounds["high"] is not None:
            zone = str(company_zone(company))
            slices = range(bounds["low"] - 1, bounds["high"], SQL_SLICE)

            def classify(after: int, *, own_connection: bool = False) -> int:
                try:
                    with transaction.atomic(), connection.cursor() as cursor:
                        # Derived rows, rebuilt by running it again: the commit need not wait for the disk.
                        cursor.execute("SET LOCAL synchronous_commit TO OFF")
                        return bookings_classify_range(company_id=company.pk, zone=zone, grace=row.grace_minutes,
                                                       after=after, upto=after + SQL_SLICE)
                finally:
                    if own_connection:
                        connection.close()

            if len(slices) > 1 and not connection.in_atomic_block:
                # Independent slices (their own booking ids, their own transactions) on SQL_PARALLEL connections:
                # the database's CPU time is the work, one core each. Inside a caller's transaction (which the
                # other connections would not see) they run one after the other.
                with ThreadPoolExecutor(max_workers=SQL_PARALLEL) as pool:
                    classified += sum(pool.map(lambda after: classify(after, own_connection=True), slices))
            else:
                classified += sum(classify(after) for after in slices)
        with connection.cursor() as cursor:
            # Millions of rows the planner has not seen yet: the stats below are planned on the table as it is.
            cursor.execute("ANALYZE coaching_bookingpunctuality")
        last_id = None
    while last_id is not None:
        chunk = list(Booking.objects.filter(company=company, pk__gt=last_id).order_by("pk")
                     .values(*BOOKING_FIELDS)[:SLICE * 4])
        if not chunk:
            break
        classified += bookings_classify(company=company, bookings=chunk, grace_minutes=row.grace_minutes)
        last_id = chunk[-1]["id"]
    # The workers with a punctuality row: one index probe per worker, not a DISTINCT over every booking.
    workers = (Worker.objects.filter(Exists(BookingPunctuality.objects.filter(worker_id=OuterRef("pk"), company=company)))
               .order_by("pk").values_list("pk", flat=True))
    refreshed = worker_stats_refresh(company=company, worker_ids=list(workers), as_of=as_of)
    CoachingSettings.objects.filter(pk=row.pk).update(punctuality_refreshed_at=started)
    return {"classified": classified, "workers": refreshed}


def booking_excuse(*, booking_punctuality: BookingPunctuality, reason: str, actor=None) -> BookingPunctuality:
    """A manager accepts the worker's reason: the booking no longer counts; the worker's stats are refreshed."""
    with transaction.atomic():
        row = BookingPunctuality.objects.select_for_update().get(pk=booking_punctuality.pk)
        row.is_excused, row.excused_reason, row.excused_by, row.excused_at = True, reason[:200], actor, timezone.now()
        row.save(update_fields=["is_excused", "excused_reason", "excused_by", "excused_at"])
        company = Company.objects.get(pk=row.company_id)
        worker_stats_refresh(company=company, worker_ids=[row.worker_id])
    return row


def late_bookings(*, worker_id: int, start: dt.date, end: dt.date):
    """The worker's counted (not excused) late, no-show and cancelled bookings in [start, end], oldest first."""
    return (BookingPunctuality.objects.filter(
        worker_id=worker_id, local_date__gte=start, local_date__lte=end, outcome__in=LATE_OUTCOMES, is_excused=False,
    ).order_by("scheduled_at"))


def on_time_rate(*, worker_ids: Iterable[int], start: dt.date, end: dt.date) -> dict[int, tuple[int, int]]:
    """{worker_id: (on time, counted bookings)} in [start, end] (not excused)."""
    result: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    rows = BookingPunctuality.objects.filter(
        worker_id__in=list(worker_ids), local_date__gte=start, local_date__lte=end, is_excused=False,
    ).values_list("worker_id", "outcome")
    for worker_id, outcome in rows:
        result[worker_id][1] += 1
        if outcome == Outcome.ON_TIME:
            result[worker_id][0] += 1
    return {worker_id: (value[0], value[1]) for worker_id, value in result.items()}
