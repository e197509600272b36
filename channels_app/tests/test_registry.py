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
