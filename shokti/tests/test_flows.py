"""The headline flows end to end, on PostgreSQL and on the embedded default (SQLite, file cache).

`make test` runs this module twice: with the rest of the suite on PostgreSQL and Redis, and again
(`-m embedded`) on a SQLite database with no Redis, the way `make run` runs on a bare machine. Jobs
run in this process, as a worker would run them.
"""

import datetime as dt
from urllib.parse import urlparse

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from channels_app.tests.conftest import TWILIO_AUTH_TOKEN, account_create, twilio_post
from crm.feed.services import booking_create
from crm.models import Channel, Event, Lead
from crm.tests.factories import ServiceFactory, StaffUserFactory
from engage.campaigns import runner
from engage.campaigns.attribution import user_event_record
from engage.campaigns.models import Campaign, CampaignRecipient, CampaignRun
from engage.campaigns.runs import campaign_funnel, campaign_run_trigger
from engage.conversations.models import Sequence, SequenceStep
from engage.conversations.sequences import sequence_enroll, sequences_advance
from engage.ledger.models import Job
from engage.ledger.services import dlq_replay, job_execute
from engage.messaging.models import Message
from engage.policy.services import policy_get_or_create
from engage.prompts.models import PromptTemplateVersion
from engage.prompts.services import template_version_create, templates_seed_defaults
from engage.studio.services import template_publish
from engage.tests.campaign_helpers import AI_TEXT, customer_due

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

PHONE = "+8801911000001"  # the factories number contacts +8801711nnnnnn


def run_due_jobs(*, rounds: int = 20) -> list[str]:
    """Run every queued job that is due (and those they queue), as the worker would; a failed job's retry
    is due after its backoff, so it runs here only when the test makes it due."""
    outcomes = []
    for _ in range(rounds):
        due = list(Job.objects.filter(
            status__in=[Job.Status.QUEUED, Job.Status.FAILED], next_run_at__lte=timezone.now()
        ).order_by("-priority", "id"))
        if not due:
            break
        for job in due:
            outcomes.append(job_execute(job_id=job.pk, worker="flow-test"))
    return outcomes


@pytest.fixture
def sms_account(company, fake_twilio):
    return account_create(
        company=company, channel=Channel.SMS,
        settings={"account_sid": "AC" + "1" * 32, "from_number": "+15005550006"},
        secrets={"auth_token": TWILIO_AUTH_TOKEN},
    )


@pytest.fixture
def campaign(company):
    policy = policy_get_or_create(company=company)
    # Everyone inside the send window whatever the hour the suite runs at.
    policy.presets.filter(name="default").update(send_window_start_hour=0, send_window_end_hour=24)
    templates_seed_defaults(company=company)
    return Campaign.objects.create(company=company, name="Reminders", channel=Channel.SMS)


def test_inbound_lead_gets_an_ai_reply_whose_delivery_is_reported(key_client, client, sms_account, fake_openai,
                                                                   fake_twilio):
    fake_openai.reply("নমস্কার! আমাদের ক্লিনিং সার্ভিস প্রতি সপ্তাহে পাওয়া যায়।")

    response = key_client.post("/inbound-message", {
        "phone_number": PHONE, "message_text": "আপনাদের ক্লিনিং কবে পাওয়া যায়?", "channel": "sms",
        "contact_name": "Rahim",
    }, format="json")
    assert response.status_code == 202
    lead = Lead.objects.get(pk=response.json()["lead_id"])

    assert "completed" in run_due_jobs()
    reply = Message.objects.get(lead=lead, direction=Message.Direction.OUTBOUND, agent_type="sales")
    assert reply.status == Message.Status.SENT and reply.body.startswith("নমস্কার")
    assert len(fake_twilio.requests) == 1

    callback = twilio_post(client, reverse("channels:sms-status", kwargs={"token": sms_account.webhook_token}),
                           {"MessageSid": reply.provider_message_id, "MessageStatus": "delivered"})
    assert callback.status_code == 204
    reply.refresh_from_db()
    assert reply.status == Message.Status.DELIVERED and reply.delivered_at is not None
    # Silence after the reply schedules a follow-up.
    assert Job.objects.filter(task_name="followup_bumpup", status=Job.Status.QUEUED).exists()


def test_a_follow_up_goes_out_after_silence(key_client, sms_account, fake_openai, fake_twilio):
    fake_openai.reply("আমরা আপনার উত্তরের অপেক্ষায় আছি।")
    key_client.post("/inbound-message", {"phone_number": PHONE, "message_text": "দাম কত?", "channel": "sms"},
                    format="json")
    run_due_jobs()
    Job.objects.filter(task_name="followup_bumpup").update(next_run_at=timezone.now())

    run_due_jobs(rounds=1)

    assert Message.objects.filter(message_type="followup", status=Message.Status.SENT).count() == 1


def test_a_sequence_step_is_sent_and_the_enrollment_moves_on(company, sms_account, fake_twilio, fake_openai):
    lead = Lead.objects.get(pk=_lead(company).pk)
    sequence = Sequence.objects.create(company=company, name="Welcome", pipeline=lead.pipeline)
    SequenceStep.objects.create(sequence=sequence, order=1, channel=Channel.SMS, delay_minutes=0,
                                fixed_text="স্বাগতম! আমাদের সাথে থাকার জন্য ধন্যবাদ।")
    SequenceStep.objects.create(sequence=sequence, order=2, channel=Channel.SMS, delay_minutes=48 * 60,
                                fixed_text="আপনার কোনো প্রশ্ন আছে?")
    enrollment, _ = sequence_enroll(sequence=sequence, lead=lead, actor=None, source="test")

    sequences_advance()
    run_due_jobs()

    sent = Message.objects.get(lead=lead, message_type="sequence_step")
    assert sent.status == Message.Status.SENT and sent.body.startswith("স্বাগতম")
    enrollment.refresh_from_db()
    assert enrollment.current_step.order == 2


def _lead(company):
    from engage.conversations.inbound import inbound_message_capture

    result = inbound_message_capture(company=company, channel=Channel.SMS, text="হ্যালো", phone=PHONE,
                                     contact_name="Karim")
    Job.objects.filter(task_name="ai_engage").update(status=Job.Status.CANCELLED)
    return Lead.objects.get(pk=result.lead_id)


def test_campaign_dry_run_then_real_run_then_the_funnel(campaign, sms_account, fake_openai, fake_twilio, client):
    fake_openai.reply(AI_TEXT)
    customers = [customer_due(campaign.company, phone=f"+88019110000{i:02d}", is_sms_consented=True,
                              timezone="Asia/Dhaka") for i in range(3)]
    customer_due(campaign.company, phone="+8801911000099", is_sms_consented=False)

    dry = campaign_run_trigger(campaign=campaign, is_dry_run=True)
    run_due_jobs()
    dry.refresh_from_db()
    assert (dry.status, dry.rendered, dry.sent) == ("completed", 3, 0)
    assert fake_twilio.requests == [] and not Message.objects.filter(agent_type="smartengage").exists()

    real = campaign_run_trigger(campaign=campaign)
    run_due_jobs()
    real.refresh_from_db()
    assert (real.status, real.sent, real.failed) == ("completed", 3, 0)
    assert real.recipients.filter(status=CampaignRecipient.Status.SKIPPED, reason="no_consent").count() == 1
    assert len(fake_twilio.requests) == 3

    # The first customer opens the message, follows its short link (to the signed booking link) and books.
    message = Message.objects.get(agent_type="smartengage", contact=customers[0].contact)
    user_event_record(company=campaign.company, contact=message.contact, event_type="notification_opened",
                      correlation_id=message.correlation_id, source="app")
    short = urlparse(next(word for word in message.body.split() if "/l/" in word)).path
    signed = client.get(short)
    assert signed.status_code == 302
    booked = client.get(signed["Location"].replace("http://testserver", ""))
    assert booked.status_code in (200, 302)
    booking_create(company=campaign.company, customer=customers[0], service=ServiceFactory(company=campaign.company),
                   scheduled_at=timezone.now() + dt.timedelta(days=2))

    funnel = campaign_funnel(campaign=campaign)
    assert (funnel["sent"], funnel["opened"], funnel["clicked"], funnel["booked"]) == (3, 1, 1, 1)


def test_a_published_template_is_what_the_next_run_sends_from(campaign, sms_account, fake_openai, fake_twilio):
    fake_openai.reply(AI_TEXT)
    customer_due(campaign.company, phone=PHONE, is_sms_consented=True)
    reminder = PromptTemplateVersion.objects.get(
        template__company=campaign.company, template__name="reminder", status=PromptTemplateVersion.Status.APPROVED
    )
    marketer = StaffUserFactory(email="mina@alpha.test")
    draft = template_version_create(template=reminder.template, body=reminder.body + "\nশেষে ধন্যবাদ জানাও।")
    template_publish(version=draft, actor=marketer)

    campaign_run_trigger(campaign=campaign)
    run_due_jobs()

    sent = Message.objects.get(agent_type="smartengage")
    assert sent.template_version_id == draft.pk and sent.status == Message.Status.SENT
    assert "শেষে ধন্যবাদ জানাও" in fake_openai.requests[-1]["messages"][-1]["content"]
    assert Event.objects.filter(type="template.published", company=campaign.company).count() == 1


def test_a_dead_campaign_run_replayed_resumes_and_sends(campaign, sms_account, fake_openai, fake_twilio,
                                                        monkeypatch):
    fake_openai.reply(AI_TEXT)
    customer_due(campaign.company, phone=PHONE, is_sms_consented=True)
    real_skips_record = runner._skips_record

    def broken(**kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(runner, "_skips_record", broken)
    run = campaign_run_trigger(campaign=campaign)
    for _ in range(3):  # every attempt fails; the last one leaves the job dead and the run failed
        Job.objects.filter(status=Job.Status.FAILED).update(next_run_at=timezone.now())
        run_due_jobs()
    run.refresh_from_db()
    job = Job.objects.get(task_name="smartengage_campaign_run")
    assert (run.status, job.status) == (CampaignRun.Status.FAILED, Job.Status.DEAD)

    monkeypatch.setattr(runner, "_skips_record", real_skips_record)
    replay = dlq_replay(company=campaign.company)
    assert replay.replayed == [job.pk] and replay.refused == []
    run_due_jobs()

    run.refresh_from_db()
    job.refresh_from_db()
    assert (run.status, run.sent, run.error) == (CampaignRun.Status.COMPLETED, 1, "")
    assert job.status == Job.Status.COMPLETED and len(fake_twilio.requests) == 1
    # A finished run's job cannot be replayed into doing nothing: it is refused with the reason.
    Job.objects.filter(pk=job.pk).update(status=Job.Status.DEAD)
    refused = dlq_replay(company=campaign.company)
    assert refused.replayed == [] and "nothing to resume" in refused.refused[0][1]
    assert connection.vendor in ("postgresql", "sqlite")
