"""The campaign admin as an operator uses it: actions, run pages, the funnel, and tenant scoping.

Everything goes through the real admin (Django's test client, logged in as Operations staff of the
company, or a superuser) and the real services behind it; runs execute through their ledger job.
"""

import datetime as dt
import json
import re

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from channels_app.adapters import console
from crm.models import User
from engage.campaigns.attribution import user_event_record
from engage.campaigns.runs import campaigns_daily_run
from engage.messaging.services import message_status_update
from engage.models import Campaign, CampaignRecipient, CampaignRun, Job, Message
from engage.policy.services import policy_get_or_create
from engage.prompts.services import templates_seed_defaults
from engage.tests.campaign_helpers import AI_TEXT, customer_due
from engage.tests.helpers import run_job

CAMPAIGNS = reverse("admin:engage_campaign_changelist")
RUNS = reverse("admin:engage_campaignrun_changelist")


def preset_update(company, **fields) -> None:
    policy_get_or_create(company=company).presets.filter(name="default").update(**fields)
    cache.clear()


def campaign_of(company, **fields) -> Campaign:
    templates_seed_defaults(company=company)
    preset_update(company, send_window_start_hour=0, send_window_end_hour=24)
    return Campaign.objects.create(
        company=company, name=fields.pop("name", "Daily reminders"), channel=fields.pop("channel", "console"),
        promo_code="SAVE15", **fields,
    )


@pytest.fixture
def campaign(company):
    return campaign_of(company)


@pytest.fixture
def alice(client, staff_user):
    client.force_login(staff_user)
    return staff_user


def act(client, changelist, action, *objects, follow=True):
    """Post an admin action on `objects` from their changelist, as the action menu does."""
    return client.post(changelist, {"action": action, "_selected_action": [obj.pk for obj in objects]}, follow=follow)


def shown(response) -> str:
    """The page's text as an operator reads it (tags dropped, whitespace collapsed)."""
    text = re.sub(r"<[^>]+>", " ", response.content.decode())
    return re.sub(r"\s+", " ", text)


def run_to_end(run: CampaignRun) -> CampaignRun:
    """Execute the run's ledger job (again, while the run is unfinished: a time-sliced run re-queues itself)."""
    for _ in range(20):
        run.refresh_from_db()
        if run.status not in (CampaignRun.Status.QUEUED, CampaignRun.Status.RUNNING) or run.job_id is None:
            break
        if run_job(run.job_id) == "skipped" and Job.objects.get(pk=run.job_id).status != Job.Status.QUEUED:
            break
    run.refresh_from_db()
    return run


def outbound_to(customer) -> int:
    return Message.objects.filter(contact=customer.contact, direction=Message.Direction.OUTBOUND).count()


# --- Campaign actions -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_run_now_queues_a_run_whose_job_reminds_the_eligible_customers(client, alice, campaign, fake_openai):
    # given two due customers, one not due yet and one without consent
    fake_openai.reply(AI_TEXT)
    due = [customer_due(campaign.company) for _ in range(2)]
    not_due = customer_due(campaign.company, days=5)
    no_consent = customer_due(campaign.company, is_sms_consented=False)

    # when Alice runs the campaign now
    response = act(client, CAMPAIGNS, "run_now", campaign)

    # then a run is queued with its job, and nothing is sent until the job runs
    assert response.status_code == 200 and "1 run queued: " in shown(response)
    run = CampaignRun.objects.get(campaign=campaign)
    assert (run.status, run.is_dry_run, run.triggered_by, run.trigger) == ("queued", False, alice, "admin")
    assert run.job.status == "queued" and not Message.objects.exists()
    run = run_to_end(run)
    assert (run.status, run.sent, run.failed) == ("completed", 2, 0)
    assert [outbound_to(customer) for customer in due] == [1, 1]
    assert (outbound_to(not_due), outbound_to(no_consent)) == (0, 0)
    assert set(run.recipients.filter(status="sent").values_list("customer_id", flat=True)) == {c.pk for c in due}


@pytest.mark.django_db
def test_dry_run_renders_every_reminder_and_sends_nothing(client, alice, campaign, fake_openai):
    fake_openai.reply(AI_TEXT)
    customers = [customer_due(campaign.company) for _ in range(3)]
    outbox_before = len(console.outbox)

    response = act(client, CAMPAIGNS, "dry_run", campaign)

    assert "1 dry run queued: " in shown(response)
    run = run_to_end(CampaignRun.objects.get(campaign=campaign))
    assert (run.status, run.is_dry_run, run.rendered, run.sent) == ("completed", True, 3, 0)
    rows = list(run.recipients.all())
    assert {row.customer_id for row in rows} == {customer.pk for customer in customers}
    assert all(row.status == "dry_run" and "token=" in row.body for row in rows)
    assert not Message.objects.exists() and len(console.outbox) == outbox_before
    assert not Job.objects.filter(task_name="smartengage_send").exists()


@pytest.mark.django_db
def test_pause_keeps_the_campaign_out_of_the_daily_run_and_resume_brings_it_back(client, alice, campaign):
    response = act(client, CAMPAIGNS, "pause", campaign)

    assert "1 campaign paused." in shown(response)
    campaign.refresh_from_db()
    assert campaign.is_paused
    assert campaigns_daily_run()["queued"] == 0
    assert not campaign.runs.exists()

    response = act(client, CAMPAIGNS, "resume", campaign)

    assert "1 campaign resumed." in shown(response)
    campaign.refresh_from_db()
    assert not campaign.is_paused
    assert campaigns_daily_run()["queued"] == 1
    assert campaign.runs.get().trigger == "beat"


# --- Run actions ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_cancel_a_queued_run_cancels_its_job_and_it_sends_nothing(client, alice, campaign, fake_openai):
    fake_openai.reply(AI_TEXT)
    customer = customer_due(campaign.company)
    act(client, CAMPAIGNS, "run_now", campaign)
    run = CampaignRun.objects.get()

    response = act(client, RUNS, "cancel", run)

    assert "1 run cancelled." in shown(response)
    run.refresh_from_db()
    assert (run.status, run.job.status) == ("cancelled", "cancelled")
    assert run.finished_at is not None
    assert run_to_end(run).status == "cancelled"
    assert outbound_to(customer) == 0 and fake_openai.requests == []
    # cancelling it again says why not
    assert "Only queued or running runs can be cancelled" in shown(act(client, RUNS, "cancel", run))


@pytest.mark.django_db
def test_cancel_a_running_run_stops_it_after_the_current_batch(client, alice, campaign, fake_openai, monkeypatch):
    # given a run of one customer a batch over four customers, and an operator who cancels it
    # from the admin the moment the first reminder has gone out
    fake_openai.reply(AI_TEXT)
    preset_update(campaign.company, batch_size=1)
    customers = [customer_due(campaign.company) for _ in range(4)]
    act(client, CAMPAIGNS, "run_now", campaign)
    run = CampaignRun.objects.get()
    real_send = console.ConsoleAdapter.send
    seen = {}

    def send_then_cancel(adapter, message):
        result = real_send(adapter, message)
        if not seen:
            seen["status"] = CampaignRun.objects.get(pk=run.pk).status
            seen["answer"] = shown(act(client, RUNS, "cancel", run))
        return result

    monkeypatch.setattr(console.ConsoleAdapter, "send", send_then_cancel)

    # when its job runs
    run = run_to_end(run)

    # then the run was running when cancelled, and nobody after the first batch was reminded
    assert seen["status"] == "running" and "1 run cancelled." in seen["answer"]
    assert (run.status, run.sent) == ("cancelled", 1)
    assert run.finished_at is not None
    assert sum(outbound_to(customer) for customer in customers) == 1
    assert Message.objects.count() == 1
    # a redelivered job sends nothing more
    run_job(run.job_id)
    assert Message.objects.count() == 1


@pytest.fixture
def sms_campaign(company, twilio_account):
    return campaign_of(company, channel="sms", name="SMS reminders")


@pytest.mark.django_db
def test_retry_failed_requeues_only_the_failed_recipients(client, alice, sms_campaign, fake_openai, fake_twilio):
    # given a run whose first SMS the provider rejects for good (the local fake Twilio answers 400)
    fake_openai.reply(AI_TEXT)
    customers = [customer_due(sms_campaign.company, phone=f"+88017110000{n}") for n in (11, 12)]
    fake_twilio.fail(status=400, body={"code": 21211, "message": "Invalid 'To' Phone Number", "status": 400})
    act(client, CAMPAIGNS, "run_now", sms_campaign)
    run = run_to_end(CampaignRun.objects.get())
    assert (run.sent, run.failed) == (1, 1)
    failed = run.recipients.get(status="failed")
    sent = run.recipients.get(status="sent")
    assert failed.job.status == "dead" and failed.message.status == "failed"
    sent_message = (sent.message_id, sent.message.provider_message_id, sent.job.status)
    requests_before = len(fake_twilio.requests)

    # when the operator retries the run's failed recipients
    response = act(client, RUNS, "retry_failed", run)

    # then only the failed one is queued again; once its job runs, it is sent and nobody got two
    assert "1 failed recipient(s) queued again" in shown(response)
    failed.refresh_from_db()
    assert (failed.status, failed.job.status) == ("pending", "queued")
    assert run_job(failed.job) == "completed"
    failed.refresh_from_db()
    sent.refresh_from_db()
    run.refresh_from_db()
    assert failed.status == "sent" and failed.message.status == "sent"
    assert (sent.status, sent.message_id, sent.message.provider_message_id, sent.job.status) == ("sent", *sent_message)
    assert len(fake_twilio.requests) == requests_before + 1
    assert fake_twilio.requests[-1]["To"] == failed.customer.contact.phone
    assert [outbound_to(customer) for customer in customers] == [1, 1]
    assert (run.sent, run.failed) == (2, 0)
    # nothing failed is left: a second retry queues nobody
    assert "0 failed recipient(s) queued again" in shown(act(client, RUNS, "retry_failed", run))


# --- Pages ----------------------------------------------------------------------------------------


def zone_at(local_hour: int) -> str:
    """A fixed-offset zone (Etc/GMT±N, UTC-12 to UTC+11) where it is `local_hour` o'clock now."""
    offset = (local_hour - timezone.now().astimezone(dt.UTC).hour + 12) % 24 - 12
    return f"Etc/GMT{-offset:+d}" if offset else "Etc/UTC"


@pytest.mark.django_db
def test_the_run_page_lists_the_skip_and_fallback_reasons_with_counts(client, alice, campaign, fake_openai):
    # given a send window of 11-14 h: three customers where it is 12 h now, two where it is 18 h, and
    # the model's text for one of the three inside fails the safety filter (two hours of margin: no
    # clock edge is crossed while the test runs)
    preset_update(campaign.company, send_window_start_hour=11, send_window_end_hour=14)
    inside, outside = zone_at(12), zone_at(18)
    for _ in range(2):
        customer_due(campaign.company, timezone=outside)
    customer_due(campaign.company, name="Karim Unsafe", timezone=inside)
    for name in ("Rahim", "Salma"):
        customer_due(campaign.company, name=name, timezone=inside)
    english = "This is an English reply with 100% guaranteed results"
    fake_openai.respond_with(
        # the prompt names the customer by the given name
        lambda request: english if "Karim" in json.dumps(request, ensure_ascii=False) else AI_TEXT
    )
    act(client, CAMPAIGNS, "run_now", campaign)
    run = run_to_end(CampaignRun.objects.get())
    assert (run.sent, run.skipped) == (3, 2)

    page = shown(client.get(reverse("admin:engage_campaignrun_change", args=[run.pk])))

    assert "Outside the send window : 2" in page
    assert "Safety filter rejected the AI text (the fallback went out if it passed) : 1" in page
    assert "Daily cap reached" not in page
    # each reason links to its recipients, which the recipients list shows
    listing = client.get(
        reverse("admin:engage_campaignrecipient_changelist") + f"?run__exact={run.pk}&reason=outside_send_window"
    )
    assert listing.status_code == 200
    skipped = run.recipients.filter(reason="outside_send_window").values_list("pk", flat=True)
    links = set(re.findall(r"/campaignrecipient/(\d+)/change/", listing.content.decode()))
    assert links == {str(pk) for pk in skipped} and len(links) == 2


@pytest.mark.django_db
def test_the_campaign_page_shows_the_funnel_with_real_numbers(client, alice, campaign, fake_openai):
    # given a run that reminded four customers: 3 delivered, 2 opened, 2 clicked, 1 booked after its click
    fake_openai.reply(AI_TEXT)
    for _ in range(4):
        customer_due(campaign.company)
    act(client, CAMPAIGNS, "run_now", campaign)
    run_to_end(CampaignRun.objects.get())
    messages = list(Message.objects.filter(direction="outbound").order_by("pk"))
    assert len(messages) == 4
    for message in messages[:3]:
        message_status_update(
            company_id=message.company_id, channel="console", provider_message_id=message.provider_message_id,
            status="delivered",
        )
    now = timezone.now()
    company = campaign.company
    for message in messages[:2]:
        user_event_record(company=company, event_type="notification_opened", correlation_id=message.correlation_id)
        user_event_record(
            company=company, event_type="message_clicked", correlation_id=message.correlation_id,
            occurred_at=now - dt.timedelta(hours=2),
        )
    user_event_record(
        company=company, event_type="booking_created", contact=messages[0].contact, occurred_at=now - dt.timedelta(hours=1)
    )
    # a booking before its click converts nothing
    user_event_record(
        company=company, event_type="booking_created", contact=messages[1].contact, occurred_at=now - dt.timedelta(hours=3)
    )

    page = shown(client.get(reverse("admin:engage_campaign_change", args=[campaign.pk])))

    assert "sent 4 delivered 3 (75%) opened 2 (50%) clicked 2 (50%) booked 1 (25%)" in page


# --- Tenant scoping -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_another_companys_staff_gets_404_and_their_actions_touch_nothing(
    client, staff_user, other_staff_user, campaign, fake_openai
):
    # given Alice's campaign with a finished run (one failed recipient would be retryable) and a queued one
    fake_openai.reply(AI_TEXT)
    customer_due(campaign.company)
    client.force_login(staff_user)
    act(client, CAMPAIGNS, "run_now", campaign)
    finished = run_to_end(CampaignRun.objects.get())
    act(client, CAMPAIGNS, "run_now", campaign)
    queued = CampaignRun.objects.get(status="queued")
    runs_before = CampaignRun.objects.count()

    # when Bob, Operations staff of another company, tries them
    client.force_login(other_staff_user)

    # then every page is a 404, and no action changes anything
    assert client.get(reverse("admin:engage_campaign_change", args=[campaign.pk])).status_code == 404
    assert client.get(reverse("admin:engage_campaignrun_change", args=[finished.pk])).status_code == 404
    assert client.get(reverse("admin:engage_campaignrun_change", args=[queued.pk])).status_code == 404
    assert "Daily reminders" not in shown(client.get(CAMPAIGNS))
    for action in ("run_now", "dry_run", "pause"):
        act(client, CAMPAIGNS, action, campaign)
    for action in ("cancel", "retry_failed"):
        act(client, RUNS, action, queued, finished)
    campaign.refresh_from_db()
    queued.refresh_from_db()
    assert not campaign.is_paused
    assert CampaignRun.objects.count() == runs_before
    assert (queued.status, queued.job.status) == ("queued", "queued")
    assert Message.objects.count() == 1


@pytest.mark.django_db
def test_a_superuser_sees_and_acts_on_every_company(client, campaign, other_company, fake_openai):
    # given campaigns of two companies
    fake_openai.reply(AI_TEXT)
    other = campaign_of(other_company, name="Beta reminders")
    customer_due(campaign.company)
    customer_due(other_company)
    root = User.objects.create_superuser(email="root@shokti.test", password="x")
    client.force_login(root)

    # when the superuser runs both at once
    response = act(client, CAMPAIGNS, "run_now", campaign, other)

    # then both are queued and each run reminds its own company's customer
    assert "2 runs queued: " in shown(response)
    listing = shown(client.get(CAMPAIGNS))
    assert "Daily reminders" in listing and "Beta reminders" in listing
    for run in CampaignRun.objects.all():
        run = run_to_end(run)
        assert (run.status, run.sent) == ("completed", 1)
        assert client.get(reverse("admin:engage_campaignrun_change", args=[run.pk])).status_code == 200
    assert set(Message.objects.values_list("company_id", flat=True)) == {campaign.company_id, other_company.pk}
    # and cancels a queued run of the other company
    act(client, CAMPAIGNS, "run_now", other)
    queued = CampaignRun.objects.get(status="queued")
    assert "1 run cancelled." in shown(act(client, RUNS, "cancel", queued))
    queued.refresh_from_db()
    assert (queued.status, queued.job.status) == ("cancelled", "cancelled")
    assert CampaignRecipient.objects.filter(run=queued).count() == 0


# --- The campaign page that acts (buttons, estimate, run page progress) -----------------------------------


def test_the_campaign_page_estimates_the_audience_and_run_now_opens_the_run(client, alice, company, campaign):
    customer_due(company, name="Due", email="due@example.test")
    customer_due(company, name="Opted out", email="out@example.test", is_sms_consented=False)

    page = client.get(reverse("admin:engage_campaign_change", args=[campaign.pk])).content.decode()

    assert '<strong id="estimate-eligible">1</strong>' in page
    assert '<strong id="estimate-no-consent">1</strong>' in page
    assert 'id="run-now"' in page and "confirm(" in page
    assert '<select name="preset"' in page

    response = client.post(reverse("admin:engage_campaign_do", args=[campaign.pk, "run_now"]))

    run = CampaignRun.objects.get(campaign=campaign)
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:engage_campaignrun_change", args=[run.pk])
    assert not run.is_dry_run and run.triggered_by == alice
    run_job(run.job_id)
    progress = client.get(reverse("admin:engage_campaignrun_progress", args=[run.pk])).json()
    assert progress["is_finished"] and progress["sent"] == 1 and progress["percent"] == 100
    run_page = client.get(reverse("admin:engage_campaignrun_change", args=[run.pk])).content.decode()
    assert 'id="run-bar"' in run_page and 'id="funnel-chart"' in run_page
    assert re.search(r"<details|collapse", run_page)  # internals folded


def test_the_campaign_buttons_pause_resume_and_dry_run(client, alice, campaign):
    do = lambda operation: client.post(reverse("admin:engage_campaign_do", args=[campaign.pk, operation]))  # noqa: E731

    do("pause")
    assert Campaign.objects.get(pk=campaign.pk).is_paused
    do("resume")
    assert not Campaign.objects.get(pk=campaign.pk).is_paused
    response = do("dry_run")
    run = CampaignRun.objects.get(campaign=campaign)
    assert run.is_dry_run and response["Location"].endswith(f"/{run.pk}/change/")
    assert client.get(reverse("admin:engage_campaign_do", args=[campaign.pk, "pause"])).status_code == 403


def test_another_companys_staff_cannot_press_the_campaign_buttons(client, other_staff_user, campaign):
    client.force_login(other_staff_user)

    response = client.post(reverse("admin:engage_campaign_do", args=[campaign.pk, "run_now"]))

    assert response.status_code == 404
    assert not CampaignRun.objects.filter(campaign=campaign).exists()


def test_a_marketer_launches_a_campaign_with_the_groups_own_permissions(client, company, campaign):
    # The Marketing group as the migrations leave it (no grant in the test): Run now is theirs too.
    from crm.models import Membership
    from crm.tests.factories import StaffUserFactory

    marketer = StaffUserFactory(email="tanvir@alpha.test", groups=["Marketing"])
    Membership.objects.create(user=marketer, company=company, role=Membership.Role.MARKETING)
    client.force_login(marketer)
    customer_due(company, name="Due", email="due@example.test")

    page = client.get(reverse("admin:engage_campaign_change", args=[campaign.pk])).content.decode()
    response = client.post(reverse("admin:engage_campaign_do", args=[campaign.pk, "run_now"]))

    assert 'id="run-now"' in page
    run = CampaignRun.objects.get(campaign=campaign)
    assert response.status_code == 302 and run.triggered_by == marketer
