"""Send-time optimisation: per-customer hour histograms smoothed toward the segment's, the best hour inside the
window, its explanation, and the campaign's send-time arm sending only in each customer's best hour."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.cache import cache
from django.utils import timezone

from crm.services import consent_revoke
from crm.tests.factories import EventFactory
from engage.campaigns.runner import campaign_run_execute
from engage.campaigns.runs import campaign_run_trigger
from engage.campaigns.smartengage.planning import next_hour_start
from engage.experiments.models import Experiment, ExperimentPhase, ExperimentVariant
from engage.experiments.send_time import best_hour, best_hours, explain, hour_scores
from engage.experiments.services import experiment_start, unit_bucket, variant_for_bucket
from engage.ledger.services import job_execute
from engage.models import Campaign, CampaignRecipient, Message
from engage.policy.services import policy_get_or_create
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
    # then the customer whose best hour is now got the reminder; the other's waits, queued for their hour
    assert Message.objects.get(contact=in_hour.contact, direction="outbound").status == "sent"
    waiting = Message.objects.select_related("job").get(contact=off_hour.contact, direction="outbound")
    assert waiting.status == "queued"
    assert waiting.job.next_run_at.astimezone(DHAKA).hour == other_hour
    assert CampaignRecipient.objects.get(run=run, customer=off_hour).status == "pending"


def test_the_next_best_hour_is_today_when_still_ahead_and_tomorrow_when_past():
    nine = dt.datetime(2026, 12, 7, 9, 0, tzinfo=DHAKA)
    assert next_hour_start(now=nine, zone=DHAKA, hour=15) == dt.datetime(2026, 12, 7, 15, 0, tzinfo=DHAKA)
    assert next_hour_start(now=nine + dt.timedelta(minutes=40), zone=DHAKA, hour=9) is None
    assert next_hour_start(now=nine + dt.timedelta(hours=7), zone=DHAKA, hour=10) == dt.datetime(
        2026, 12, 8, 10, 0, tzinfo=DHAKA
    )


def _engaged_at(company, customer, hour, today):
    for days in range(1, 8):
        at = dt.datetime.combine(today - dt.timedelta(days=days), dt.time(hour, 5), tzinfo=DHAKA)
        EventFactory(company=company, contact=customer.contact, type="notification_opened", occurred_at=at)


@pytest.mark.django_db(transaction=True)
def test_a_9_oclock_run_queues_the_send_time_arm_for_each_customers_best_hour_and_sends_it_then(
    company, fake_openai
):
    fake_openai.reply(AI_TEXT)
    cache.clear()
    templates_seed_defaults(company=company)
    policy = policy_get_or_create(company=company)
    policy.presets.filter(name="default").update(send_window_start_hour=9, send_window_end_hour=18)
    nine = dt.datetime(2026, 12, 7, 9, 0, tzinfo=DHAKA)
    with time_machine.travel(nine, tick=False):
        campaign = Campaign.objects.create(company=company, name="Daily reminders", channel="console")
        experiment = Experiment.objects.create(company=company, name="Best hour", campaign=campaign)
        control = ExperimentVariant.objects.create(experiment=experiment, name="Fixed hour", kind="control", weight=50)
        timed = ExperimentVariant.objects.create(experiment=experiment, name="Best hour", kind="send_time", weight=50)
        experiment_start(experiment=experiment)
        afternoon, opted_out, fixed = (customer_due(company, timezone="Asia/Dhaka") for _ in range(3))
        _engaged_at(company, afternoon, 15, nine.date())
        _engaged_at(company, opted_out, 16, nine.date())
        _engaged_at(company, fixed, 15, nine.date())
        # a salt that puts the first two in the send-time arm and the third in the fixed hour
        wanted = {afternoon.pk: timed.pk, opted_out.pk: timed.pk, fixed.pk: control.pk}
        weights = [(control.pk, 50), (timed.pk, 50)]
        salt = next(
            f"s{n}" for n in range(1000)
            if all(variant_for_bucket(bucket=unit_bucket(salt=f"s{n}", experiment_id=experiment.pk, unit_id=pk),
                                      weights=weights) == arm for pk, arm in wanted.items())
        )
        ExperimentPhase.objects.filter(experiment=experiment).update(salt=salt)
        # when the 09:00 run goes
        run = campaign_run_trigger(campaign=campaign)
        campaign_run_execute(run_id=run.pk)
    # then the fixed-hour arm is sent now, as before
    sent = Message.objects.select_related("job").get(contact=fixed.contact, direction="outbound")
    assert sent.status == "sent" and sent.job.next_run_at == nine
    # and the send-time arm is not skipped: each reminder is queued for the customer's hour today
    later = Message.objects.select_related("job").get(contact=afternoon.contact, direction="outbound")
    assert later.status == "queued" and later.experiment_assignment.variant_id == timed.pk
    assert later.job.next_run_at == dt.datetime(2026, 12, 7, 15, 0, tzinfo=DHAKA)
    assert later.job.status == "queued" and later.job.payload["send_at"]
    revoked = Message.objects.select_related("job").get(contact=opted_out.contact, direction="outbound")
    assert revoked.job.next_run_at == dt.datetime(2026, 12, 7, 16, 0, tzinfo=DHAKA)
    assert not CampaignRecipient.objects.filter(run=run, reason="outside_send_window").exists()
    assert CampaignRecipient.objects.get(run=run, customer=afternoon).status == "pending"
    # at 15:00 the ledger sends it
    with time_machine.travel(dt.datetime(2026, 12, 7, 15, 0, 5, tzinfo=DHAKA), tick=False):
        assert job_execute(job_id=later.job_id, worker="test") == "completed"
    later.refresh_from_db()
    assert later.status == "sent"
    assert CampaignRecipient.objects.get(run=run, customer=afternoon).status == "sent"
    # consent is asked again at the hour: a customer who opted out since gets nothing
    consent_revoke(contact=opted_out.contact, channel="console")
    with time_machine.travel(dt.datetime(2026, 12, 7, 16, 0, 5, tzinfo=DHAKA), tick=False):
        assert job_execute(job_id=revoked.job_id, worker="test") == "completed"
    revoked.refresh_from_db()
    assert revoked.status == "failed" and not revoked.sent_at
    recipient = CampaignRecipient.objects.get(run=run, customer=opted_out)
    assert (recipient.status, recipient.reason) == ("skipped", "no_consent")
