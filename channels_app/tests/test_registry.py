import pytest

from channels_app import registry
from channels_app.adapters import console
from channels_app.base import ChannelError, OutboundMessage


def test_console_adapter_is_registered_and_sends():
    message = OutboundMessage(company_id=1, channel="console", body="হ্যালো", to_phone="+8801712345678")

    result = registry.send(message)

    assert result.status == "sent"
    assert result.provider_message_id.startswith("console-")
    assert console.outbox[-1] == message


def test_unknown_channel_is_a_permanent_error():
    with pytest.raises(ChannelError) as error:
        registry.send(OutboundMessage(company_id=1, channel="pigeon", body="x"))
    assert error.value.permanent is True


def whatsapp_message() -> OutboundMessage:
    return OutboundMessage(company_id=1, channel="whatsapp_web", body="হ্যালো", to_phone="+8801712345678", message_id=7)


def test_a_channel_without_an_account_is_a_permanent_error_by_default(settings):
    settings.CHANNELS_CONSOLE_FALLBACK = False
    sent_before = len(console.outbox)

    with pytest.raises(ChannelError) as error:
        registry.send(whatsapp_message(), settings={})

    assert error.value.permanent is True
    assert len(console.outbox) == sent_before


def test_the_demo_fallback_delivers_to_the_console_when_no_account_exists(settings):
    settings.CHANNELS_CONSOLE_FALLBACK = True
    message = whatsapp_message()

    result = registry.send(message, settings={})

    assert result.provider_message_id.startswith("console-")
    assert console.outbox[-1] == message


def test_the_demo_fallback_never_replaces_a_configured_account(settings):
    settings.CHANNELS_CONSOLE_FALLBACK = True

    sent_before = len(console.outbox)

    # an account is configured (settings given): the WhatsApp Web adapter runs and refuses the
    # message without a phone; the console would have accepted it
    with pytest.raises(ChannelError) as error:
        registry.send(OutboundMessage(company_id=1, channel="whatsapp_web", body="x"), settings={"account_id": 1})

    assert "phone" in str(error.value)
    assert len(console.outbox) == sent_before
