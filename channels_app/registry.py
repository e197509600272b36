"""Adapters keyed by channel name."""

from __future__ import annotations

from typing import Any

from channels_app.base import ChannelAdapter, ChannelError, OutboundMessage, SendResult

_ADAPTERS: dict[str, type[ChannelAdapter]] = {}


def register(adapter_class: type[ChannelAdapter]) -> type[ChannelAdapter]:
    _ADAPTERS[adapter_class.name] = adapter_class
    return adapter_class


def adapter_for(channel: str, settings: dict[str, Any] | None = None) -> ChannelAdapter:
    try:
        adapter_class = _ADAPTERS[channel]
    except KeyError:
        raise ChannelError(f"No adapter for channel {channel!r}.", permanent=True) from None
    return adapter_class(settings)


def channel_names() -> list[str]:
    return sorted(_ADAPTERS)


def send(message: OutboundMessage, *, settings: dict[str, Any] | None = None) -> SendResult:
    """Deliver `message` through its channel's adapter."""
    return adapter_for(message.channel, settings).send(message)
