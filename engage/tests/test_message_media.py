"""An outbound message with one file by link (engage.api.message_queue's media_url): WhatsApp Cloud sends it as a
media message after the text; a channel without media (SMS) sends the text alone and the message says why."""

import pytest
from django.core.exceptions import ValidationError

from channels_app.tests.conftest import TWILIO_AUTH_TOKEN, account_create
from crm.tests.factories import ContactFactory
from engage import api as engage
from engage.messaging.services import channel_settings_cache_clear
from engage.tests.helpers import run_job

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

LINK = "https://files.example/voice/abc.mp3"


@pytest.fixture(autouse=True)
def _fresh_settings_cache():
    channel_settings_cache_clear()
    yield
    channel_settings_cache_clear()


def _queue(company, contact, channel, **media):
    queued = engage.message_queue(
        company=company, contact=contact, channel=channel, body="আপনার জন্য একটি বার্তা",
        agent_type=engage.AgentType.COACHNOVA, message_type="coaching", idempotency_key=f"test:{channel}", **media)
    assert queued.decision.allowed
    assert run_job(queued.job) == "completed"
    queued.message.refresh_from_db()
    return queued.message


def test_whatsapp_cloud_sends_the_file_as_its_own_media_message(company, fake_graph_api):
    account_create(company=company, channel="whatsapp_cloud", settings={"phone_number_id": "1098765"},
                   secrets={"access_token": "EAAG-token"})
    contact = ContactFactory(company=company, phone="+8801711000001", is_whatsapp_consented=True)

    message = _queue(company, contact, "whatsapp_cloud", media_url=LINK, media_content_type="audio/mpeg")

    assert engage.channel_sends_media("whatsapp_cloud", "audio") and not engage.channel_sends_media("sms", "audio")
    assert [request["json"] for request in fake_graph_api.requests] == [
        {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "8801711000001", "type": "text",
         "text": {"preview_url": False, "body": "আপনার জন্য একটি বার্তা"}},
        {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "8801711000001", "type": "audio",
         "audio": {"link": LINK}},
    ]
    assert message.status == "sent" and message.media_type == "audio"
    assert message.metadata["media_provider_message_id"].startswith("wamid.")
    assert message.provider_message_id != message.metadata["media_provider_message_id"]


def test_sms_sends_the_text_alone_and_records_why(company, fake_twilio):
    account_create(company=company, channel="sms", settings={"account_sid": "AC" + "1" * 32, "from_number": "+15005550006"},
                   secrets={"auth_token": TWILIO_AUTH_TOKEN})
    contact = ContactFactory(company=company, phone="+8801711000002", is_sms_consented=True)

    message = _queue(company, contact, "sms", media_url=LINK, media_content_type="audio/mpeg")

    [sent] = [request for request in fake_twilio.requests if request.get("method") == "POST"]
    assert sent["Body"] == "আপনার জন্য একটি বার্তা" and "MediaUrl" not in sent
    assert message.status == "sent" and message.media_url == LINK
    assert message.metadata == {"media_error": "sms does not send audio attachments: text sent alone"}


def test_a_file_without_its_type_is_refused_and_nothing_is_queued(company):
    contact = ContactFactory(company=company, phone="+8801711000003", is_sms_consented=True)
    with pytest.raises(ValidationError):
        engage.message_queue(company=company, contact=contact, channel="sms", body="x", agent_type="coachnova",
                             message_type="coaching", idempotency_key="test:no-type", media_url=LINK)
    assert not engage.Message.objects.filter(contact=contact).exists()

