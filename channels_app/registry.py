"""Adapters keyed by channel name."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from django.conf import settings as django_settings

from channels_app.base import ChannelAdapter, ChannelError, OutboundMessage, SendResult

logger = logging.getLogger(__name__)

_ADAPTERS: dict[str, type[ChannelAdapter]] = {}

# Channels that cannot deliver at all without a ChannelAccount (email falls back to Django's mail settings).
ACCOUNT_CHANNELS = frozenset({"sms", "whatsapp_cloud", "whatsapp_web"})


def register(adapter_class: type[ChannelAdapter]) -> type[ChannelAdapter]:
    _ADAPTERS[adapter_class.name] = adapter_class
    return adapter_class


def adapter_for(channel: str, settings: dict[str, Any] | None = None) -> ChannelAdapter:
    try:
        adapter_class = _ADAPTERS[channel]
    except KeyError:
        raise ChannelError(f"No adapter for channel {channel!r}.", permanent=True) from None
    return adapter_class(settings)


def channel_sends_media(channel: str, media_type: str) -> bool:
    """True when the channel's adapter sends this media type as a native attachment (WhatsApp Cloud: audio ...)."""
    adapter_class = _ADAPTERS.get(channel)
    return adapter_class is not None and media_type in adapter_class.media_types


def channel_names() -> list[str]:
    return sorted(_ADAPTERS)


def send(message: OutboundMessage, *, settings: dict[str, Any] | None = None) -> SendResult:
    """Deliver `message` through its channel's adapter.

    With `CHANNELS_CONSOLE_FALLBACK` on (the demo, `make run`), a channel whose company has no account
    delivers to the console log instead of failing. Off by default: in production a missing account
    is a permanent error the operator must see.
    """
    if not settings and message.channel in ACCOUNT_CHANNELS and django_settings.CHANNELS_CONSOLE_FALLBACK:
        logger.warning(
            "company %s has no %s account: message %s delivered to the console (CHANNELS_CONSOLE_FALLBACK)",
            message.company_id, message.channel, message.message_id,
        )
        return _send(adapter_for("console"), message)
    return _send(adapter_for(message.channel, settings), message)


def _send(adapter: ChannelAdapter, message: OutboundMessage) -> SendResult:
    """A medium the adapter cannot send natively is left out: the text goes alone, and the result says why."""
    media = message.media
    if media is None or media.media_type in adapter.media_types:
        return adapter.send(message)
    result = adapter.send(replace(message, media=None))
    return replace(result, media_error=f"{adapter.name} does not send {media.media_type} attachments: text sent alone")
