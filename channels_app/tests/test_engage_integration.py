"""From a provider's webhook to engage's records, with engage's real receivers connected.

The one place channels_app's tests look into engage: channels_app's code never imports it.
"""

import pytest
from django.urls import reverse

from channels_app.models import ProviderCallback
from channels_app.tests.conftest import meta_post
from channels_app.tests.test_whatsapp_cloud import (
    a_status,
    inbound_payload,
    status_payload,
)
from crm.models import Channel, Lead
from crm.tests.factories import ContactFactory
from engage.models import Job, Message

pytestmark = pytest.mark.django_db


def webhook_url(account):
    return reverse("channels:whatsapp-cloud-webhook", kwargs={"token": account.webhook_token})


@pytest.fixture
def sent_message(company):
    contact = ContactFactory(company=company, phone="+8801711000001")
    return Message.objects.create(
        company=company,
        contact=contact,
        direction=Message.Direction.OUTBOUND,
        channel=Channel.WHATSAPP_CLOUD,
        agent_type=Message.AgentType.SALES,
        body="Salam! Kal ashben?",
        status=Message.Status.SENT,
        provider_message_id="wamid.OUT1",
    )


def test_status_posts_move_the_message_forward_only(client, whatsapp_account, sent_message):
    # given: delivered, then read, then a late "sent" and a replayed "delivered"
    for status in ("delivered", "read", "sent", "delivered"):
        response = meta_post(client, webhook_url(whatsapp_account), status_payload(a_status("wamid.OUT1", status)))
        assert response.status_code == 200

    # then
    sent_message.refresh_from_db()
    assert sent_message.status == Message.Status.READ
    assert sent_message.delivered_at is not None and sent_message.read_at is not None
    assert ProviderCallback.objects.filter(provider_message_id="wamid.OUT1").count() == 3


def test_failed_after_delivered_changes_nothing(client, whatsapp_account, sent_message):
    meta_post(client, webhook_url(whatsapp_account), status_payload(a_status("wamid.OUT1", "delivered")))
    meta_post(client, webhook_url(whatsapp_account), status_payload(a_status("wamid.OUT1", "failed")))

    sent_message.refresh_from_db()
    assert sent_message.status == Message.Status.DELIVERED


def test_inbound_whatsapp_text_enters_a_lead_conversation_once(client, whatsapp_account, company):
    meta_post(client, webhook_url(whatsapp_account), inbound_payload(text="Price koto?"))
    meta_post(client, webhook_url(whatsapp_account), inbound_payload(text="Price koto?"))

    [message] = Message.objects.filter(direction=Message.Direction.INBOUND)
    assert (message.company, message.channel, message.body) == (company, "whatsapp_cloud", "Price koto?")
    assert message.contact.phone == "+8801711000002"
    assert Lead.objects.filter(company=company, contact=message.contact).count() == 1


def test_inbound_image_without_caption_is_a_conversation_turn_with_its_media_queued(client, whatsapp_account):
    payload = inbound_payload()
    item = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    item.pop("text")
    item["type"] = "image"
    item["image"] = {"id": "media-1", "mime_type": "image/jpeg", "sha256": "abc"}

    response = meta_post(client, webhook_url(whatsapp_account), payload)

    assert response.status_code == 200
    message = Message.objects.get()
    assert (message.body, message.media_type, message.media_status) == ("[photo]", "image", "pending")
    assert message.metadata["media"]["id"] == "media-1"
    assert Job.objects.filter(task_name="media_download", payload__message_id=message.pk).count() == 1


