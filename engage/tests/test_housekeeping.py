"""The daily housekeeping task: old campaign skip rows and long-expired short links go, the rest stays."""

import datetime as dt

import pytest
from django.utils import timezone

from crm.tests.factories import CustomerFactory
from engage.campaigns.deeplinks import short_links_create
from engage.campaigns.tasks import housekeeping
from engage.models import Campaign, CampaignRecipient, CampaignRun, ShortLink

pytestmark = pytest.mark.django_db


def run_with_rows(campaign, *, days_ago, statuses):
    created = timezone.now() - dt.timedelta(days=days_ago)
    run = CampaignRun.objects.create(
        company=campaign.company, campaign=campaign, status=CampaignRun.Status.COMPLETED, created_at=created
    )
    for status in statuses:
        customer = CustomerFactory(company=campaign.company)
        CampaignRecipient.objects.create(
            company=campaign.company, campaign=campaign, run=run, customer=customer, cycle_started_at=created,
            status=status, reason="no_consent" if status == "skipped" else "", created_at=created,
        )
    return run


def test_housekeeping_deletes_skip_rows_past_retention_and_long_expired_short_links(company, settings):
    settings.SMARTENGAGE_SKIPPED_RETENTION_DAYS = 30
    campaign = Campaign.objects.create(company=company, name="Reminders")
    old = run_with_rows(campaign, days_ago=31, statuses=["skipped", "skipped", "sent", "failed", "dry_run"])
    recent = run_with_rows(campaign, days_ago=29, statuses=["skipped", "sent"])
    short_links_create(company=company, links=[("https://a.example/old", None), ("https://a.example/new", None)])
    ShortLink.objects.filter(target_url="https://a.example/old").update(
        expires_at=timezone.now() - dt.timedelta(days=31)
    )

    assert housekeeping() == {"short_links": 1, "campaign_skips": 2}

    # the old run keeps its sent, failed and dry-run rows (and its counts); the recent one keeps everything
    assert sorted(old.recipients.values_list("status", flat=True)) == ["dry_run", "failed", "sent"]
    assert sorted(recent.recipients.values_list("status", flat=True)) == ["sent", "skipped"]
    assert list(ShortLink.objects.values_list("target_url", flat=True)) == ["https://a.example/new"]
    # and a second pass finds nothing more
    assert housekeeping() == {"short_links": 0, "campaign_skips": 0}


def test_skip_rows_are_deleted_a_batch_at_a_time(company):
    from engage.campaigns.runs import campaign_skips_purge

    campaign = Campaign.objects.create(company=company, name="Reminders")
    run = run_with_rows(campaign, days_ago=40, statuses=["skipped"] * 5)
    assert campaign_skips_purge(older_than_days=30, batch_size=2) == 5
    assert not run.recipients.exists()
