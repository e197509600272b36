"""The channel interface: what `engage` and `coaching` hand over, and what comes back.

An adapter sends one `OutboundMessage` and returns a `SendResult`, or raises
`ChannelError(message, permanent=...)`: a permanent error is not retried (bad
address, rejected content), a transient one is (provider outage, timeout).
Adapters never import `engage` or `coaching`; what the world answers later
(delivery statuses, inbound messages) is reported through `channels_app.signals`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, ClassVar


class ChannelError(Exception):
    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class OutboundMedia:
    """One file sent with a message, by link: the provider fetches `url` (public, https in production).
    `media_type` is Message.MediaType's ("audio", "image", "video", "document")."""

    url: str
    content_type: str
    media_type: str


def media_type_for(content_type: str) -> str:
    """The media type a provider knows a file by, from its MIME type."""
    family = content_type.split(";", 1)[0].strip().lower().split("/", 1)[0]
    return family if family in ("audio", "image", "video") else "document"


@dataclass(frozen=True)
class OutboundMessage:
    """One message to deliver. `message_id` is the sender's own id, for idempotency and tracking."""

    company_id: int
    channel: str
    body: str
    message_id: int | None = None
    correlation_id: uuid.UUID | None = None
    # The crm Contact, so tracking (email opens/clicks/unsubscribe) can name who it was.
    contact_id: int | None = None
    to_phone: str = ""
    to_email: str = ""
    to_name: str = ""
    subject: str = ""
    html_body: str = ""
    # Provider-specific extras, e.g. {"template_name": ..., "template_language": ...},
    # {"last_inbound_at": <aware datetime or ISO string>} for WhatsApp Cloud's 24-hour window, or
    # {"reply_from": <number>}: the account's number to send from (the one the customer wrote to).
    options: dict[str, Any] = field(default_factory=dict)
    # One attachment, sent natively by a channel whose adapter lists its type in `media_types`; other
    # channels send the text alone and say so in `SendResult.media_error`.
    media: OutboundMedia | None = None


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str
    # The delivery status right after the provider accepted it. "queued" when delivery goes on in
    # the background (WhatsApp Web): "sent" or "failed" then comes through delivery_status_changed.
    status: str = "sent"
    raw: dict[str, Any] = field(default_factory=dict)
    # The number it went from (WhatsApp phone_number_id, SMS From), where the channel has numbers.
    from_address: str = ""
    # The message carried media: the provider's id of the media message (WhatsApp sends it apart from the
    # text), or why it was not sent (the text went alone).
    media_provider_message_id: str = ""
    media_error: str = ""


def sender_number(settings: dict[str, Any], options: dict[str, Any], *, default: str) -> str:
    """The number to send from: the caller's `reply_from` (the number the customer wrote to) when the
    account owns it (`settings["numbers"]`, channels_app.selectors.channel_settings_for), else `default`."""
    reply_from = str(options.get("reply_from") or "")
    return reply_from if reply_from and reply_from in settings.get("numbers", ()) else default


class ChannelAdapter:
    """Base of every adapter. `settings` are the company's ChannelAccount settings (secrets included)."""

    name: ClassVar[str]
    # The media types this channel sends as native attachments (OutboundMessage.media).
    media_types: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, settings: dict[str, Any] | None = None):
        self.settings = settings or {}

    def send(self, message: OutboundMessage) -> SendResult:  # pragma: no cover - interface
        raise NotImplementedError
