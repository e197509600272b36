"""Replies go out from the number the customer wrote to: a company with two WhatsApp Cloud numbers and
two Twilio numbers, against the local fake Graph API and fake Twilio. A contact who never wrote gets
the account's default number; a number the account no longer owns is never sent from."""

import pytest
from django.urls import reverse
from django.utils import timezone

from channels_app.models import ChannelNumber
from channels_app.tests.conftest import TWILIO_AUTH_TOKEN, WHATSAPP_APP_SECRET, account_create, meta_post, twilio_post
from channels_app.tests.test_whatsapp_cloud import inbound_payload
from crm.models import Channel, Lead
from crm.tests.factories import ContactFactory
from engage.ledger.models import Job
from engage.ledger.services import job_execute
from engage.messaging.models import Message
from engage.messaging.selectors import contact_reply_number
from engage.messaging.services import channel_options, channel_settings_cache_clear, message_send

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

WA_DEFAULT, WA_SECOND = "1098765", "2098765"
SMS_DEFAULT, SMS_SECOND = "+15005550006", "+15005550007"
TWILIO_SID = "AC" + "1" * 32


@pytest.fixture(autouse=True)
def _fresh_settings_cache():
    channel_settings_cache_clear()
    yield
    channel_settings_cache_clear()


@pytest.fixture
def whatsapp_numbers(company, fake_graph_api):
    account = account_create(
        company=company, channel=Channel.WHATSAPP_CLOUD, settings={"phone_number_id": WA_DEFAULT},
        secrets={"access_token": "EAAG-token", "app_secret": WHATSAPP_APP_SECRET, "verify_token": "v"},
    )
    ChannelNumber.objects.create(company=company, account=account, channel=Channel.WHATSAPP_CLOUD, number=WA_SECOND)
    return account


@pytest.fixture
def sms_numbers(company, fake_twilio):
    account = account_create(
        company=company, channel=Channel.SMS, settings={"account_sid": TWILIO_SID, "from_number": SMS_DEFAULT},
        secrets={"auth_token": TWILIO_AUTH_TOKEN},
    )
    ChannelNumber.objects.create(company=company, account=account, channel=Channel.SMS, number=SMS_SECOND)
    return account


def run_ai_replies(fake_openai) -> None:
    fake_openai.reply("ধন্যবাদ! আমরা কাল সকালে আসব।")
    for job in Job.objects.filter(task_name="ai_engage", status=Job.Status.QUEUED).order_by("id"):
        assert job_execute(job_id=job.pk, worker="test") == "completed"


def whatsapp_write(client, account, *, number: str, wamid: str, text: str = "কাল আসবেন?"):
    url = reverse("channels:whatsapp-cloud-webhook", kwargs={"token": account.webhook_token})
    assert meta_post(client, url, inbound_payload(text=text, wamid=wamid, phone_number_id=number)).status_code == 200


def sms_write(client, account, *, to: str, sid: str, text: str = "কাল আসবেন?"):
    url = reverse("channels:sms-inbound", kwargs={"token": account.webhook_token})
    params = {"MessageSid": sid, "AccountSid": TWILIO_SID, "From": "+8801711000009", "To": to, "Body": text}
    assert twilio_post(client, url, params).status_code == 200


def test_the_ai_reply_on_whatsapp_goes_from_the_number_written_to(client, whatsapp_numbers, fake_graph_api,
                                                                   fake_openai):
    whatsapp_write(client, whatsapp_numbers, number=WA_SECOND, wamid="wamid.IN-SECOND")

    run_ai_replies(fake_openai)

    [request] = fake_graph_api.requests
    assert request["path"].endswith(f"/{WA_SECOND}/messages")
    inbound = Message.objects.get(direction=Message.Direction.INBOUND)
    reply = Message.objects.get(direction=Message.Direction.OUTBOUND, message_type="reply")
    assert (inbound.channel_number, reply.channel_number, reply.status) == (WA_SECOND, WA_SECOND, Message.Status.SENT)


def test_after_writing_to_the_other_number_replies_follow_it(client, whatsapp_numbers, fake_graph_api, fake_openai):
    whatsapp_write(client, whatsapp_numbers, number=WA_SECOND, wamid="wamid.IN-1")
    run_ai_replies(fake_openai)
    whatsapp_write(client, whatsapp_numbers, number=WA_DEFAULT, wamid="wamid.IN-2", text="আর দাম?")

    run_ai_replies(fake_openai)

    assert [request["path"].rsplit("/", 2)[-2] for request in fake_graph_api.requests] == [WA_SECOND, WA_DEFAULT]


def test_the_ai_reply_on_sms_goes_from_the_twilio_number_written_to(client, sms_numbers, fake_twilio, fake_openai):
    sms_write(client, sms_numbers, to=SMS_SECOND, sid="SM" + "a" * 32)

    run_ai_replies(fake_openai)

    [request] = fake_twilio.requests
    assert (request["From"], request["To"]) == (SMS_SECOND, "+8801711000009")
    assert Message.objects.get(direction=Message.Direction.OUTBOUND).channel_number == SMS_SECOND


@pytest.mark.parametrize("message_type", ["followup", "manual_reply", "sequence_step"])
def test_every_later_send_of_the_conversation_goes_from_that_number(client, company, sms_numbers, fake_twilio,
                                                                     message_type):
    sms_write(client, sms_numbers, to=SMS_SECOND, sid="SM" + "b" * 32)
    Job.objects.filter(task_name="ai_engage").update(status=Job.Status.CANCELLED)
    lead = Lead.objects.get(company=company)

    message_send(
        job=None, company=company, contact=lead.contact, lead=lead, channel=Channel.SMS, body="আমরা অপেক্ষায় আছি।",
        agent_type=Message.AgentType.SALES, message_type=message_type,
    )

    assert [request["From"] for request in fake_twilio.requests] == [SMS_SECOND]


def test_a_contact_who_never_wrote_gets_the_default_numbers(company, whatsapp_numbers, sms_numbers, fake_graph_api,
                                                            fake_twilio):
    contact = ContactFactory(company=company, phone="+8801711000077")

    for channel in (Channel.WHATSAPP_CLOUD, Channel.SMS):
        message_send(
            job=None, company=company, contact=contact, lead=None, channel=channel, body="স্বাগতম!",
            agent_type=Message.AgentType.SALES, message_type="sequence_step",
        )

    assert fake_graph_api.requests[0]["path"].endswith(f"/{WA_DEFAULT}/messages")
    assert fake_twilio.requests[0]["From"] == SMS_DEFAULT


def test_a_number_the_account_no_longer_owns_is_not_sent_from(client, company, sms_numbers, fake_twilio):
    sms_write(client, sms_numbers, to=SMS_SECOND, sid="SM" + "c" * 32)
    contact = Lead.objects.get(company=company).contact
    ChannelNumber.objects.filter(number=SMS_SECOND).delete()  # clears this process's settings cache too

    message_send(
        job=None, company=company, contact=contact, lead=None, channel=Channel.SMS, body="আমরা অপেক্ষায় আছি।",
        agent_type=Message.AgentType.MANUAL, message_type="manual_reply",
    )

    assert fake_twilio.requests[0]["From"] == SMS_DEFAULT


def test_the_reply_number_is_per_channel_and_latest_first(company):
    contact = ContactFactory(company=company, phone="+8801711000078")
    now = timezone.now()
    for minutes, channel, number in ((3, Channel.SMS, SMS_SECOND), (2, Channel.SMS, SMS_DEFAULT),
                                     (1, Channel.WHATSAPP_CLOUD, WA_SECOND)):
        Message.objects.create(
            company=company, contact=contact, direction=Message.Direction.INBOUND, channel=channel, body="x",
            status=Message.Status.RECEIVED, channel_number=number, created_at=now - timezone.timedelta(minutes=minutes),
        )
    Message.objects.create(  # ours, from another number: not what the customer wrote to
        company=company, contact=contact, direction=Message.Direction.OUTBOUND, channel=Channel.SMS, body="y",
        channel_number=SMS_SECOND, created_at=now,
    )

    assert contact_reply_number(contact=contact, channel=Channel.SMS) == SMS_DEFAULT
    assert contact_reply_number(contact=contact.pk, channel=Channel.WHATSAPP_CLOUD) == WA_SECOND
    assert contact_reply_number(contact=contact, channel=Channel.EMAIL) == ""
    options = channel_options(company=company, channel=Channel.SMS, agent_type="sales", message_type="reply",
                              contact=contact)
    assert options["reply_from"] == SMS_DEFAULT


@pytest.mark.parametrize("portable", [False, True])
def test_a_campaign_send_goes_from_the_number_the_customer_wrote_to(company, sms_numbers, fake_twilio, monkeypatch,
                                                                     portable):
    from engage.campaigns.smartengage import sending
    from engage.campaigns.smartengage.sending import message_queued_for_job, message_send_queued
    from engage.tests.test_messages import queued_reminder

    if portable:  # the SQLite path, on PostgreSQL too
        monkeypatch.setattr(sending, "_sent_record_cte", sending._sent_record_portable)
    job, message, recipient = queued_reminder(company, f"reply-number-{portable}")
    Message.objects.filter(pk=message.pk).update(channel=Channel.SMS)
    Message.objects.create(
        company=company, contact=message.contact, direction=Message.Direction.INBOUND, channel=Channel.SMS,
        body="হ্যাঁ", status=Message.Status.RECEIVED, channel_number=SMS_SECOND,
    )

    message_send_queued(job=job, queued=message_queued_for_job(job=job), agent_type="smartengage",
                        message_type="reminder", recipient_run_id=recipient.run_id)

    assert [request["From"] for request in fake_twilio.requests] == [SMS_SECOND]
    message.refresh_from_db()
    assert (message.status, message.channel_number) == (Message.Status.SENT, SMS_SECOND)
