"""The ledger's handlers of coaching: `coachnova_run` (50) a run, `coaching_punctuality_bookings` (40) the bookings
a completion reported, `coaching_punctuality_daily` (30) one company's daily refresh."""

from __future__ import annotations

from coaching.punctuality import punctuality_bookings_refresh, punctuality_daily
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
    return punctuality_daily(company=_company(job))
