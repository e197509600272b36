"""Provider webhooks and email tracking links. Each verifies before it parses, and parses before it writes.

Per-account URLs carry the account's webhook token (it names the account; the signature proves
the sender). Unknown token: 404. Missing or wrong signature: 403, nothing written. Malformed: 400.
A status for a message we never sent: 200, logged. A replay: 200, nothing changes twice.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
from typing import Any

from django.core import signing
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView
from twilio.request_validator import RequestValidator

from channels_app import services, tracking
from channels_app.models import ChannelAccount
from channels_app.selectors import channel_account_by_webhook_token
from crm.models import Channel, Company
from shokti.api.exceptions import ApplicationError

logger = logging.getLogger(__name__)

# A 1x1 transparent GIF.
PIXEL_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'

# Twilio's message states, mapped to ours; the rest (queued, sending, accepted ...) are only logged.
TWILIO_STATUSES = {"sent": "sent", "delivered": "delivered", "read": "read", "undelivered": "failed", "failed": "failed"}
WHATSAPP_STATUSES = {"sent": "sent", "delivered": "delivered", "read": "read", "failed": "failed"}


def forbidden(message: str) -> ApplicationError:
    return ApplicationError(message, code="permission_denied", status_code=status.HTTP_403_FORBIDDEN)


def malformed(message: str, fields: dict | None = None) -> ApplicationError:
    return ApplicationError(message, code="invalid", status_code=status.HTTP_400_BAD_REQUEST, fields=fields)


def account_or_404(token: str, channel: str) -> ChannelAccount:
    account = channel_account_by_webhook_token(token=token, channel=channel)
    if account is None:
        raise ApplicationError("Unknown webhook.", code="not_found", status_code=status.HTTP_404_NOT_FOUND)
    return account


def report(call, **kwargs) -> bool:
    """Run a report service; a failing receiver becomes a 503 so the provider retries (nothing was kept)."""
    try:
        return call(**kwargs)
    except Exception:
        logger.exception("channel callback could not be processed")
        raise ApplicationError(
            "Temporarily unable to process the callback.",
            code="unavailable",
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        ) from None


class WebhookApi(APIView):
    """Providers authenticate by signature, not by our API keys; never throttled like anonymous users."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []


# --- Twilio SMS --------------------------------------------------------------------


def twilio_verify(request, account: ChannelAccount) -> dict[str, str]:
    auth_token = account.secrets.get("auth_token", "")
    signature = request.headers.get("X-Twilio-Signature", "")
    if not auth_token or not signature:
        raise forbidden("Missing Twilio signature.")
    if request.content_type != "application/x-www-form-urlencoded":
        # Twilio signs form posts; anything else cannot be verified the same way.
        raise forbidden("Unsigned Twilio callback.")
    params = {key: request.POST.get(key) for key in request.POST}
    if not RequestValidator(auth_token).validate(request.build_absolute_uri(), params, signature):
        raise forbidden("Wrong Twilio signature.")
    return params


class SmsStatusCallbackApi(WebhookApi):
    def post(self, request, token: str):
        account = account_or_404(token, Channel.SMS)
        params = twilio_verify(request, account)
        sid, provider_status = params.get("MessageSid", ""), params.get("MessageStatus", "")
        if not sid or not provider_status:
            raise malformed("MessageSid and MessageStatus are required.")
        error_code = params.get("ErrorCode") or ""
        report(
            services.delivery_status_report,
            account=account,
            provider_message_id=sid,
            status=TWILIO_STATUSES.get(provider_status, provider_status),
            error=f"Twilio error {error_code}" if error_code else "",
            raw=params,
        )
        return HttpResponse(status=204)


class SmsInboundApi(WebhookApi):
    def post(self, request, token: str):
        account = account_or_404(token, Channel.SMS)
        params = twilio_verify(request, account)
        sid, from_phone = params.get("MessageSid", ""), params.get("From", "")
        if not sid or not from_phone or "Body" not in params:
            raise malformed("MessageSid, From and Body are required.")
        report(
            services.inbound_message_report,
            account=account,
            provider_message_id=sid,
            from_phone=from_phone,
            text=params["Body"],
            raw=params,
        )
        return HttpResponse(EMPTY_TWIML, content_type="text/xml")


# --- WhatsApp Cloud API -------------------------------------------------------------


def _timestamp(value: Any) -> dt.datetime | None:
    try:
        return dt.datetime.fromtimestamp(int(value), tz=dt.UTC)
    except (TypeError, ValueError, OverflowError):
        return None


class WhatsAppCloudWebhookApi(WebhookApi):
    def get(self, request, token: str):
        """Meta's subscription handshake: echo hub.challenge when the verify token matches."""
        account = account_or_404(token, Channel.WHATSAPP_CLOUD)
        verify_token = account.secrets.get("verify_token", "")
        given = request.GET.get("hub.verify_token", "")
        if (
            request.GET.get("hub.mode") != "subscribe"
            or not verify_token
            or not hmac.compare_digest(given.encode(), verify_token.encode())
        ):
            raise forbidden("Verification failed.")
        return HttpResponse(request.GET.get("hub.challenge", ""), content_type="text/plain")

    def post(self, request, token: str):
        account = account_or_404(token, Channel.WHATSAPP_CLOUD)
        raw_body = request.body
        app_secret = account.secrets.get("app_secret", "")
        signature = request.headers.get("X-Hub-Signature-256", "")
        if not app_secret or not signature.startswith("sha256="):
            raise forbidden("Missing X-Hub-Signature-256.")
        expected = "sha256=" + hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise forbidden("Wrong X-Hub-Signature-256.")
        try:
            payload = json.loads(raw_body)
            changes = [change["value"] for entry in payload["entry"] for change in entry["changes"]]
            if not all(isinstance(value, dict) for value in changes):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise malformed("Not a WhatsApp Business webhook payload.") from None

        statuses, inbound = self._parse(changes)
        for item in statuses:
            report(services.delivery_status_report, account=account, **item)
        for item in inbound:
            report(services.inbound_message_report, account=account, **item)
        return Response({"status": "ok"})

    @staticmethod
    def _parse(changes: list[dict]) -> tuple[list[dict], list[dict]]:
        """Statuses and inbound messages of a webhook; everything is validated before anything is written."""
        statuses, inbound = [], []
        try:
            for value in changes:
                for item in value.get("statuses", []):
                    provider_status = str(item["status"])
                    errors = item.get("errors") or []
                    statuses.append(
                        {
                            "provider_message_id": str(item["id"]),
                            "status": WHATSAPP_STATUSES.get(provider_status, provider_status),
                            "error": "; ".join(
                                f"{error.get('code')}: {error.get('title', '')}" for error in errors
                            ),
                            "raw": item,
                            "occurred_at": _timestamp(item.get("timestamp")),
                        }
                    )
                names = {
                    contact.get("wa_id"): contact.get("profile", {}).get("name", "")
                    for contact in value.get("contacts", [])
                }
                for item in value.get("messages", []):
                    sender = str(item["from"])
                    text = item["text"]["body"] if item.get("type") == "text" else ""
                    if item.get("type") == "button":
                        text = item["button"].get("text", "")
                    elif item.get("type") == "interactive":
                        reply = item["interactive"].get("button_reply") or item["interactive"].get("list_reply") or {}
                        text = reply.get("title", "")
                    inbound.append(
                        {
                            "provider_message_id": str(item["id"]),
                            "from_phone": sender if sender.startswith("+") else f"+{sender}",
                            "from_name": names.get(sender, ""),
                            "text": str(text),
                            "raw": item,
                            "occurred_at": _timestamp(item.get("timestamp")),
                        }
                    )
        except (KeyError, TypeError, AttributeError):
            raise malformed("Not a WhatsApp Business webhook payload.") from None
        return statuses, inbound


# --- Email tracking -------------------------------------------------------------------


def _claims_or_404(token: str, salt: str) -> dict[str, Any]:
    try:
        return tracking.token_read(token, salt=salt)
    except signing.BadSignature:
        raise ApplicationError("Unknown link.", code="not_found", status_code=status.HTTP_404_NOT_FOUND) from None


class EmailOpenApi(WebhookApi):
    def get(self, request, token: str):
        claims = _claims_or_404(token, tracking.OPEN_SALT)
        services.email_engagement_record(
            company_id=claims["c"],
            type="notification_opened",
            message_id=claims.get("m"),
            correlation_id=claims.get("r"),
            contact_id=claims.get("k"),
            email=claims.get("e") or "",
            agent_type=claims.get("a") or "",
        )
        response = HttpResponse(PIXEL_GIF, content_type="image/gif")
        response["Cache-Control"] = "no-store, private"
        return response


class EmailClickApi(WebhookApi):
    def get(self, request, token: str):
        claims = _claims_or_404(token, tracking.CLICK_SALT)
        url = claims.get("u") or ""
        if not tracking.is_trackable_url(url):
            raise ApplicationError("Unknown link.", code="not_found", status_code=status.HTTP_404_NOT_FOUND)
        services.email_engagement_record(
            company_id=claims["c"],
            type="message_clicked",
            message_id=claims.get("m"),
            correlation_id=claims.get("r"),
            contact_id=claims.get("k"),
            email=claims.get("e") or "",
            url=url,
            agent_type=claims.get("a") or "",
        )
        return HttpResponseRedirect(url)


class EmailUnsubscribeApi(WebhookApi):
    """GET shows a confirmation (link scanners must not unsubscribe anyone); POST is RFC 8058 one-click."""

    def get(self, request, token: str):
        claims = _claims_or_404(token, tracking.UNSUBSCRIBE_SALT)
        return self._page(request, claims, is_done=False)

    def post(self, request, token: str):
        claims = _claims_or_404(token, tracking.UNSUBSCRIBE_SALT)
        services.email_unsubscribe(company_id=claims["c"], contact_id=claims.get("k"), email=claims.get("e") or "")
        return self._page(request, claims, is_done=True)

    @staticmethod
    def _page(request, claims: dict[str, Any], *, is_done: bool) -> HttpResponse:
        company = Company.objects.filter(pk=claims["c"]).only("name").first()
        context = {"done": is_done, "email": claims.get("e") or "", "company_name": company.name if company else ""}
        return render(request, "channels_app/email/unsubscribe.html", context)
