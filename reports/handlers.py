"""The reports' ledger jobs."""

from __future__ import annotations

from crm.models import Company
from engage.api import JobPermanentError, job_handler
from reports.rollups.services import REFRESH_TASK, rollups_refresh_recent


@job_handler(REFRESH_TASK, priority=20)
def reports_rollups_refresh(job) -> dict:
    company = Company.objects.filter(pk=job.company_id).first()
    if company is None:
        raise JobPermanentError(f"Company {job.company_id!r} not found.")
    return rollups_refresh_recent(company=company)
