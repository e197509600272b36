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
INSERT INTO coaching_bookingpunctuality (booking_id, company_id, worker_id, scheduled_at, local_date, outcome,
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
"""
UNCLASSIFIABLE_DELETE = f"""
DELETE FROM coaching_bookingpunctuality AS p USING crm_booking AS b
WHERE p.booking_id = b.id AND b.company_id = %(company)s AND {{selection}}
  AND (b.worker_id IS NULL OR NOT {CLASSIFIABLE})
"""


BY_RANGE = "b.id > %(after)s AND b.id <= %(upto)s"
BY_CHANGE = ("(b.updated_at >= %(since)s OR (b.scheduled_at >= %(recent)s AND b.scheduled_at <= %(now)s))")


def _classify(selection: str, params: dict) -> int:
    with connection.cursor() as cursor:
        cursor.execute(UNCLASSIFIABLE_DELETE.format(selection=selection), params)
        cursor.execute(CLASSIFY.format(selection=selection), params)
        return cursor.rowcount


def bookings_classify_range(*, company_id: int, zone: str, grace: int, after: int, upto: int) -> int:
    """The bookings with ids in (after, upto] (the backfill's slices)."""
    return _classify(BY_RANGE, {"company": company_id, "zone": zone, "grace": grace, "after": after, "upto": upto})


def bookings_classify_changed(*, company_id: int, zone: str, grace: int, since: dt.datetime, recent: dt.datetime,
                              now: dt.datetime) -> int:
    """The bookings changed since `since` or scheduled in [recent, now] (the daily refresh)."""
    return _classify(BY_CHANGE, {"company": company_id, "zone": zone, "grace": grace, "since": since,
                                 "recent": recent, "now": now})


def _window(prefix: str, condition: str) -> str:
    return f"""
    count(*) FILTER (WHERE {condition}) AS bookings_{prefix},
    count(*) FILTER (WHERE {condition} AND outcome = 'on_time') AS on_time_{prefix},
    count(*) FILTER (WHERE {condition} AND outcome <> 'on_time') AS late_{prefix},
    coalesce(sum(minutes_late) FILTER (WHERE {condition} AND outcome = 'late'), 0) AS late_minutes_{prefix},
    count(*) FILTER (WHERE {condition} AND outcome = 'late') AS late_arrivals_{prefix}"""


def _rate(prefix: str) -> str:
    return f"round(100.0 * coalesce(agg.on_time_{prefix}, 0) / NULLIF(agg.bookings_{prefix}, 0), 1)"


STATS_FIELDS = [f"{name}_{window}" for window in ("14", "28")
                for name in ("bookings", "on_time", "late", "late_minutes", "late_arrivals")]
STATS = f"""
WITH agg AS (
    SELECT worker_id, {_window("14", "local_date >= %(start_14)s")}, {_window("28", "true")},
        {_window("prev", "local_date < %(start_14)s")}
    FROM coaching_bookingpunctuality
    WHERE worker_id = ANY(%(workers)s) AND NOT is_excused AND local_date >= %(start_28)s AND local_date <= %(as_of)s
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
