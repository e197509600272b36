"""PostgreSQL's set-based twins of coaching.punctuality's Python loops (the same rules, a test holds them equal):
a slice of bookings classified in one `INSERT ... SELECT ... ON CONFLICT`, and workers' rolling stats in one
grouped `INSERT ... SELECT ... ON CONFLICT`. SQLite (the embedded default) runs the Python loops."""

from __future__ import annotations

import datetime as dt

from django.db import connection

CLASSIFIABLE = """(
    (b.status = 'cancelled' AND (b.cancelled_by = 'worker' OR (b.cancelled_by = 'system' AND b.arrived_at IS NULL)))
    OR (b.status <> 'cancelled' AND b.arrived_at IS NOT NULL)
)"""
MINUTES = "floor(extract(epoch FROM (b.arrived_at - b.scheduled_at)) / 60)"

CLASSIFY = f"""
INSERT INTO coaching_bookingpunctuality AS p (booking_id, company_id, worker_id, scheduled_at, local_date, outcome,
    minutes_late, is_excused, excused_reason, excused_by_id, excused_at, computed_at)
SELECT b.id, b.company_id, b.worker_id, b.scheduled_at, (b.scheduled_at AT TIME ZONE %(zone)s)::date,
    CASE WHEN b.status = 'cancelled' AND b.cancelled_by = 'worker' THEN 'cancelled_by_worker'
         WHEN b.status = 'cancelled' THEN 'no_show'
         WHEN {MINUTES} > %(grace)s THEN 'late' ELSE 'on_time' END,
    CASE WHEN b.status = 'cancelled' THEN 0 ELSE GREATEST(0, {MINUTES})::int END,
    false, '', NULL, NULL, now()
FROM crm_booking AS b
WHERE b.company_id = %(company)s AND {{selection}} AND b.worker_id IS NOT NULL
  AND {CLASSIFIABLE}
ON CONFLICT (booking_id) DO UPDATE SET worker_id = EXCLUDED.worker_id, scheduled_at = EXCLUDED.scheduled_at,
    local_date = EXCLUDED.local_date, outcome = EXCLUDED.outcome, minutes_late = EXCLUDED.minutes_late,
    computed_at = EXCLUDED.computed_at
-- A row that would not change is not rewritten (and not returned: its worker's windows did not move).
WHERE (p.worker_id, p.scheduled_at, p.local_date, p.outcome, p.minutes_late)
    IS DISTINCT FROM (EXCLUDED.worker_id, EXCLUDED.scheduled_at, EXCLUDED.local_date, EXCLUDED.outcome,
                      EXCLUDED.minutes_late)
{{returning}}
"""
UNCLASSIFIABLE_DELETE = f"""
DELETE FROM coaching_bookingpunctuality AS p USING crm_booking AS b
WHERE p.booking_id = b.id AND b.company_id = %(company)s AND {{selection}}
  AND (b.worker_id IS NULL OR NOT {CLASSIFIABLE})
{{returning}}
"""


# The workers a reassigned booking leaves (the upsert returns only the worker it goes to).
LEAVING_WORKERS = """
SELECT DISTINCT p.worker_id FROM coaching_bookingpunctuality AS p JOIN crm_booking AS b ON b.id = p.booking_id
WHERE b.company_id = %(company)s AND {selection} AND p.worker_id IS DISTINCT FROM b.worker_id
"""

BY_RANGE = "b.id > %(after)s AND b.id <= %(upto)s"
BY_CHANGE = ("(b.updated_at >= %(since)s OR (b.scheduled_at >= %(recent)s AND b.scheduled_at <= %(now)s))")


def _classify(selection: str, params: dict, *, returning: bool = False) -> tuple[int, set[int]]:
    """(rows written, the workers whose rows were written or deleted: only with `returning`)."""
    tail = "RETURNING p.worker_id" if returning else ""
    workers: set[int] = set()
    with connection.cursor() as cursor:
        if returning:
            cursor.execute(LEAVING_WORKERS.format(selection=selection), params)
            workers.update(row[0] for row in cursor.fetchall())
        cursor.execute(UNCLASSIFIABLE_DELETE.format(selection=selection, returning=tail), params)
        if returning:
            workers.update(row[0] for row in cursor.fetchall())
        cursor.execute(CLASSIFY.format(selection=selection, returning=tail), params)
        written = cursor.rowcount
        if returning:
            workers.update(row[0] for row in cursor.fetchall())
        return written, workers


def bookings_classify_range(*, company_id: int, zone: str, grace: int, after: int, upto: int) -> int:
    """The bookings with ids in (after, upto] (the backfill's slices)."""
    return _classify(BY_RANGE, {"company": company_id, "zone": zone, "grace": grace, "after": after,
                                "upto": upto})[0]


def bookings_classify_changed(*, company_id: int, zone: str, grace: int, since: dt.datetime, recent: dt.datetime,
                              now: dt.datetime) -> tuple[int, set[int]]:
    """The bookings changed since `since` or scheduled in [recent, now] (the daily refresh): (rows written or
    rewritten, the workers whose rows changed)."""
    return _classify(BY_CHANGE, {"company": company_id, "zone": zone, "grace": grace, "since": since,
                                 "recent": recent, "now": now}, returning=True)


def _window(prefix: str, condition: str) -> str:
    counted = f"{condition} AND NOT is_excused"
    return f"""
    count(*) FILTER (WHERE {counted}) AS bookings_{prefix},
    count(*) FILTER (WHERE {counted} AND outcome = 'on_time') AS on_time_{prefix},
    count(*) FILTER (WHERE {counted} AND outcome <> 'on_time') AS late_{prefix},
    coalesce(sum(minutes_late) FILTER (WHERE {counted} AND outcome = 'late'), 0) AS late_minutes_{prefix},
    count(*) FILTER (WHERE {counted} AND outcome = 'late') AS late_arrivals_{prefix},
    count(*) FILTER (WHERE {condition} AND is_excused AND outcome <> 'on_time') AS excused_{prefix}"""


def _rate(prefix: str) -> str:
    return f"round(100.0 * coalesce(agg.on_time_{prefix}, 0) / NULLIF(agg.bookings_{prefix}, 0), 1)"


STATS_FIELDS = [f"{name}_{window}" for window in ("14", "28")
                for name in ("bookings", "on_time", "late", "late_minutes", "late_arrivals", "excused")]
STATS = f"""
WITH agg AS (
    SELECT worker_id, {_window("14", "local_date >= %(start_14)s")}, {_window("28", "true")},
        {_window("prev", "local_date < %(start_14)s")}
    FROM coaching_bookingpunctuality
    WHERE company_id = %(company)s AND worker_id = ANY(%(workers)s::bigint[]) AND local_date >= %(start_28)s
      AND local_date <= %(as_of)s
    GROUP BY worker_id
)
INSERT INTO coaching_workerpunctuality (worker_id, company_id, as_of, {", ".join(STATS_FIELDS)},
    on_time_rate_14, on_time_rate_28, trend, channel, updated_at)
SELECT w.id, %(company)s, %(as_of)s, {", ".join(f"coalesce(agg.{field}, 0)" for field in STATS_FIELDS)},
    {_rate("14")}, {_rate("28")}, round({_rate("14")} - {_rate("prev")}, 1), '', now()
FROM unnest(%(workers)s::bigint[]) AS w(id) LEFT JOIN agg ON agg.worker_id = w.id
ON CONFLICT (worker_id) DO UPDATE SET as_of = EXCLUDED.as_of, updated_at = EXCLUDED.updated_at,
    on_time_rate_14 = EXCLUDED.on_time_rate_14, on_time_rate_28 = EXCLUDED.on_time_rate_28, trend = EXCLUDED.trend,
    {", ".join(f"{field} = EXCLUDED.{field}" for field in STATS_FIELDS)}
"""


def worker_stats_upsert(*, company_id: int, worker_ids: list[int], as_of: dt.date) -> int:
    params = {"company": company_id, "workers": worker_ids, "as_of": as_of,
              "start_14": as_of - dt.timedelta(days=13), "start_28": as_of - dt.timedelta(days=27)}
    with connection.cursor() as cursor:
        cursor.execute(STATS, params)
        return cursor.rowcount


# The windows rolled by one day, from yesterday's stats: the day that enters (as_of) added, the days that leave
# (as_of - 14 for the 14-day window, as_of - 28 for the 28-day one) taken off. Only for rows computed for
# yesterday whose bookings did not change since (the caller leaves those out); the rest are recomputed.
def _day(prefix: str, day: str) -> str:
    return f"""
    count(*) FILTER (WHERE local_date = {day} AND NOT is_excused) AS bookings_{prefix},
    count(*) FILTER (WHERE local_date = {day} AND NOT is_excused AND outcome = 'on_time') AS on_time_{prefix},
    count(*) FILTER (WHERE local_date = {day} AND NOT is_excused AND outcome <> 'on_time') AS late_{prefix},
    coalesce(sum(minutes_late) FILTER (WHERE local_date = {day} AND NOT is_excused AND outcome = 'late'), 0)
        AS late_minutes_{prefix},
    count(*) FILTER (WHERE local_date = {day} AND NOT is_excused AND outcome = 'late') AS late_arrivals_{prefix},
    count(*) FILTER (WHERE local_date = {day} AND is_excused AND outcome <> 'on_time') AS excused_{prefix}"""


DAY_FIELDS = ("bookings", "on_time", "late", "late_minutes", "late_arrivals", "excused")


def _rolled_value(field: str, window: str) -> str:
    leaving = "out14" if window == "14" else "out28"
    return f"(w.{field}_{window} + coalesce(d.{field}_in, 0) - coalesce(d.{field}_{leaving}, 0))"


def _ratio(on_time: str, bookings: str) -> str:
    return f"round(100.0 * {on_time} / NULLIF({bookings}, 0), 1)"


_RATE_14 = _ratio(_rolled_value("on_time", "14"), _rolled_value("bookings", "14"))
_RATE_28 = _ratio(_rolled_value("on_time", "28"), _rolled_value("bookings", "28"))
# The 14 days before the last 14 (the trend's base): the 28-day window minus the 14-day one.
_RATE_PREV = _ratio(f"({_rolled_value('on_time', '28')} - {_rolled_value('on_time', '14')})",
                    f"({_rolled_value('bookings', '28')} - {_rolled_value('bookings', '14')})")

ROLL = f"""
UPDATE coaching_workerpunctuality AS w SET as_of = %(as_of)s, updated_at = now(),
    {", ".join(f"{field}_{window} = {_rolled_value(field, window)}" for window in ("14", "28") for field in DAY_FIELDS)},
    on_time_rate_14 = {_RATE_14}, on_time_rate_28 = {_RATE_28}, trend = round({_RATE_14} - {_RATE_PREV}, 1)
FROM coaching_workerpunctuality AS old
LEFT JOIN (
    SELECT worker_id, {_day("in", "%(as_of)s")}, {_day("out14", "%(out_14)s")}, {_day("out28", "%(out_28)s")}
    FROM coaching_bookingpunctuality
    WHERE company_id = %(company)s AND local_date IN (%(as_of)s, %(out_14)s, %(out_28)s)
    GROUP BY worker_id
) AS d ON d.worker_id = old.worker_id
WHERE w.worker_id = old.worker_id AND old.company_id = %(company)s AND old.as_of = %(yesterday)s
  AND NOT (old.worker_id = ANY(%(changed)s::bigint[]))
"""


def worker_stats_roll(*, company_id: int, as_of: dt.date, changed: list[int]) -> int:
    """Roll yesterday's stats of the company's workers to `as_of` (those in `changed` are left out)."""
    params = {"company": company_id, "as_of": as_of, "yesterday": as_of - dt.timedelta(days=1),
              "out_14": as_of - dt.timedelta(days=14), "out_28": as_of - dt.timedelta(days=28), "changed": changed}
    with connection.cursor() as cursor:
        cursor.execute(ROLL, params)
        return cursor.rowcount
