"""A run's page explains itself: counts that add up, and when the send window opens for those outside it."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from engage.campaigns.runs import campaign_run_trigger
from engage.campaigns.selectors import campaign_run_summary, send_window_next_opening
from engage.models import CampaignRecipient, Job
from engage.tests.campaign_helpers import customer_due
from engage.tests.helpers import run_job
from engage.tests.test_campaign_admin import act, campaign_of, preset_update, shown

DHAKA = ZoneInfo("Asia/Dhaka")


@pytest.mark.parametrize(("utc", "expected_local"), [
    # 18:30 UTC is 00:30 the next day in Dhaka: a 09-18 window opens at 09:00 that (Dhaka) day.
    ("2026-12-06T18:30:00+00:00", "2026-12-07T09:00:00+06:00"),
    # 02:59 UTC is 08:59 in Dhaka: one minute to go, the same day.
    ("2026-12-06T02:59:00+00:00", "2026-12-06T09:00:00+06:00"),
    # 12:00 UTC is 18:00 in Dhaka: the window just closed; it opens tomorrow.
    ("2026-12-06T12:00:00+00:00", "2026-12-07T09:00:00+06:00"),
])
def test_the_window_next_opens_in_the_companys_zone(utc, expected_local):
    opens = send_window_next_opening(start_hour=9, end_hour=18, zone=DHAKA, now=dt.datetime.fromisoformat(utc))
    assert opens == dt.datetime.fromisoformat(expected_local)


def test_an_open_or_whole_day_window_has_no_next_opening():
    noon_dhaka = dt.datetime(2026, 12, 6, 6, 0, tzinfo=dt.UTC)
    assert send_window_next_opening(start_hour=9, end_hour=18, zone=DHAKA, now=noon_dhaka) is None
    assert send_window_next_opening(start_hour=0, end_hour=24, zone=DHAKA, now=noon_dhaka) is None


def outside_window(company):
    """A window that is closed right now in Dhaka (the customers' zone), whatever the hour the suite runs."""
    hour = dt.datetime.now(DHAKA).hour
    start = (hour + 2) % 24
    start = min(start, 22)
    if start <= hour < start + 1:
        start = (start + 3) % 22
    preset_update(company, send_window_start_hour=start, send_window_end_hour=start + 1)
    return start


@pytest.mark.django_db
def test_a_dry_run_outside_the_window_says_so_and_a_preview_ignoring_it_renders_everyone(company, client,
                                                                                        staff_user):
    campaign = campaign_of(company)
    start = outside_window(company)
    for index in range(3):
        customer_due(company, phone=f"+8801911000{index:03d}", timezone="Asia/Dhaka")
    customer_due(company, phone="+8801911000999", is_email_consented=False, is_sms_consented=False,
                 is_whatsapp_consented=False)
    client.force_login(staff_user)

    dry = campaign_run_trigger(campaign=campaign, is_dry_run=True)
    run_job(Job.objects.get(pk=dry.job_id))
    dry.refresh_from_db()
    summary = campaign_run_summary(run=dry)

    # considered = left out by the rules + eligible; eligible = rendered + skipped at send time
    assert (summary.considered, summary.left_out_total, summary.eligible) == (4, 1, 3)
    assert summary.left_out == {"no_consent": 1}
    assert (summary.rendered, summary.skipped_at_send) == (0, {"outside_send_window": 3})
    assert summary.send_window.outside == 3 and summary.send_window.next_opens_at.hour == start
    page = shown(client.get(reverse("admin:engage_campaignrun_change", args=[dry.pk])))
    assert "3 customers outside the send window" in page
    assert f"It next opens at {start:02d}:00 Asia/Dhaka" in page and "Dry run ignoring the send window" in page
    assert "Considered 4" in page and "= eligible 3" in page

    # The preview: the same customers, rendered, labelled as a preview.
    response = act(client, reverse("admin:engage_campaign_changelist"), "dry_run_ignoring_window", campaign)
    assert "1 dry run queued: " in shown(response)
    preview = campaign.runs.order_by("-id").first()
    run_job(Job.objects.get(pk=preview.job_id))
    summary = campaign_run_summary(run=preview)
    assert (summary.rendered, summary.skipped_at_send, summary.send_window.is_ignored) == (3, {}, True)
    assert preview.preset["send_window_set_aside"] == [start, start + 1]
    page = shown(client.get(reverse("admin:engage_campaignrun_change", args=[preview.pk])))
    assert "Preview ignoring the send window" in page
    assert not CampaignRecipient.objects.filter(run=preview, status="sent").exists()


@pytest.mark.django_db
def test_only_a_dry_run_may_ignore_the_window(company):
    campaign = campaign_of(company)
    with pytest.raises(Exception, match="Only a dry run"):
        campaign_run_trigger(campaign=campaign, ignores_send_window=True)
    assert not campaign.runs.exists()
