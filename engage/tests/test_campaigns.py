"""Campaign runs: segment, send, dry run, lock, crash and resume, retry failed, cancel, beat, funnel, admin."""

import datetime as dt
import re
import threading
from zoneinfo import ZoneInfo

import pytest
from django.core.cache import cache
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from channels_app.adapters.console import ConsoleAdapter
from channels_app.base import ChannelError
from engage.campaigns.attribution import user_event_record
from engage.campaigns.runner import campaign_run_execute
from engage.campaigns.runs import (
    SmartEngageDisabled,
    campaign_funnel,
    campaign_run_cancel,
    campaign_run_retry_failed,
    campaign_run_trigger,
    campaigns_daily_run,
)
from engage.campaigns.smartengage import sending as smartengage_service
from engage.campaigns.smartengage.generation import DRY_RUN_NOT_CALLED
from engage.campaigns.smartengage.pipeline import smartengage_bulk_send
from engage.messaging.services import message_status_update
from engage.models import AISession, Campaign, CampaignRun, Job, Message
from engage.policy.services import policy_get_or_create
from engage.prompts.services import templates_seed_defaults
from engage.tests.campaign_helpers import AI_TEXT, customer_due
from engage.tests.helpers import run_job
from shokti.metrics import campaign_recipients_skipped_total
from shokti.schedules import DEFAULT_SCHEDULES


def whole_day(company) -> None:
    """Make the default preset's send window the whole day, so tests do not depend on the clock."""
    policy = policy_get_or_create(company=company)
    policy.presets.filter(name="default").update(send_window_start_hour=0, send_window_end_hour=24)
    cache.clear()


@pytest.fixture
def campaign(company):
    templates_seed_defaults(company=company)
    whole_day(company)
    return Campaign.objects.create(company=company, name="Daily reminders", channel="console", promo_code="SAVE15")


def execute(run) -> dict:
    return campaign_run_execute(run_id=run.pk)


def outbound_count(customer) -> int:
    return Message.objects.filter(contact=customer.contact, direction="outbound").count()


@pytest.mark.django_db
def test_a_run_reminds_the_due_customers_once_and_records_everything(campaign, fake_openai):
    # given two due customers, one not yet due, one without consent
    fake_openai.reply(AI_TEXT)
    due = [customer_due(campaign.company) for _ in range(2)]
    not_due = customer_due(campaign.company, days=5)
    customer_due(campaign.company, is_sms_consented=False)
    # when
    run = campaign_run_trigger(campaign=campaign)
    assert run.status == "queued" and run.job.task_name == "smartengage_campaign_run"
    assert run_job(run.job) == "completed"
    # then
    run.refresh_from_db()
    assert (run.status, run.total_eligible, run.sent, run.failed, run.skipped) == ("completed", 2, 2, 0, 1)
    assert run.started_at and run.finished_at and run.duration_seconds is not None
    assert run.preset["cadence_days"] == 21 and run.promo_code == "SAVE15"
    assert run.recipients.get(status="skipped").reason == "no_consent"
    recipients = list(run.recipients.filter(status="sent").select_related("message"))
    assert {recipient.customer_id for recipient in recipients} == {customer.pk for customer in due}
    for recipient in recipients:
        assert recipient.status == "sent" and recipient.message.status == "sent"
        assert recipient.message.correlation_id == recipient.correlation_id
        assert recipient.message.template_version_id == recipient.template_version_id is not None
        assert "token=" in recipient.body and "[BOOKING_LINK]" not in recipient.body
    assert outbound_count(not_due) == 0
    # a second run the same day finds nobody: they were reminded in this cycle
    second = campaign_run_trigger(campaign=campaign)
    assert execute(second)["status"] == "completed"
    second.refresh_from_db()
    assert (second.total_eligible, second.sent) == (0, 0)
    assert all(outbound_count(customer) == 1 for customer in due)


@pytest.mark.django_db
def test_dry_run_renders_everything_and_sends_nothing(campaign, fake_openai):
    fake_openai.reply(AI_TEXT)
    customers = [customer_due(campaign.company) for _ in range(3)]
    run = campaign_run_trigger(campaign=campaign, is_dry_run=True)
    result = execute(run)
    assert (result["status"], result["rendered"], result["sent"]) == ("completed", 3, 0)
    assert not Message.objects.exists()
    assert not Job.objects.filter(task_name="smartengage_send").exists()
    rows = list(run.recipients.all())
    assert {row.status for row in rows} == {"dry_run"} and all("token=" in row.body for row in rows)
    # a dry run holds no place in the cycle: the real run still reminds them
    real = campaign_run_trigger(campaign=campaign)
    assert execute(real)["sent"] == 3
    assert all(outbound_count(customer) == 1 for customer in customers)


@pytest.mark.django_db
def test_a_dry_run_calls_the_model_for_its_sample_only_and_shows_the_fallback_for_the_rest(
    campaign, fake_openai, settings
):
    # given three due customers and a model sample of one per batch
    settings.SMARTENGAGE_DRY_RUN_MODEL_SAMPLE = 1
    fake_openai.reply(AI_TEXT)
    for _ in range(3):
        customer_due(campaign.company)
    run = campaign_run_trigger(campaign=campaign, is_dry_run=True)

    # when
    result = execute(run)

    # then one model call; the others show the approved fallback with their link, and say so
    assert (result["status"], result["rendered"], result["sent"]) == ("completed", 3, 0)
    assert len(fake_openai.requests) == 1
    rows = list(run.recipients.order_by("customer_id"))
    assert rows[0].body.startswith(AI_TEXT.split("[BOOKING_LINK]")[0]) and rows[0].error == ""
    for row in rows[1:]:
        assert row.body.startswith("প্রিয় ") and "আবার করিয়ে নেওয়ার সময় হয়ে এসেছে" in row.body and "token=" in row.body
        assert row.error == DRY_RUN_NOT_CALLED and row.reason == ""
    assert AISession.objects.filter(company=campaign.company).count() == 1
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_a_dry_run_reads_the_segment_in_its_own_bigger_batches_a_real_run_in_the_presets(
    campaign, fake_openai, settings
):
    # given five due customers, a preset batch of 2, and a model sample of one customer per batch
    settings.SMARTENGAGE_DRY_RUN_MODEL_SAMPLE = 1
    settings.SMARTENGAGE_DRY_RUN_BATCH_SIZE = 4
    fake_openai.reply(AI_TEXT)
    for _ in range(5):
        customer_due(campaign.company)
    dry = campaign_run_trigger(campaign=campaign, is_dry_run=True, overrides={"batch_size": 2})

    assert execute(dry)["rendered"] == 5
    # batches of 4 and 1: two samples, where the preset's batches of 2 would have made three
    assert len(fake_openai.requests) == 2
    real = campaign_run_trigger(campaign=campaign, overrides={"batch_size": 2})
    assert execute(real)["sent"] == 5
    assert len(fake_openai.requests) == 2 + 5  # a real run calls the model for everyone


@pytest.mark.django_db
def test_a_dry_run_batch_costs_the_same_queries_for_three_customers_as_for_nine(campaign, fake_openai, settings):
    # no query per customer: not for their booking history, nor for a field the segment left unread
    from django.test.utils import CaptureQueriesContext

    settings.SMARTENGAGE_DRY_RUN_MODEL_SAMPLE = 0
    fake_openai.reply(AI_TEXT)

    def queries_of_a_dry_run(*, rendered: int) -> int:
        run = campaign_run_trigger(campaign=campaign, is_dry_run=True)
        with CaptureQueriesContext(connection) as queries:
            assert execute(run)["rendered"] == rendered
        return len(queries)

    for _ in range(3):
        customer_due(campaign.company)
    queries_of_a_dry_run(rendered=3)  # the caches (policy, templates, zones) filled
    three = queries_of_a_dry_run(rendered=3)
    for _ in range(6):
        customer_due(campaign.company)
    assert queries_of_a_dry_run(rendered=9) == three


@pytest.mark.django_db
def test_customers_outside_their_send_window_are_skipped_with_the_reason(campaign, fake_openai):
    fake_openai.reply(AI_TEXT)
    local_hour = timezone.now().astimezone(ZoneInfo("Asia/Dhaka")).hour
    start, end = (12, 24) if local_hour < 12 else (0, 12)
    policy_get_or_create(company=campaign.company).presets.filter(name="default").update(
        send_window_start_hour=start, send_window_end_hour=end
    )
    cache.clear()
    customer = customer_due(campaign.company)
    skipped_before = campaign_recipients_skipped_total.labels(reason="outside_send_window")._value.get()
    run = campaign_run_trigger(campaign=campaign)
    result = execute(run)
    assert (result["skipped"], result["sent"]) == (1, 0)
    assert run.recipients.get().reason == "outside_send_window"
    assert outbound_count(customer) == 0 and fake_openai.requests == []
    assert campaign_recipients_skipped_total.labels(reason="outside_send_window")._value.get() == skipped_before + 1


def skipped_metric(reason: str) -> float:
    return campaign_recipients_skipped_total.labels(reason=reason)._value.get()


@pytest.mark.django_db
@pytest.mark.parametrize("is_dry_run", [False, True])
def test_customers_the_segment_leaves_out_are_recorded_skipped_with_their_reason(
    campaign, fake_openai, client, staff_user, is_dry_run
):
    # given a due customer, one without consent, one messaged an hour ago (too soon), and one
    # already reminded in this cycle who is now also without consent
    fake_openai.reply(AI_TEXT)
    due = customer_due(campaign.company)
    no_consent = customer_due(campaign.company, is_sms_consented=False)
    too_soon = customer_due(campaign.company)
    reminded = customer_due(campaign.company)
    execute(campaign_run_trigger(campaign=campaign))  # reminds due, too_soon and reminded
    Message.objects.filter(contact=too_soon.contact).delete()
    Message.objects.create(
        company=campaign.company, contact=too_soon.contact, direction="outbound", channel="console",
        agent_type="coachnova", message_type="coaching", body="...", status="sent",
    )
    Message.objects.filter(contact=reminded.contact).update(created_at=timezone.now() - dt.timedelta(days=2))
    reminded.contact.is_sms_consented = False
    reminded.contact.save(update_fields=["is_sms_consented"])
    campaign.recipients.filter(customer=too_soon).delete()  # its intent gone: a candidate again
    before = {reason: skipped_metric(reason) for reason in ("no_consent", "too_soon")}

    # when a later run walks the segment
    run = campaign_run_trigger(campaign=campaign, is_dry_run=is_dry_run)
    result = execute(run)

    # then the two left out are recorded with their reason; the reminded one is not this run's at all
    assert (result["status"], result["skipped"], result["sent"], result["rendered"]) == ("completed", 2, 0, 0)
    assert dict(run.recipients.values_list("customer_id", "reason")) == {
        no_consent.pk: "no_consent", too_soon.pk: "too_soon"
    }
    assert set(run.recipients.values_list("status", flat=True)) == {"skipped"}
    assert all(row.cycle_started_at == row.customer.last_booking_at for row in run.recipients.select_related("customer"))
    assert due.pk not in set(run.recipients.values_list("customer_id", flat=True))
    assert {reason: skipped_metric(reason) - before[reason] for reason in before} == {"no_consent": 1, "too_soon": 1}
    # and the run's admin page lists them among its reasons
    client.force_login(staff_user)
    page = client.get(reverse("admin:engage_campaignrun_change", args=[run.pk])).content.decode()
    assert "No consent</a>: 1" in page and "Too soon after the last message</a>: 1" in page


@pytest.mark.django_db
def test_a_second_trigger_while_one_is_queued_is_recorded_locked(campaign):
    first = campaign_run_trigger(campaign=campaign)
    second = campaign_run_trigger(campaign=campaign, is_dry_run=True)
    assert (first.status, second.status) == ("queued", "locked")
    assert second.job is None and "queued or running" in second.error
    assert Job.objects.filter(task_name="smartengage_campaign_run").count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_triggers_at_the_same_time_one_runs_the_other_is_locked(campaign):
    barrier = threading.Barrier(2)
    runs, errors = [], []

    def trigger():
        try:
            barrier.wait()
            runs.append(campaign_run_trigger(campaign=campaign).status)
        except Exception as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=trigger) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(runs) == ["locked", "queued"]


@pytest.mark.django_db(transaction=True)
def test_the_campaign_lock_lets_one_process_execute_at_a_time(campaign, fake_openai):
    # given a run whose model calls take a while, executed in one thread
    fake_openai.reply(AI_TEXT)
    fake_openai.delay = 1.0
    customers = [customer_due(campaign.company) for _ in range(2)]
    run = campaign_run_trigger(campaign=campaign)
    started = threading.Event()
    results = {}

    def first():
        try:
            started.set()
            results["first"] = execute(run)
        finally:
            connection.close()

    thread = threading.Thread(target=first)
    thread.start()
    started.wait()
    # when a second process (a redelivered job) tries the same campaign meanwhile
    deadline = timezone.now() + dt.timedelta(seconds=5)
    while not CampaignRun.objects.filter(pk=run.pk, status="running").exists() and timezone.now() < deadline:
        pass
    results["second"] = campaign_run_execute(run_id=run.pk)
    thread.join()
    # then the second reports locked and the first sends each reminder once
    assert results["second"]["status"] == "locked"
    assert results["first"]["status"] == "completed" and results["first"]["sent"] == 2
    assert all(outbound_count(customer) == 1 for customer in customers)


@pytest.mark.django_db
def test_a_run_killed_midway_and_started_again_reminds_nobody_twice(campaign, fake_openai, monkeypatch):
    # given five due customers and a process that dies after writing the third intent
    fake_openai.reply(AI_TEXT)
    customers = [customer_due(campaign.company) for _ in range(5)]
    real_execute = smartengage_service.job_execute
    calls = {"count": 0}

    def dying_execute(**kwargs):
        calls["count"] += 1
        if calls["count"] == 3:
            raise SystemExit("worker killed")  # after the intent's commit, before the provider call
        return real_execute(**kwargs)

    monkeypatch.setattr(smartengage_service, "job_execute", dying_execute)
    run = campaign_run_trigger(campaign=campaign)
    with pytest.raises(SystemExit):
        execute(run)
    monkeypatch.setattr(smartengage_service, "job_execute", real_execute)
    run.refresh_from_db()
    assert run.status == "running"
    # the batch's five intents were committed before any provider call; two sends went out
    assert run.recipients.count() == 5
    assert Message.objects.filter(status="sent").count() == 2
    # when it is started again (the ledger's retry), and the interrupted send's job runs
    result = execute(run)
    for job in Job.objects.filter(task_name="smartengage_send", status="queued"):
        run_job(job)
    # then everyone got exactly one reminder
    assert result["status"] == "completed"
    assert [outbound_count(customer) for customer in customers] == [1] * 5
    assert Message.objects.filter(status="sent").count() == 5
    assert run.recipients.count() == 5
    assert campaign_run_execute(run_id=run.pk)["status"] == "completed"  # a late duplicate does nothing


@pytest.mark.django_db
def test_retry_failed_requeues_only_the_failed_recipients(campaign, fake_openai, monkeypatch):
    # given a run where the provider refuses one customer for good
    fake_openai.reply(AI_TEXT)
    good, bad = customer_due(campaign.company), customer_due(campaign.company)
    real_send = ConsoleAdapter.send

    def refusing_send(self, message):
        if message.contact_id == bad.contact_id:
            raise ChannelError("mailbox unavailable", permanent=True)
        return real_send(self, message)

    monkeypatch.setattr(ConsoleAdapter, "send", refusing_send)
    run = campaign_run_trigger(campaign=campaign)
    result = execute(run)
    assert (result["sent"], result["failed"]) == (1, 1)
    failed = run.recipients.get(customer=bad)
    assert failed.status == "failed" and "mailbox unavailable" in failed.error
    assert failed.job.status == "dead"
    # when the provider is back and an operator retries the failed ones
    monkeypatch.setattr(ConsoleAdapter, "send", real_send)
    assert campaign_run_retry_failed(run=run) == 1
    failed.refresh_from_db()
    assert (failed.status, failed.job.status) == ("pending", "queued")
    assert run_job(failed.job) == "completed"
    # then the failed one is sent, the sent one was never touched, and the counts follow
    failed.refresh_from_db()
    run.refresh_from_db()
    assert failed.status == "sent" and failed.message.status == "sent"
    assert (outbound_count(good), outbound_count(bad)) == (1, 1)
    assert (run.sent, run.failed) == (2, 0)
    assert campaign_run_retry_failed(run=run) == 0


@pytest.mark.django_db
def test_cancel_a_queued_run(campaign):
    run = campaign_run_trigger(campaign=campaign)
    campaign_run_cancel(run=run)
    run.refresh_from_db()
    assert run.status == "cancelled" and run.finished_at is not None
    assert run.job.status == "cancelled"
    assert execute(run)["status"] == "cancelled"
    # the campaign is free again
    assert campaign_run_trigger(campaign=campaign).status == "queued"


@pytest.mark.django_db
def test_the_daily_beat_queues_unpaused_campaigns(campaign, company):
    paused = Campaign.objects.create(company=company, name="Paused", is_paused=True)
    assert campaigns_daily_run() == {"queued": 1, "locked": 0, "disabled": 0}
    assert CampaignRun.objects.get().campaign == campaign
    assert not paused.runs.exists()
    assert campaigns_daily_run()["locked"] == 1
    schedule = next(item for item in DEFAULT_SCHEDULES if item["task"] == "engage.smartengage_campaign_run")
    assert schedule["crontab"] == {"minute": "0", "hour": "9"}


@pytest.mark.django_db
def test_campaign_funnel_counts_each_step(campaign, fake_openai):
    fake_openai.reply(AI_TEXT)
    customers = [customer_due(campaign.company) for _ in range(3)]
    execute(campaign_run_trigger(campaign=campaign))
    messages = list(Message.objects.filter(contact__customer__in=customers).order_by("pk"))
    for message in messages[:2]:
        message_status_update(
            company_id=message.company_id, channel="console", provider_message_id=message.provider_message_id,
            status="delivered",
        )
    now = timezone.now()
    for message in messages[:2]:
        user_event_record(company=campaign.company, event_type="notification_opened", correlation_id=message.correlation_id)
    user_event_record(
        company=campaign.company, event_type="message_clicked", correlation_id=messages[0].correlation_id,
        occurred_at=now,
    )
    user_event_record(
        company=campaign.company, event_type="booking_created", contact=messages[0].contact,
        occurred_at=now + dt.timedelta(hours=1),
    )
    assert campaign_funnel(campaign=campaign) == {"sent": 3, "delivered": 2, "opened": 2, "clicked": 1, "booked": 1}


@pytest.mark.django_db
def test_admin_actions_pages_and_tenant_scoping(campaign, client, staff_user, other_staff_user, fake_openai):
    # given alice and bob, Operations staff (the group's campaign permissions) of two companies
    fake_openai.reply(AI_TEXT)
    alice, bob = staff_user, other_staff_user
    customer_due(campaign.company)
    client.force_login(alice)
    changelist = reverse("admin:engage_campaign_changelist")
    # when: dry run, then pause
    response = client.post(changelist, {"action": "dry_run", "_selected_action": [campaign.pk]}, follow=True)
    assert response.status_code == 200 and "1 dry run queued: " in response.content.decode()
    run = CampaignRun.objects.get()
    assert run.is_dry_run and run.triggered_by == alice
    execute(run)
    client.post(changelist, {"action": "pause", "_selected_action": [campaign.pk]})
    campaign.refresh_from_db()
    assert campaign.is_paused
    # then the pages show the counts, the reasons and the funnel
    page = client.get(reverse("admin:engage_campaignrun_change", args=[run.pk])).content.decode()
    assert "All recipients of this run" in page
    assert client.get(reverse("admin:engage_campaign_change", args=[campaign.pk])).status_code == 200
    recipients = client.get(reverse("admin:engage_campaignrecipient_changelist") + f"?run__exact={run.pk}")
    assert recipients.status_code == 200
    # bob sees none of it; nobody logged out sees anything
    client.force_login(bob)
    assert client.get(reverse("admin:engage_campaign_change", args=[campaign.pk])).status_code == 404
    assert client.get(reverse("admin:engage_campaignrun_change", args=[run.pk])).status_code == 404
    bob_post = client.post(changelist, {"action": "run_now", "_selected_action": [campaign.pk]})
    assert bob_post.status_code in (200, 302) and CampaignRun.objects.count() == 1
    client.logout()
    assert client.get(changelist).status_code == 302


@pytest.mark.django_db
def test_an_intent_already_written_in_this_cycle_is_never_sent_again(campaign, fake_openai):
    # given a customer reminded by a first run
    fake_openai.reply(AI_TEXT)
    customer = customer_due(campaign.company)
    execute(campaign_run_trigger(campaign=campaign))
    # when a racing second run reaches the same customer past the segment (caps bypassed)
    second = campaign_run_trigger(campaign=campaign)
    messages_before, jobs_before = Message.objects.count(), Job.objects.count()
    result = smartengage_bulk_send(
        company=campaign.company, customers=[customer], channel="console", run=second, bypass_frequency_caps=True
    )
    # then the unique intent refuses it: skipped, and its job and message were rolled back
    assert (result.sent, result.skipped, result.outcomes[0].reason) == (0, 1, "already_reminded")
    assert (Message.objects.count(), Job.objects.count()) == (messages_before, jobs_before)
    assert second.recipients.get().reason == "already_reminded"
    assert outbound_count(customer) == 1


@pytest.mark.django_db
def test_dry_run_rows_by_copy_are_the_rows_of_the_portable_insert(campaign, fake_openai, monkeypatch):
    # given two customers, one of them outside the send window (a skipped row), dry-run twice:
    # once through PostgreSQL's COPY, once through the executemany every other database uses
    from django.forms.models import model_to_dict

    fake_openai.reply(AI_TEXT)
    customer_due(campaign.company)
    customer_due(campaign.company, timezone="Pacific/Kiritimati")
    policy = policy_get_or_create(company=campaign.company)
    hour = timezone.now().astimezone(ZoneInfo("Asia/Dhaka")).hour
    policy.presets.filter(name="default").update(send_window_start_hour=hour, send_window_end_hour=hour + 1)
    cache.clear()

    def rows_of(run):
        ignore = ["id", "run", "correlation_id", "created_at", "updated_at", "body"]
        return sorted(
            (tuple(sorted(model_to_dict(row, exclude=ignore).items())), "token=" in row.body)
            for row in run.recipients.all()
        )

    by_copy = campaign_run_trigger(campaign=campaign, is_dry_run=True)
    assert execute(by_copy)["status"] == "completed"
    monkeypatch.setattr(connection, "vendor", "portable")
    portable = campaign_run_trigger(campaign=campaign, is_dry_run=True)
    assert execute(portable)["status"] == "completed"

    assert rows_of(by_copy) == rows_of(portable)
    assert sorted(status for (row, _) in rows_of(by_copy) for key, status in row if key == "status") == [
        "dry_run", "skipped"
    ]


@pytest.mark.django_db
def test_a_run_longer_than_its_slice_continues_in_new_jobs_and_sends_everyone_once(
    campaign, fake_openai, settings, client, staff_user
):
    # given five due customers and one without consent, batches of two and a slice that ends after one batch
    settings.SMARTENGAGE_RUN_SLICE_SECONDS = 0
    fake_openai.reply(AI_TEXT)
    customers = [customer_due(campaign.company) for _ in range(2)]
    no_consent = customer_due(campaign.company, is_sms_consented=False)
    customers += [customer_due(campaign.company) for _ in range(3)]
    run = campaign_run_trigger(campaign=campaign, overrides={"batch_size": 2})
    first_job = run.job

    # when the first slice's job runs
    assert run_job(first_job) == "completed"

    # then it did one batch, moved the cursor and queued the next slice; the run is still running
    run.refresh_from_db()
    assert (run.status, run.cursor, run.slices, run.total_eligible) == ("running", customers[1].pk, 2, 2)
    assert run.job_id != first_job.pk and run.job.status == "queued"
    assert run.job.idempotency_key == f"smartengage_campaign_run:{run.pk}:2"
    assert [outbound_count(customer) for customer in customers] == [1, 1, 0, 0, 0]
    # and the following slices, each its own job, finish it
    jobs_run = 1
    while run.status == "running":
        assert run_job(run.job) == "completed"
        jobs_run += 1
        run.refresh_from_db()
    assert run.status == "completed" and run.finished_at is not None and jobs_run == run.slices == 4
    assert [outbound_count(customer) for customer in customers] == [1] * 5
    assert (run.total_eligible, run.sent, run.skipped) == (5, 5, 1)
    assert run.recipients.get(status="skipped").customer == no_consent
    assert run.cursor == customers[-1].pk
    # the run's page shows its slices and cursor
    client.force_login(staff_user)
    page = client.get(reverse("admin:engage_campaignrun_change", args=[run.pk])).content.decode()
    assert "Slices" in page
    assert re.search(rf'<div class="readonly[^"]*">\s*{run.cursor}\s*</div>', page), "the cursor is shown"


@pytest.mark.django_db
def test_a_slice_that_dies_resumes_after_the_cursor(campaign, fake_openai, monkeypatch):
    # given batches of two: c1, (no consent), c2 | c3, c4 | c5; the process dies at the third send
    fake_openai.reply(AI_TEXT)
    customers = [customer_due(campaign.company)]
    no_consent = customer_due(campaign.company, is_sms_consented=False)
    customers += [customer_due(campaign.company) for _ in range(4)]
    real_execute = smartengage_service.job_execute
    calls = {"count": 0}

    def dying_execute(**kwargs):
        calls["count"] += 1
        if calls["count"] == 3:
            raise SystemExit("worker killed")
        return real_execute(**kwargs)

    monkeypatch.setattr(smartengage_service, "job_execute", dying_execute)
    run = campaign_run_trigger(campaign=campaign, overrides={"batch_size": 2})
    with pytest.raises(SystemExit):
        execute(run)
    monkeypatch.setattr(smartengage_service, "job_execute", real_execute)
    run.refresh_from_db()
    # the first batch is done: the cursor is past it, its skipped customer recorded
    assert (run.status, run.cursor, run.total_eligible) == ("running", customers[1].pk, 2)
    assert run.recipients.filter(status="skipped").count() == 1

    # when the job's retry runs it, and the interrupted batch's send jobs run
    result = execute(run)
    for job in Job.objects.filter(task_name="smartengage_send", status="queued"):
        run_job(job)

    # then it went on after the cursor: the first batch's range was not walked (nor recorded) again
    assert result["status"] == "completed"
    assert [outbound_count(customer) for customer in customers] == [1] * 5
    assert list(run.recipients.filter(status="skipped").values_list("customer_id", flat=True)) == [no_consent.pk]
    assert run.recipients.filter(status__in=["sent", "pending"]).count() == 5


@pytest.mark.django_db
def test_cancel_between_two_slices_stops_the_run(campaign, fake_openai, settings):
    settings.SMARTENGAGE_RUN_SLICE_SECONDS = 0
    fake_openai.reply(AI_TEXT)
    customers = [customer_due(campaign.company) for _ in range(3)]
    run = campaign_run_trigger(campaign=campaign, overrides={"batch_size": 2})
    run_job(run.job)
    run.refresh_from_db()
    following = run.job

    campaign_run_cancel(run=run)

    run.refresh_from_db()
    following.refresh_from_db()
    assert (run.status, following.status) == ("cancelled", "cancelled") and run.finished_at is not None
    assert run_job(following) == "skipped"
    assert [outbound_count(customer) for customer in customers] == [1, 1, 0]
    assert campaign_run_trigger(campaign=campaign).status == "queued"  # the campaign is free again


def smartengage_switch_off(company) -> None:
    policy = policy_get_or_create(company=company)
    policy.is_smartengage_enabled = False
    policy.save()
    cache.clear()


@pytest.mark.django_db
def test_a_run_of_a_company_that_switched_smartengage_off_ends_disabled_without_retries(campaign, fake_openai):
    # given a queued run, then the company switches SmartEngage off
    fake_openai.reply(AI_TEXT)
    customer = customer_due(campaign.company)
    run = campaign_run_trigger(campaign=campaign)
    smartengage_switch_off(campaign.company)

    # when its job runs
    assert run_job(run.job) == "completed"

    # then the run ends at once, saying why; nothing sent, no retry left pending
    run.refresh_from_db()
    run.job.refresh_from_db()
    assert (run.status, run.error) == ("disabled", "SmartEngage is switched off in this company's engagement policy.")
    assert run.finished_at is not None and run.job.attempts == 1 and run.job.status == "completed"
    assert outbound_count(customer) == 0 and not run.recipients.exists() and fake_openai.requests == []


@pytest.mark.django_db
def test_nothing_is_queued_for_a_company_that_switched_smartengage_off(campaign, client, staff_user):
    smartengage_switch_off(campaign.company)
    with pytest.raises(SmartEngageDisabled):
        campaign_run_trigger(campaign=campaign)
    assert campaigns_daily_run() == {"queued": 0, "locked": 0, "disabled": 1}
    client.force_login(staff_user)
    response = client.post(
        reverse("admin:engage_campaign_changelist"), {"action": "run_now", "_selected_action": [campaign.pk]}, follow=True
    )
    page = response.content.decode()
    assert "SmartEngage is switched off in this company&#x27;s engagement policy." in page
    assert "No run queued." in page
    assert not CampaignRun.objects.exists() and not Job.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_dry_run_writes_on_its_own_thread_and_a_writer_failure_resumes_after_the_last_batch_committed(
    campaign, fake_openai, settings, monkeypatch
):
    # given seven due customers and three without consent, in batches of three (ids interleaved)
    settings.SMARTENGAGE_DRY_RUN_BATCH_SIZE = 3
    fake_openai.reply(AI_TEXT)
    due, refused = [], []
    for index in range(10):
        if index % 3 == 1:
            refused.append(customer_due(campaign.company, is_sms_consented=False))
        else:
            due.append(customer_due(campaign.company))
    run = campaign_run_trigger(campaign=campaign, is_dry_run=True, overrides={"batch_size": 3})
    # and a writer whose second batch fails (the database refusing it, say)
    from engage.campaigns import runner as campaigns_service

    real_skips_record = campaigns_service._skips_record
    writers = []

    def failing_second(**kwargs):
        writers.append(threading.current_thread().name)
        if len(writers) == 2:
            raise RuntimeError("the writer's batch failed")
        return real_skips_record(**kwargs)

    monkeypatch.setattr(campaigns_service, "_skips_record", failing_second)

    # when the slice runs: it fails, having committed its first batch only
    assert run_job(run.job) == "failed"
    run.refresh_from_db()
    assert writers[0].startswith(f"run-{run.pk}-writer") and writers[0] != threading.current_thread().name
    assert (run.status, run.cursor, run.total_eligible) == ("running", due[2].pk, 3)
    assert "RuntimeError: the writer's batch failed" in run.error
    first_range = {customer.pk for customer in due[:3] + refused[:1]}
    assert {row.customer_id for row in run.recipients.all()} == first_range

    # and its retry resumes after that batch
    monkeypatch.setattr(campaigns_service, "_skips_record", real_skips_record)
    assert run_job(run.job) == "completed"
    run.refresh_from_db()
    assert (run.status, run.total_eligible, run.rendered, run.skipped, run.sent) == ("completed", 7, 7, 3, 0)
    rows = {row.customer_id: (row.status, row.reason) for row in run.recipients.all()}
    assert len(rows) == run.recipients.count() == 10  # one row each: nobody written twice
    assert {rows[customer.pk] for customer in refused} == {("skipped", "no_consent")}
    assert {rows[customer.pk][0] for customer in due} == {"dry_run"}
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_a_dry_run_commits_without_waiting_for_the_disk_and_gives_the_setting_back():
    from engage.campaigns.runner import _dry_run_commits

    def synchronous_commit() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            return cursor.fetchone()[0]

    assert synchronous_commit() == "on"
    with _dry_run_commits(is_dry_run=True):
        assert synchronous_commit() == "off"
    assert synchronous_commit() == "on"
    with _dry_run_commits(is_dry_run=False):  # a real run's intents are on disk before any provider call
        assert synchronous_commit() == "on"
