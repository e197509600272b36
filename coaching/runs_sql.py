"""PostgreSQL's set-based twin of coaching.runs.run_select's Python loop (the same rules, a test holds the two
paths' rows equal): a run's selection as two `INSERT ... SELECT`, one for the workers below the pattern (on time,
pattern not met, excused) and one for the candidates (inactive, burnout, already or recently coached, no consent,
no address, holdout by the same SHA-256 bucket as `holdout_bucket`, or pending), from the workers' stored windows
(ROLLUP) or, when those are not for the run's day and window, from the bookings. SQLite runs the Python loop."""

from __future__ import annotations

import datetime as dt

from django.db import connection

from crm.models import Contact

COLUMNS = """run_id, company_id, worker_id, status, reason, detail, pattern_key, booking_ids, holdout_bucket, channel,
    text, ai_outcome, message_id, voice_status, audio, reply_text, reply_reason, replied_at, accepted_at,
    accepted_by_id, on_time_before, on_time_after, created_at, processed_at"""

FROM_BOOKINGS = """
    SELECT worker_id,
        count(*) FILTER (WHERE outcome = ANY(%(late)s) AND NOT is_excused) AS late,
        count(*) FILTER (WHERE outcome = ANY(%(late)s) AND is_excused) AS excused
    FROM coaching_bookingpunctuality
    WHERE company_id = %(company)s AND local_date >= %(start)s AND local_date <= %(end)s
    GROUP BY worker_id"""
FROM_ROLLUP = """
    SELECT worker_id, late_{window} AS late, excused_{window} AS excused
    FROM coaching_workerpunctuality
    WHERE company_id = %(company)s AND as_of = %(end)s AND (bookings_{window} > 0 OR excused_{window} > 0)"""

SKIPS_INSERT = f"""
INSERT INTO coaching_coachingrecipient ({COLUMNS})
SELECT %(run)s, %(company)s, worker_id, 'skipped',
    CASE WHEN late = 0 AND excused = 0 THEN 'on_time' WHEN late + excused >= %(threshold)s THEN 'excused'
         ELSE 'pattern_not_met' END,
    CASE WHEN late + excused < %(threshold)s AND (late > 0 OR excused > 0) THEN late || ' of ' || %(threshold)s
         ELSE '' END,
    '', '[]'::jsonb, NULL, '', '', '', NULL, '', '', '', '', NULL, NULL, NULL, NULL, NULL, %(now)s, %(now)s
FROM ({{per_worker}}) AS per_worker
WHERE late < %(threshold)s
ORDER BY worker_id
"""

# holdout_bucket(): the first 8 bytes of sha256("coachnova:<run>:<worker>") as an unsigned big-endian integer, mod 100
HASH_HEAD = ("('x' || encode(substring(sha256(convert_to('coachnova:' || CAST(%(run)s AS text) || ':' "
             "|| w.id::text, 'UTF8')) FROM 1 FOR 8), 'hex'))::bit(64)::bigint")
CONSENTED = "CASE ch.channel {} ELSE false END".format(" ".join(
    f"WHEN '{channel}' THEN ct.{field}" for channel, field in Contact.CONSENT_FIELD_BY_CHANNEL.items()))

CANDIDATES_INSERT = f"""
INSERT INTO coaching_coachingrecipient ({COLUMNS})
SELECT %(run)s, %(company)s, worker_id,
    CASE reason WHEN '' THEN 'pending' WHEN 'holdout' THEN 'holdout' ELSE 'skipped' END,
    CASE reason WHEN 'experiment_holdout' THEN 'holdout' ELSE reason END,
    CASE reason WHEN 'experiment_holdout' THEN 'experiment holdout' ELSE '' END, pattern_key, booking_ids, bucket, channel, '', '', NULL, '', '', '', '', NULL, NULL, NULL, NULL, NULL,
    %(now)s, CASE WHEN reason = '' THEN NULL ELSE %(now)s END
FROM (
    SELECT d.*, CASE
        WHEN NOT d.is_active THEN 'inactive'
        WHEN d.worker_id = ANY(%(burnout)s::bigint[]) THEN 'burnout'
        WHEN EXISTS (SELECT 1 FROM coaching_coachingrecipient AS r WHERE r.worker_id = d.worker_id
                     AND r.status = 'coached' AND r.pattern_key = d.pattern_key) THEN 'already_coached'
        WHEN EXISTS (SELECT 1 FROM coaching_coachingrecipient AS r WHERE r.worker_id = d.worker_id
                     AND r.status = 'coached' AND r.created_at >= %(recent_since)s) THEN 'recently_coached'
        WHEN NOT d.consented THEN 'no_consent'
        WHEN d.address = '' THEN 'no_address'
        WHEN d.worker_id = ANY(%(experiment_holdout)s::bigint[]) THEN 'experiment_holdout'
        WHEN d.bucket < %(holdout)s THEN 'holdout'
        ELSE '' END AS reason
    FROM (
        SELECT w.id AS worker_id, w.is_active, ch.channel, COALESCE({CONSENTED}, false) AS consented,
            CASE WHEN ch.channel = 'email' THEN ct.email ELSE ct.phone END AS address,
            COALESCE(l.ids, '[]'::jsonb) AS booking_ids,
            left(encode(sha256(convert_to(COALESCE(l.joined, ''), 'UTF8')), 'hex'), 32) AS pattern_key,
            mod(h.head::numeric + CASE WHEN h.head < 0 THEN 18446744073709551616 ELSE 0 END, 100)::int AS bucket
        FROM ({{per_worker}}) AS per_worker
        JOIN crm_worker AS w ON w.id = per_worker.worker_id AND w.company_id = %(company)s
        JOIN crm_contact AS ct ON ct.id = w.contact_id
        LEFT JOIN coaching_workerpunctuality AS wp ON wp.worker_id = w.id
        CROSS JOIN LATERAL (SELECT COALESCE(NULLIF(wp.channel, ''), %(channel)s) AS channel) AS ch
        CROSS JOIN LATERAL (SELECT {HASH_HEAD} AS head) AS h
        LEFT JOIN LATERAL (
            SELECT jsonb_agg(p.booking_id ORDER BY p.scheduled_at, p.booking_id) AS ids,
                string_agg(p.booking_id::text, ',' ORDER BY p.booking_id) AS joined
            FROM coaching_bookingpunctuality AS p
            WHERE p.worker_id = w.id AND p.company_id = %(company)s AND p.local_date >= %(start)s
              AND p.local_date <= %(end)s AND p.outcome = ANY(%(late)s) AND NOT p.is_excused
        ) AS l ON true
        WHERE per_worker.late >= %(threshold)s
    ) AS d
    OFFSET 0  -- the reasons decided once per worker, not once per column that reads them
) AS c
"""


def selection_insert(*, run, start: dt.date, window: int | None, burnout: set[int], now: dt.datetime,
                     late_outcomes, experiment_holdout: set[int] = frozenset()) -> tuple[int, int]:
    """Write the run's rows (in the caller's transaction); (rows below the pattern, candidates' rows)."""
    rules = run.rules
    per_worker = FROM_ROLLUP.format(window=window) if window else FROM_BOOKINGS
    params = {
        "run": run.pk, "company": run.company_id, "start": start, "end": run.as_of, "now": now,
        "threshold": rules["pattern_late_count"], "late": list(late_outcomes), "burnout": sorted(burnout),
        "recent_since": now - dt.timedelta(days=rules["recoach_after_days"]), "channel": rules["channel"],
        "holdout": rules["holdout_percent"], "experiment_holdout": sorted(experiment_holdout),
    }
    with connection.cursor() as cursor:
        cursor.execute(SKIPS_INSERT.format(per_worker=per_worker), params)
        below = cursor.rowcount
        cursor.execute(CANDIDATES_INSERT.format(per_worker=per_worker), params)
        return below, cursor.rowcount
