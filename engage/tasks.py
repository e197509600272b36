"""Celery tasks of engage: thin wrappers around the job ledger services."""

from celery import shared_task

from engage.services import jobs


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


@shared_task(name="engage.sequences_advance", ignore_result=True)
def sequences_advance() -> dict:
    """Beat: queue one `sequence_step` job per due sequence enrollment (see engage.services.sequences)."""
    from engage.services.sequences import sequences_advance as advance

    return advance()


@shared_task(name="engage.smartengage_campaign_run", ignore_result=True)
def smartengage_campaign_run(campaign_id: int | None = None, dry_run: bool = False) -> dict:
    """Beat (daily 09:00 UTC): queue a run of one campaign, or of every active SmartEngage campaign."""
    from engage.models import Campaign
    from engage.services.campaigns import campaign_run_trigger, campaigns_daily_run

    if campaign_id is None:
        return campaigns_daily_run()
    run = campaign_run_trigger(campaign=Campaign.objects.get(pk=campaign_id), is_dry_run=dry_run, trigger="beat")
    return {"run_id": run.pk, "status": run.status}


@shared_task(name="engage.housekeeping", ignore_result=True)
def housekeeping() -> dict:
    """Beat (daily): delete short links expired 30 days ago and campaign skip rows past their retention."""
    from django.conf import settings

    from engage.deeplinks import short_links_purge
    from engage.services.campaigns import campaign_skips_purge

    return {
        "short_links": short_links_purge(older_than_days=30),
        "campaign_skips": campaign_skips_purge(older_than_days=settings.SMARTENGAGE_SKIPPED_RETENTION_DAYS),
    }
