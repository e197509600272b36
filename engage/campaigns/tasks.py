"""Celery tasks of campaigns (beat): the daily SmartEngage run and housekeeping."""

from __future__ import annotations

from celery import shared_task

from engage.campaigns.deeplinks import short_links_purge
from engage.campaigns.models import Campaign
from engage.campaigns.runs import campaign_run_trigger, campaign_skips_purge, campaigns_daily_run


@shared_task(name="engage.smartengage_campaign_run", ignore_result=True)
def smartengage_campaign_run(campaign_id: int | None = None, dry_run: bool = False) -> dict:
    """Beat (daily 09:00 UTC): queue a run of one campaign, or of every active SmartEngage campaign."""

    if campaign_id is None:
        return campaigns_daily_run()
    run = campaign_run_trigger(campaign=Campaign.objects.get(pk=campaign_id), is_dry_run=dry_run, trigger="beat")
    return {"run_id": run.pk, "status": run.status}


@shared_task(name="engage.housekeeping", ignore_result=True)
def housekeeping() -> dict:
    """Beat (daily): delete short links expired 30 days ago and campaign skip rows past their retention."""
    from django.conf import settings


    return {
        "short_links": short_links_purge(older_than_days=30),
        "campaign_skips": campaign_skips_purge(older_than_days=settings.SMARTENGAGE_SKIPPED_RETENTION_DAYS),
    }
