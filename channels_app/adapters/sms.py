"""SMS through Twilio's official SDK, with a per-account status callback URL."""

from __future__ import annotations

import requests
from django.conf import settings
from django.urls import reverse
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from channels_app.base import ChannelAdapter, ChannelError, OutboundMessage, SendResult, sender_number
from channels_app.registry import register

TWILIO_API_HOST = "https://api.twilio.com"

# Twilio's message states right after create, mapped to ours.
STATUS_AFTER_CREATE = {"queued": "sent", "accepted": "sent", "sending": "sent", "sent": "sent", "scheduled": "sent"}


class BaseUrlTwilioHttpClient(TwilioHttpClient):
    """Twilio's own HTTP client, sending to `TWILIO_API_BASE_URL` (a regional proxy, or a local fake in tests)."""

    def __init__(self, *, base_url: str, timeout: float):
        super().__init__(timeout=timeout)
        self.base_url = base_url.rstrip("/")

    def request(self, method, url, *args, **kwargs):
        if url.startswith(TWILIO_API_HOST):
            url = self.base_url + url[len(TWILIO_API_HOST) :]
        return super().request(method, url, *args, **kwargs)


def twilio_client(channel_settings: dict) -> Client:
    base_url = getattr(settings, "TWILIO_API_BASE_URL", TWILIO_API_HOST)
    timeout = float(getattr(settings, "CHANNELS_HTTP_TIMEOUT_SECONDS", 10))
    http_client = (
        TwilioHttpClient(timeout=timeout)
        if base_url.rstrip("/") == TWILIO_API_HOST
        else BaseUrlTwilioHttpClient(base_url=base_url, timeout=timeout)
    )
    return Client(channel_settings["account_sid"], channel_settings["auth_token"], http_client=http_client)


def status_callback_url(webhook_token: str) -> str:
    from channels_app.selectors import public_base_url

    return public_base_url() + reverse("channels:sms-status", kwargs={"token": webhook_token})


@register
class SmsAdapter(ChannelAdapter):
    """Settings (ChannelAccount): account_sid, from_number or messaging_service_sid; secret: auth_token."""

    name = "sms"

    def send(self, message: OutboundMessage) -> SendResult:
        if not message.to_phone:
            raise ChannelError("The contact has no phone number.", permanent=True)
        if not self.settings.get("account_sid") or not self.settings.get("auth_token"):
            raise ChannelError("The SMS account has no Twilio credentials.", permanent=True)
        # From the number the customer wrote to when the account owns it; else the account's sender.
        reply_from = sender_number(self.settings, message.options, default="")
        sender = (
            {"from_": reply_from} if reply_from
            else {"messaging_service_sid": self.settings["messaging_service_sid"]}
            if self.settings.get("messaging_service_sid")
            else {"from_": self.settings.get("from_number", "")}
        )
        if self.settings.get("webhook_token"):
            sender["status_callback"] = status_callback_url(self.settings["webhook_token"])
        try:
            created = twilio_client(self.settings).messages.create(to=message.to_phone, body=message.body, **sender)
        except TwilioRestException as error:
            # 429 and 5xx pass; other 4xx (bad number, unverified sender) will fail again.
            transient = error.status == 429 or error.status >= 500
            raise ChannelError(f"Twilio {error.status} ({error.code}): {error.msg}", permanent=not transient) from None
        except (requests.RequestException, TwilioException, OSError) as error:
            raise ChannelError(f"Twilio unavailable: {error.__class__.__name__}", permanent=False) from None
        if created.status in ("failed", "undelivered"):
            raise ChannelError(f"Twilio refused the message: {created.error_message}", permanent=True)
        return SendResult(
            provider_message_id=created.sid,
            status=STATUS_AFTER_CREATE.get(created.status or "", "sent"),
            raw={"sid": created.sid, "status": created.status},
            from_address=sender.get("from_", "") or str(getattr(created, "from_", "") or ""),
        )
