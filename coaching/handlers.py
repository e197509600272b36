"""The ledger's handlers of coaching: `coachnova_run` (50) a run, `coaching_punctuality_bookings` (40) the bookings
a completion reported, `coaching_punctuality_daily` (30) one company's daily refresh."""

from __future__ import annotations

import datetime as dt

from coaching.impact import PERIOD_DAYS, run_impact_compute
from coaching.models import CoachingRun
from coaching.punctuality import local_today, punctuality_bookings_refresh, punctuality_daily
from coaching.runs import RUN_TASK, coaching_run_execute
from crm.models import Company
from engage.api import JobPermanentError, job_handler


def _company(job) -> Company:
    company = Company.objects.filter(pk=job.company_id).first()
    if company is None:
        raise JobPermanentError(f"Company {job.company_id!r} not found.")
    return company


@job_handler(RUN_TASK, priority=50)
def coachnova_run(job) -> dict:
    return coaching_run_execute(run_id=job.payload["run_id"])


@job_handler("coaching_punctuality_bookings", priority=40)
def coaching_punctuality_bookings(job) -> dict:
    ids = [int(pk) for pk in job.payload.get("booking_ids", [])]
    return {"classified": punctuality_bookings_refresh(company=_company(job), booking_ids=ids)}


@job_handler("coaching_punctuality_daily", priority=30)
def coaching_punctuality_daily(job) -> dict:
    """The day's refresh, then the impact of the runs whose 28 days after are not over yet (or just ended)."""
    company = _company(job)
    result = punctuality_daily(company=company)
    since = local_today(company) - dt.timedelta(days=PERIOD_DAYS + 1)
    runs = CoachingRun.objects.filter(company=company, is_dry_run=False, is_seeded=False, as_of__gte=since,
                                      status=CoachingRun.Status.COMPLETED).select_related("company")
    result["impact_runs"] = [run_impact_compute(run=run) and run.pk for run in runs]
    return result
