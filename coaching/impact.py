"""Impact, measured honestly: for the coached and the held-out workers of a run, the on-time rate in the 28 local
days before the run (to its `as_of`) and the 28 after; the difference-in-differences of the two groups' mean
change, with a 95% confidence interval (Welch's standard error, normal quantile 1.96: a large-sample approximation,
said so on the page), per run and over every run.

A worker counts when they had at least one counted booking in both periods; the result says how many did and how
many of the 28 days after have passed (an interval on an unfinished period is labelled as such)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable

from django.db import transaction

from coaching.models import CoachingRecipient, CoachingRun
from coaching.punctuality import local_today, on_time_rate

PERIOD_DAYS = 28
Z_95 = 1.96


def _mean_var(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, sum((value - mean) ** 2 for value in values) / (len(values) - 1)


def diff_in_diff(*, treated: Iterable[float], control: Iterable[float]) -> dict:
    """Treated and control workers' changes (after − before, percentage points) → the estimate and its 95% CI."""
    treated, control = list(treated), list(control)
    mean_t, var_t = _mean_var(treated)
    mean_c, var_c = _mean_var(control)
    result = {"coached_n": len(treated), "holdout_n": len(control), "coached_change": mean_t, "holdout_change": mean_c,
              "estimate": None, "ci_low": None, "ci_high": None, "standard_error": None}
    if mean_t is None or mean_c is None:
        return result
    result["estimate"] = round(mean_t - mean_c, 2)
    if var_t is None or var_c is None:
        return result
    error = math.sqrt(var_t / len(treated) + var_c / len(control))
    result.update(standard_error=round(error, 3), ci_low=round(mean_t - mean_c - Z_95 * error, 2),
                  ci_high=round(mean_t - mean_c + Z_95 * error, 2))
    return result


def _rates(worker_ids: list[int], start: dt.date, end: dt.date) -> dict[int, float]:
    return {worker_id: 100.0 * on_time / total
            for worker_id, (on_time, total) in on_time_rate(worker_ids=worker_ids, start=start, end=end).items()
            if total}


def run_impact_compute(*, run: CoachingRun, today: dt.date | None = None, save: bool = True) -> dict:
    """Fill the run's coached and holdout rows' before/after rates and the run's `impact`."""
    today = today or local_today(run.company)
    rows = list(run.recipients.filter(status__in=[CoachingRecipient.Status.COACHED, CoachingRecipient.Status.HOLDOUT]))
    ids = [row.worker_id for row in rows]
    before = _rates(ids, run.as_of - dt.timedelta(days=PERIOD_DAYS - 1), run.as_of)
    after_end = run.as_of + dt.timedelta(days=PERIOD_DAYS)
    after = _rates(ids, run.as_of + dt.timedelta(days=1), min(after_end, today))
    treated, control = [], []
    for row in rows:
        row.on_time_before, row.on_time_after = before.get(row.worker_id), after.get(row.worker_id)
        if row.on_time_before is not None and row.on_time_after is not None:
            change = row.on_time_after - row.on_time_before
            (treated if row.status == CoachingRecipient.Status.COACHED else control).append(change)
    days_after = max(0, min(PERIOD_DAYS, (today - run.as_of).days))
    impact = {**diff_in_diff(treated=treated, control=control), "days_after": days_after,
              "is_complete": days_after >= PERIOD_DAYS, "is_seeded": run.is_seeded}
    if save:
        with transaction.atomic():
            CoachingRecipient.objects.bulk_update(rows, ["on_time_before", "on_time_after"], batch_size=2000)
            CoachingRun.objects.filter(pk=run.pk).update(impact=impact)
        run.impact = impact
    return impact


def overall_impact(*, company) -> dict:
    """Every real run's coached and holdout workers pooled (one unit per worker and run); uses the stored rates."""
    rows = CoachingRecipient.objects.filter(
        company=company, run__is_dry_run=False, on_time_before__isnull=False, on_time_after__isnull=False,
        status__in=[CoachingRecipient.Status.COACHED, CoachingRecipient.Status.HOLDOUT],
    ).values_list("status", "on_time_before", "on_time_after")
    treated, control = [], []
    for status, before, after in rows:
        (treated if status == CoachingRecipient.Status.COACHED else control).append(after - before)
    seeded = CoachingRun.objects.filter(company=company, is_seeded=True).exists()
    return {**diff_in_diff(treated=treated, control=control), "includes_seeded": seeded}
