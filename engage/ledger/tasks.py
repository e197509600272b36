"""Celery tasks of the ledger: the one task that runs a job, and the relay (beat)."""

from __future__ import annotations

from celery import shared_task

from engage.ledger import services as jobs


@shared_task(name="engage.job_run", ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def job_run(job_id: int) -> str:
    """Run one ledger job. Safe to receive twice: the claim lets only one delivery do the work."""
    from celery import current_task

    worker = getattr(current_task.request, "hostname", None) or ""
    return jobs.job_execute(job_id=job_id, worker=f"{worker}:{current_task.request.id}")


@shared_task(name="engage.jobs_relay", ignore_result=True)
def jobs_relay() -> dict:
    """Beat: re-dispatch jobs whose broker message was lost or that came due, reclaim abandoned ones."""
    return jobs.jobs_relay()


@shared_task(name="engage.jobs_reclaim", ignore_result=True)
def jobs_reclaim() -> dict:
    """Beat (every 10 s): hand out jobs whose worker's lease expired, and due jobs whose publish failed."""
    return jobs.jobs_reclaim()
