"""The ledger's handlers of burnout alerts: `burnout_evaluate` (30) one company's evaluation, `burnout_alert_notify`
(60) the managers' email of a new alert."""

from __future__ import annotations

from crm.models import Company
from engage.api import JobPermanentError, job_handler
from reports.burnout.services import EVALUATE_TASK, NOTIFY_TASK, burnout_alert_notify, burnout_evaluate


@job_handler(EVALUATE_TASK, priority=30)
def burnout_evaluate_job(job) -> dict:
    company = Company.objects.filter(pk=job.company_id).first()
    if company is None:
        raise JobPermanentError(f"Company {job.company_id!r} not found.")
    return burnout_evaluate(company=company)


@job_handler(NOTIFY_TASK, priority=60)
def burnout_alert_notify_job(job) -> dict:
    return burnout_alert_notify(alert_id=int(job.payload["alert_id"]))
