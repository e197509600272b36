"""WhatsApp Business Cloud API (Meta Graph API): text inside the 24-hour window, templates outside it.

A message with media (OutboundMessage.media) is two Graph API messages: the text, then the media by link
(`{"type": "audio", "audio": {"link": ...}}`, Meta's media message; an audio message has no caption). Once
the text is sent, a media message that fails does not fail the send (a retry would send the text twice):
the result says why in `media_error`. Outside the 24-hour window only a template may go, so the media is
left out and said so."""

from __future__ import annotations

import datetime as dt
from typing import Any

import requests
from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from channels_app.base import ChannelAdapter, ChannelError, OutboundMessage, SendResult, sender_number
from channels_app.registry import register

CUSTOMER_SERVICE_WINDOW = dt.timedelta(hours=24)
# Graph API error codes that pass with time: rate limits and temporary errors.
TRANSIENT_ERROR_CODES = {1, 2, 4, 17, 80007, 130429, 131000, 131016, 133004}


def graph_url(path: str, *, version: str | None = None) -> str:
    base = settings.WHATSAPP_GRAPH_API_BASE_URL.rstrip("/")
    return f"{base}/{version or settings.WHATSAPP_GRAPH_API_VERSION}/{path.lstrip('/')}"


def is_outside_window(options: dict[str, Any], *, now: dt.datetime | None = None) -> bool:
    """True when the caller says the contact's last inbound message is missing or older than 24 h."""
    if "last_inbound_at" not in options:
        return False
    last = options["last_inbound_at"]
    if isinstance(last, str):
        last = parse_datetime(last)
    if last is None:
        return True
    return (now or timezone.now()) - last >= CUSTOMER_SERVICE_WINDOW


@register
class WhatsAppCloudAdapter(ChannelAdapter):
    """Settings (ChannelAccount): phone_number_id, api_version (optional), default_template_name,
    default_template_language; secrets: access_token, app_secret, verify_token."""

    name = "whatsapp_cloud"
    media_types = frozenset({"audio", "image", "video", "document"})

    def payload_for(self, message: OutboundMessage) -> dict[str, Any]:
        options = message.options
        to = message.to_phone.lstrip("+")
        template_name = options.get("template_name")
        if not template_name and is_outside_window(options):
            template_name = self.settings.get("default_template_name")
            if not template_name:
                raise ChannelError(
                    "Outside the 24-hour window and no template to send.", permanent=True
                )
        if template_name:
            template: dict[str, Any] = {
                "name": template_name,
                "language": {
                    "code": options.get("template_language")
                    or self.settings.get("default_template_language")
                    or "en_US"
                },
            }
            if options.get("template_components"):
                template["components"] = options["template_components"]
            return {"messaging_product": "whatsapp", "to": to, "type": "template", "template": template}
        return {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": "text",
            "text": {"preview_url": False, "body": message.body},
        }

    def media_payload_for(self, message: OutboundMessage) -> dict[str, Any]:
        """Meta's media message by link: {"type": "audio", "audio": {"link": "https://..."}}."""
        media = message.media
        assert media is not None
        return {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": message.to_phone.lstrip("+"),
            "type": media.media_type,
            media.media_type: {"link": media.url},
        }

    def send(self, message: OutboundMessage) -> SendResult:
        if not message.to_phone:
            raise ChannelError("The contact has no phone number.", permanent=True)
        # From the number the customer wrote to when the account owns it; else the account's own.
        phone_number_id = sender_number(self.settings, message.options, default=self.settings.get("phone_number_id") or "")
        access_token = self.settings.get("access_token")
        if not phone_number_id or not access_token:
            raise ChannelError("The WhatsApp account has no phone number id or access token.", permanent=True)
        payload = self.payload_for(message)
        body = self._post(phone_number_id, access_token, payload)
        try:
            provider_message_id = body["messages"][0]["id"]
        except (KeyError, IndexError, TypeError):
            # It may have been sent: failing beats sending twice.
            raise ChannelError("Graph API answered without a message id.", permanent=True) from None
        media_id, media_error = "", ""
        if message.media is not None:
            if payload["type"] == "template":
                media_error = "outside the 24-hour window: only the template was sent"
            else:
                try:
                    media_id = self._post(phone_number_id, access_token, self.media_payload_for(message))[
                        "messages"][0]["id"]
                except ChannelError as error:
                    media_error = str(error)
                except (KeyError, IndexError, TypeError):
                    media_error = "Graph API answered the media message without a message id."
        return SendResult(
            provider_message_id=provider_message_id, status="sent", raw={"request_type": payload["type"], **body},
            from_address=phone_number_id, media_provider_message_id=media_id, media_error=media_error[:500],
        )

    def _post(self, phone_number_id: str, access_token: str, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            response = requests.post(
                graph_url(f"{phone_number_id}/messages", version=self.settings.get("api_version")),
                json=payload,
                headers={"Authorization": f"Bearer {access_token}"},
                timeout=float(getattr(settings, "CHANNELS_HTTP_TIMEOUT_SECONDS", 10)),
            )
        except requests.RequestException as error:
            raise ChannelError(f"Graph API unavailable: {error.__class__.__name__}", permanent=False) from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code >= 400 or not isinstance(body, dict):
            error = body.get("error", {}) if isinstance(body, dict) else {}
            code = error.get("code")
            transient = response.status_code >= 500 or response.status_code == 429 or code in TRANSIENT_ERROR_CODES
            raise ChannelError(
                f"Graph API {response.status_code} ({code}): {error.get('message', response.reason)}",
                permanent=not transient,
            )
        return body
