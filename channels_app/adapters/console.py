"""Development channel: writes the message to the log and keeps the last ones in memory."""

from __future__ import annotations

import logging
import uuid
from collections import deque

from channels_app.base import ChannelAdapter, OutboundMessage, SendResult
from channels_app.registry import register

logger = logging.getLogger("shokti.console_channel")

# The most recent console messages of this process, for the shell and tests.
outbox: deque[OutboundMessage] = deque(maxlen=1000)


@register
class ConsoleAdapter(ChannelAdapter):
    name = "console"

    def send(self, message: OutboundMessage) -> SendResult:
        provider_message_id = f"console-{uuid.uuid4().hex}"
        outbox.append(message)
        logger.info(
            "console message %s to %s: %s", provider_message_id, message.to_phone or message.to_email, message.body
        )
        return SendResult(provider_message_id=provider_message_id, status="sent")
