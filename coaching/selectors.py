"""Reads of coaching: a worker's punctuality (stats, weekly trend, recent bookings) and coaching history."""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Q

from coaching.models import BookingPunctuality, CoachingRecipient, CoachingRun, WorkerPunctuality
from coaching.punctuality import local_today
from crm.models import Worker

TREND_WEEKS = 12


def worker_punctuality(*, worker: Worker) -> dict:
    stats = WorkerPunctuality.objects.filter(worker=worker).first()
    today = local_today(worker.company)
    start = today - dt.timedelta(days=7 * TREND_WEEKS - 1)
    weeks = {}
    rows = (BookingPunctuality.objects.filter(worker=worker, is_excused=False, local_date__gte=start,
                                              local_date__lte=today)
            .values("local_date").annotate(total=Count("pk"), on_time=Count("pk", filter=Q(outcome="on_time"))))
    for row in rows:
        week = start + dt.timedelta(days=7 * ((row["local_date"] - start).days // 7))
        total, on_time = weeks.get(week, (0, 0))
        weeks[week] = (total + row["total"], on_time + row["on_time"])
    trend = []
    for index in range(TREND_WEEKS):
        week = start + dt.timedelta(days=7 * index)
        total, on_time = weeks.get(week, (0, 0))
        trend.append({"week_start": week, "bookings": total,
                      "on_time_rate": round(100.0 * on_time / total, 1) if total else None})
    recent = (BookingPunctuality.objects.filter(worker=worker).order_by("-scheduled_at")[:20])
    result = {"worker_id": worker.pk, "as_of": stats.as_of if stats else None, "trend": trend,
              "recent_bookings": [{
                  "booking_id": row.booking_id, "scheduled_at": row.scheduled_at, "local_date": row.local_date,
                  "outcome": row.outcome, "minutes_late": row.minutes_late, "is_excused": row.is_excused,
              } for row in recent]}
    for window in ("14", "28"):
        result[f"last_{window}_days"] = {
            "bookings": getattr(stats, f"bookings_{window}", 0) if stats else 0,
            "on_time": getattr(stats, f"on_time_{window}", 0) if stats else 0,
            "late": getattr(stats, f"late_{window}", 0) if stats else 0,
            "on_time_rate": getattr(stats, f"on_time_rate_{window}", None) if stats else None,
            "average_minutes_late": getattr(stats, f"average_minutes_late_{window}", None) if stats else None,
        }
    result["trend_change"] = stats.trend if stats else None
    return result


INTERNAL_RUNS = 20


def worker_coaching(*, worker: Worker, include_internal: bool = False):
    """The worker's coaching, newest first: what they received and answered (holdout and skips are internal:
    those of the company's last `INTERNAL_RUNS` runs). No index is led by the worker but the coached rows' (a run
    writes 100k rows): the others are found by (run, worker)."""
    coached = Q(status=CoachingRecipient.Status.COACHED)
    if include_internal:
        runs = CoachingRun.objects.filter(company_id=worker.company_id).order_by("-created_at")[:INTERNAL_RUNS]
        coached |= Q(run_id__in=list(runs.values_list("pk", flat=True)))
    return (CoachingRecipient.objects.filter(coached, worker=worker).select_related("run", "message")
            .order_by("-created_at"))
