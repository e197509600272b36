"""Refreshing the rollups: a range of a company's local days replaced in one transaction, the watermark, the beat's
tick (one ledger job per company) and the backfill."""

from __future__ import annotations

import datetime as dt
import time

from django.db import transaction
from django.utils import timezone

from crm.models import Company
from engage.api import job_enqueue
from reports.rollups import aggregate
from reports.rollups.models import (
    AIDaily,
    EngagementDaily,
    LeadDaily,
    LeadStageCount,
    LeadStageTimeDaily,
    RollupWatermark,
    WorkerDaily,
)

# Late events (a delivery receipt, a click, a punctuality recomputed) land within this many local days.
LATE_DAYS = 3
REFRESH_TASK = "reports_rollups_refresh"
TICK_MINUTES = 5
BATCH = 1000

_DAILY = (
    (EngagementDaily, aggregate.engagement_rows),
    (AIDaily, aggregate.ai_rows),
    (LeadDaily, aggregate.lead_rows),
    (LeadStageTimeDaily, aggregate.lead_stage_time_rows),
    (WorkerDaily, aggregate.worker_rows),
)


def rollups_refresh(*, company: Company, first: dt.date, last: dt.date, with_stages: bool = True) -> dict:
    """Recompute the company's rollups of local days first..last (inclusive) and move its watermark (and, unless
    told not to, the pipeline's stage snapshot)."""
    if first > last:
        raise ValueError("first must not be after last")
    started = time.monotonic()
    read_at = timezone.now()
    # rows stamped up to read_at: later ones are the live "today" numbers' until the next refresh (worker rows are
    # keyed by their scheduled local day, not a timestamp, and never live)
    built = {model: rows(company=company, first=first, last=last, **({} if model is WorkerDaily else
                                                                    {"until": read_at}))
             for model, rows in _DAILY}
    stages = aggregate.lead_stage_rows(company=company) if with_stages else None
    with transaction.atomic():
        for model, rows in built.items():
            model.objects.filter(company_id=company.pk, local_date__gte=first, local_date__lte=last).delete()
            model.objects.bulk_create(rows, batch_size=BATCH)
        if stages is not None:
            LeadStageCount.objects.filter(company_id=company.pk).delete()
            LeadStageCount.objects.bulk_create(stages, batch_size=BATCH)
        watermark = RollupWatermark.objects.select_for_update().filter(company_id=company.pk).first()
        duration_ms = int((time.monotonic() - started) * 1000)
        # what the rollups now hold: every row stamped before `covered` (a backfill of past days does not move it)
        covered = min(read_at, aggregate.utc_range(company, last, last)[1])
        if watermark is None:
            RollupWatermark.objects.create(company_id=company.pk, through_date=last, refreshed_at=covered,
                                           duration_ms=duration_ms)
        else:
            watermark.through_date = max(watermark.through_date, last)
            watermark.refreshed_at = max(watermark.refreshed_at, covered)
            watermark.duration_ms = duration_ms
            watermark.save(update_fields=["through_date", "refreshed_at", "duration_ms"])
    return {"company_id": company.pk, "first": first.isoformat(), "last": last.isoformat(),
            "rows": {model._meta.model_name: len(rows) for model, rows in built.items()}, "duration_ms": duration_ms}


def refresh_window(*, company: Company, now: dt.datetime | None = None) -> tuple[dt.date, dt.date]:
    """The local days a tick re-aggregates: the last LATE_DAYS days, or from the watermark if it is older; a
    company's first refresh (no watermark yet) goes back to its first activity, so history imported or seeded
    before the dashboard existed shows without a separate backfill."""
    today = aggregate.local_today(company, now=now)
    first = today - dt.timedelta(days=LATE_DAYS - 1)
    through = RollupWatermark.objects.filter(company_id=company.pk).values_list("through_date", flat=True).first()
    if through is None:
        through = aggregate.first_activity_day(company=company)
    if through is not None and through < first:
        first = through
    return first, today


def rollups_refresh_recent(*, company: Company) -> dict:
    first, last = refresh_window(company=company)
    return rollups_refresh(company=company, first=first, last=last)


def rollups_tick(*, now: dt.datetime | None = None) -> dict:
    """The beat's tick: one refresh job per active company (idempotent per company and TICK_MINUTES slot)."""
    now = now or timezone.now()
    slot = int(now.timestamp()) // (TICK_MINUTES * 60)
    queued = 0
    with transaction.atomic():
        for company in Company.objects.filter(is_active=True).only("pk"):
            job_enqueue(company=company, task_name=REFRESH_TASK, payload={},
                        idempotency_key=f"{REFRESH_TASK}:{company.pk}:{slot}")
            queued += 1
    return {"queued": queued}


def rollups_backfill(*, company: Company, first: dt.date | None = None, last: dt.date | None = None,
                     chunk_days: int = 92) -> list[dict]:
    """Rebuild a company's rollups from `first` (default: its first lead, message or booking day) to `last`
    (default: today), a quarter per transaction; the stage snapshot once, with the last one."""
    last = last or aggregate.local_today(company)
    first = first or aggregate.first_activity_day(company=company) or last
    results = []
    day = first
    while day <= last:
        end = min(day + dt.timedelta(days=chunk_days - 1), last)
        results.append(rollups_refresh(company=company, first=day, last=end, with_stages=end == last))
        day = end + dt.timedelta(days=1)
    return results
