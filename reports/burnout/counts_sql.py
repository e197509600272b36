"""Every worker's burnout numbers (`rules.Counts`) from one company's bookings in one grouped PostgreSQL query: the
hourly evaluation's reading at scale (docs/burnout.md, "At scale"). The same definitions as `rules.counts_of`, in
SQL: a job is a booking with a worker, scheduled in the window; it starts at `started_at` (else `scheduled_at`) and
ends at `finished_at` when after the start, else after the service's duration (60 minutes when none); its local day
is its start's date in the company's time zone; jobs not cancelled and started by now are worked.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django.db import connection

from crm.models import Booking
from reports.burnout.rules import Counts, Thresholds, Windows

COUNTS_SQL = """
WITH jobs AS (
    SELECT b.id, b.worker_id, b.scheduled_at, b.arrived_at, b.rating, b.zone, COALESCE(s.category, '') AS category,
           b.status = %(cancelled)s AS cancelled, b.status = %(cancelled)s AND b.cancelled_by = %(by_worker)s
               AS cancelled_by_worker,
           COALESCE(b.started_at, b.scheduled_at) AS starts,
           CASE WHEN b.finished_at > COALESCE(b.started_at, b.scheduled_at) THEN b.finished_at
                ELSE COALESCE(b.started_at, b.scheduled_at)
                     + make_interval(mins => COALESCE(NULLIF(s.duration_minutes, 0), 60)) END AS ends
    FROM crm_booking AS b
    JOIN crm_service AS s ON s.id = b.service_id
    WHERE b.company_id = %(company)s AND b.worker_id IS NOT NULL
      AND b.scheduled_at >= %(since)s AND b.scheduled_at <= %(now)s
), dated AS (
    SELECT jobs.*, (starts AT TIME ZONE %(tz)s)::date AS day, starts AT TIME ZONE %(tz)s AS local_start,
           ends AT TIME ZONE %(tz)s AS local_end, starts <= %(now)s AS past,
           NOT cancelled AND starts <= %(now)s AS worked,
           LAG(ends) OVER (PARTITION BY worker_id, NOT cancelled AND starts <= %(now)s
                           ORDER BY starts, ends, id) AS previous_end
    FROM jobs
)
SELECT worker_id,
       COALESCE(SUM(EXTRACT(EPOCH FROM LEAST(ends, %(now)s) - starts))
                FILTER (WHERE worked AND day >= %(week)s), 0) AS seconds_7d,
       COUNT(*) FILTER (WHERE worked AND day >= %(week)s) AS jobs_7d,
       COALESCE(ARRAY_AGG(DISTINCT day) FILTER (WHERE worked), '{}') AS days,
       COUNT(*) FILTER (WHERE worked AND day >= %(week)s
                        AND (local_start::time < time '05:00'
                             OR local_end > local_start::date + make_interval(hours => %(night_hour)s)))
           AS late_night_7d,
       COUNT(*) FILTER (WHERE worked AND day >= %(week)s AND starts - previous_end < make_interval(mins => %(gap)s))
           AS back_to_back_7d,
       COUNT(*) FILTER (WHERE past AND cancelled_by_worker AND day >= %(recent)s) AS cancels_recent,
       COUNT(*) FILTER (WHERE past AND cancelled_by_worker AND day >= %(previous)s AND day < %(recent)s)
           AS cancels_previous,
       COALESCE(SUM(rating) FILTER (WHERE worked AND day >= %(recent)s), 0) AS rating_sum_recent,
       COUNT(rating) FILTER (WHERE worked AND day >= %(recent)s) AS ratings_recent,
       COALESCE(SUM(rating) FILTER (WHERE worked AND day >= %(previous)s AND day < %(recent)s), 0)
           AS rating_sum_previous,
       COUNT(rating) FILTER (WHERE worked AND day >= %(previous)s AND day < %(recent)s) AS ratings_previous,
       COUNT(*) FILTER (WHERE worked AND arrived_at - scheduled_at > make_interval(mins => %(grace)s)
                        AND day >= %(recent)s) AS late_recent,
       COUNT(*) FILTER (WHERE worked AND arrived_at - scheduled_at > make_interval(mins => %(grace)s)
                        AND day >= %(previous)s AND day < %(recent)s) AS late_previous,
       COALESCE(MODE() WITHIN GROUP (ORDER BY zone) FILTER (WHERE worked AND zone <> '' AND day >= %(previous)s), '')
           AS main_zone,
       COALESCE(MODE() WITHIN GROUP (ORDER BY category)
                FILTER (WHERE worked AND category <> '' AND day >= %(previous)s), '') AS main_category
FROM dated
GROUP BY worker_id
"""


def counts_by_worker(*, company, thresholds: Thresholds, zone: ZoneInfo, since: dt.datetime,
                     now: dt.datetime) -> dict[int, Counts]:
    """worker id -> their numbers, for every worker with a booking scheduled in [since, now]."""
    windows = Windows.at(now, zone)
    params = {
        "company": company.pk, "since": since, "now": now, "tz": str(zone),
        "cancelled": Booking.Status.CANCELLED, "by_worker": Booking.CancelledBy.WORKER,
        "week": windows.week_start, "recent": windows.recent_start, "previous": windows.previous_start,
        "night_hour": thresholds.late_night_hour, "gap": thresholds.back_to_back_gap_minutes,
        "grace": thresholds.late_grace_minutes,
    }
    with connection.cursor() as cursor:
        cursor.execute(COUNTS_SQL, params)
        rows = cursor.fetchall()
    return {
        row[0]: Counts(
            hours_7d=float(row[1]) / 3600, jobs_7d=row[2], worked_days=set(row[3]), late_night_jobs_7d=row[4],
            back_to_back_pairs_7d=row[5], cancellations_14d=row[6], cancellations_previous_14d=row[7],
            rating_sum_14d=int(row[8]), ratings_14d=row[9], rating_sum_previous_14d=int(row[10]),
            ratings_previous_14d=row[11], late_arrivals_14d=row[12], late_arrivals_previous_14d=row[13],
            zone=row[14], category=row[15],
        )
        for row in rows
    }
