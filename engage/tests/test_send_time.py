"""Send-time optimisation: per-customer hour histograms smoothed toward the segment's, the best hour inside the
window, its explanation, and the campaign's send-time arm sending only in each customer's best hour."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.core.cache import cache
from django.utils import timezone

from crm.tests.factories import EventFactory
from engage.campaigns.runner import campaign_run_execute
from engage.campaigns.runs import campaign_run_trigger
from engage.experiments.models import Experiment, ExperimentVariant
from engage.experiments.send_time import best_hour, best_hours, explain, hour_scores
from engage.experiments.services import experiment_start
from engage.models import Campaign, CampaignRecipient, Message
from engage.prompts.services import templates_seed_defaults
from engage.tests.campaign_helpers import AI_TEXT, customer_due
from engage.tests.test_campaigns import whole_day

DHAKA = ZoneInfo("Asia/Dhaka")


def test_a_customer_without_history_gets_the_segments_best_hour_and_one_with_history_their_own():
    segment = [1 / 24] * 24
    segment[10] = segment[10] * 3
    assert best_hour(scores=hour_scores(own=[0] * 24, segment=segment), window=(9, 18)) == 10
    own = [0] * 24
    own[19] = 6
    # their own evenings win over the segment's morning, inside a window that holds them
    assert best_hour(scores=hour_scores(own=own, segment=segment), window=(9, 21)) == 19
    # and the window bounds the choice
    assert best_hour(scores=hour_scores(own=own, segment=segment), window=(9, 18)) == 10
    # one engagement does not outweigh a strong segment habit (smoothing, weight 5 engagements)
    peaked = [0.4 / 23] * 24
    peaked[10] = 0.6
    one = [0] * 24
    one[15] = 1
    assert best_hour(scores=hour_scores(own=one, segment=peaked), window=(9, 18)) == 10
    assert best_hour(scores=hour_scores(own=[4 * v for v in one], segment=peaked), window=(9, 18)) == 15
    assert "6 of this customer's 6" in explain(own=own, segment=segment, window=(9, 21))
    assert "no engagement of this customer yet" in explain(own=[0] * 24, segment=segment, window=(9, 18))


@pytest.mark.django_db
def test_best_hours_read_opens_clicks_and_bookings_in_local_time(company):
    cache.clear()
    customer = customer_due(company)
    for days in range(1, 5):
        at = dt.datetime.combine(timezone.now().date() - dt.timedelta(days=days), dt.time(20, 15), tzinfo=DHAKA)
        EventFactory(company=company, contact=customer.contact, type="message_clicked", occurred_at=at)
    hours = best_hours(company=company, contacts=[customer.contact], window=(9, 22))
    assert hours == {customer.contact_id: 20}


@pytest.mark.django_db
def test_the_send_time_arm_sends_in_each_customers_best_hour_only(company, fake_openai):
    # given a campaign whose send-time arm takes everyone (weight 100 against a control of 0)
    fake_openai.reply(AI_TEXT)
    cache.clear()
    templates_seed_defaults(company=company)
    whole_day(company)
    campaign = Campaign.objects.create(company=company, name="Daily reminders", channel="console")
    experiment = Experiment.objects.create(company=company, name="Best hour", campaign=campaign)
    ExperimentVariant.objects.create(experiment=experiment, name="Fixed hour", kind="control", weight=0)
    ExperimentVariant.objects.create(experiment=experiment, name="Best hour", kind="send_time", weight=100)
    experiment_start(experiment=experiment)
    now_local = timezone.now().astimezone(DHAKA)
    other_hour = (now_local.hour + 6) % 24
    in_hour, off_hour = customer_due(company), customer_due(company)
    for customer, hour in ((in_hour, now_local.hour), (off_hour, other_hour)):
        for days in range(1, 8):
            at = dt.datetime.combine(now_local.date() - dt.timedelta(days=days), dt.time(hour, 5), tzinfo=DHAKA)
            EventFactory(company=company, contact=customer.contact, type="notification_opened", occurred_at=at)
    # when the run goes now
    run = campaign_run_trigger(campaign=campaign)
    campaign_run_execute(run_id=run.pk)
    # then only the customer whose best hour is now got the reminder; the other waits (outside the window)
    assert Message.objects.filter(contact=in_hour.contact, direction="outbound").count() == 1
    assert not Message.objects.filter(contact=off_hour.contact, direction="outbound").exists()
    assert CampaignRecipient.objects.get(run=run, customer=off_hour).reason == "outside_send_window"
