"""The same provider delivery twice, in turn and at once, is written once and never answered 500:
on PostgreSQL and on the embedded default (SQLite), with engage's real receivers connected.

A WhatsApp message id, a Twilio MessageSid and a status callback each leave one callback row, one
message (or one status move) and one `ai_engage` job, however many times and however concurrently
the provider delivers them.
"""

import threading
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.http import QueryDict
from django.test import Client
from django.urls import reverse
from twilio.request_validator import RequestValidator

from channels_app.models import ProviderCallback
from channels_app.tests.conftest import TWILIO_AUTH_TOKEN, meta_post
from channels_app.tests.test_whatsapp_cloud import a_status, inbound_payload, status_payload
from crm.models import Channel, Event, Lead
from crm.tests.factories import ContactFactory
from engage.models import Job, Message

pytestmark = pytest.mark.embedded

SMS_PARAMS = [
    ("MessageSid", "SM" + "d" * 32), ("AccountSid", "AC" + "1" * 32), ("From", "+8801711000009"),
    ("To", "+15005550006"), ("Body", "কাল সকালে আসবেন?"), ("NumMedia", "0"),
]


def whatsapp_url(account) -> str:
    return reverse("channels:whatsapp-cloud-webhook", kwargs={"token": account.webhook_token})


def twilio_post(client, url: str, params) -> object:
    body = urlencode(params)
    signature = RequestValidator(TWILIO_AUTH_TOKEN).compute_signature(f"http://testserver{url}", QueryDict(body))
    return client.post(
        url, body, content_type="application/x-www-form-urlencoded; charset=utf-8", HTTP_X_TWILIO_SIGNATURE=signature
    )


def at_once(post, times: int = 4) -> list[int]:
    """`times` threads, each with its own client and database connection, deliver at the same moment."""
    barrier = threading.Barrier(times)
    codes: list[int] = []
    errors: list[BaseException] = []

    def deliver():
        try:
            client = Client()
            barrier.wait(timeout=10)
            codes.append(post(client).status_code)
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    return codes


def assert_one_inbound(company, provider_message_id: str, channel: str) -> None:
    assert ProviderCallback.objects.filter(
        company=company, provider_message_id=provider_message_id, status=ProviderCallback.INBOUND
    ).count() == 1
    [message] = Message.objects.filter(company=company, direction=Message.Direction.INBOUND)
    assert message.external_id == f"ext:{channel}:{provider_message_id}"
    assert Lead.objects.filter(company=company).count() == 1
    assert Job.objects.filter(company=company, task_name="ai_engage").count() == 1
    assert Event.objects.filter(company=company, type="message.received").count() == 1
    assert Event.objects.filter(company=company, type="lead.created").count() == 1


@pytest.mark.django_db
def test_a_whatsapp_message_delivered_twice_is_written_once(client, whatsapp_account, company):
    codes = [meta_post(client, whatsapp_url(whatsapp_account), inbound_payload(wamid="wamid.TWICE")).status_code
             for _ in range(2)]

    assert codes == [200, 200]
    assert_one_inbound(company, "wamid.TWICE", Channel.WHATSAPP_CLOUD)


@pytest.mark.django_db
def test_a_twilio_message_delivered_twice_is_written_once(client, sms_account, company):
    url = reverse("channels:sms-inbound", kwargs={"token": sms_account.webhook_token})

    codes = [twilio_post(client, url, SMS_PARAMS).status_code for _ in range(2)]

    assert codes == [200, 200]
    assert_one_inbound(company, SMS_PARAMS[0][1], Channel.SMS)


@pytest.mark.django_db(transaction=True)
def test_a_whatsapp_message_delivered_concurrently_is_written_once(whatsapp_account, company):
    codes = at_once(lambda client: meta_post(client, whatsapp_url(whatsapp_account), inbound_payload(wamid="wamid.RACE")))

    assert codes == [200] * 4
    assert_one_inbound(company, "wamid.RACE", Channel.WHATSAPP_CLOUD)


@pytest.mark.django_db(transaction=True)
def test_a_twilio_message_delivered_concurrently_is_written_once(sms_account, company):
    url = reverse("channels:sms-inbound", kwargs={"token": sms_account.webhook_token})

    codes = at_once(lambda client: twilio_post(client, url, SMS_PARAMS))

    assert codes == [200] * 4
    assert_one_inbound(company, SMS_PARAMS[0][1], Channel.SMS)


def sent_message(company, channel: str, provider_message_id: str) -> Message:
    contact = ContactFactory(company=company, phone="+8801711000001")
    return Message.objects.create(
        company=company, contact=contact, direction=Message.Direction.OUTBOUND, channel=channel,
        agent_type=Message.AgentType.SALES, body="Kal ashben?", status=Message.Status.SENT,
        provider_message_id=provider_message_id,
    )


def assert_one_status(message: Message, status: str) -> None:
    message.refresh_from_db()
    assert message.status == status
    assert ProviderCallback.objects.filter(provider_message_id=message.provider_message_id, status=status).count() == 1
    assert Event.objects.filter(company_id=message.company_id, type=f"message.{status}").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_whatsapp_status_delivered_concurrently_is_recorded_once(whatsapp_account, company):
    message = sent_message(company, Channel.WHATSAPP_CLOUD, "wamid.OUT-RACE")
    payload = status_payload(a_status("wamid.OUT-RACE", "delivered"))

    codes = at_once(lambda client: meta_post(client, whatsapp_url(whatsapp_account), payload))

    assert codes == [200] * 4
    assert_one_status(message, Message.Status.DELIVERED)


@pytest.mark.django_db(transaction=True)
def test_a_twilio_status_callback_delivered_concurrently_is_recorded_once(sms_account, company):
    message = sent_message(company, Channel.SMS, "SM" + "e" * 32)
    url = reverse("channels:sms-status", kwargs={"token": sms_account.webhook_token})
    params = [("MessageSid", "SM" + "e" * 32), ("MessageStatus", "delivered"), ("AccountSid", "AC" + "1" * 32)]

    codes = at_once(lambda client: twilio_post(client, url, params))

    assert codes == [204] * 4
    assert_one_status(message, Message.Status.DELIVERED)
