"""Provider webhooks and email tracking links. Each verifies before it parses, and parses before it writes.

Per-account URLs carry the account's webhook token (it names the account; the signature proves
the sender). Unknown token: 404. Missing or wrong signature: 403, nothing written. Malformed: 400.
A status for a message we never sent: 200, logged. A replay: 200, nothing changes twice.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time
from typing import Any

from django.conf import settings
from django.core import signing
from django.http import HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import render
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import ParseError
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView
from twilio.request_validator import RequestValidator

from channels_app import bounces, payloads, services, tracking
from channels_app.models import ChannelAccount
from channels_app.payloads import media_type_base
from channels_app.selectors import (
    AmbiguousNumber,
    channel_account_by_webhook_token,
    channel_account_for_number,
    public_base_url,
)
from crm.models import Channel, Company
from shokti.api.exceptions import ApplicationError
from shokti.api.parsers import form_storable, json_loads

logger = logging.getLogger(__name__)

# A 1x1 transparent GIF.
PIXEL_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'

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
    error_responses = {403: "Missing or wrong provider signature."}


class LinkApi(WebhookApi):
    """Email tracking links: a signed token in the URL, no signature header."""

    error_responses: dict = {}


TWILIO_FORM = inline_serializer(
    "TwilioCallback",
    {
        "MessageSid": serializers.CharField(),
        "MessageStatus": serializers.CharField(required=False),
        "ErrorCode": serializers.CharField(required=False),
        "From": serializers.CharField(required=False),
        "To": serializers.CharField(required=False),
        "Body": serializers.CharField(required=False),
        "NumMedia": serializers.CharField(required=False),
    },
)
WEBHOOK_ACCEPTED = inline_serializer("WebhookAccepted", {"status": serializers.CharField()})
WHATSAPP_VERIFY = {
    "parameters": [
        OpenApiParameter("hub.mode", str), OpenApiParameter("hub.verify_token", str),
        OpenApiParameter("hub.challenge", str),
    ],
    "responses": {(200, "text/plain"): OpenApiResponse(response=OpenApiTypes.STR, description="hub.challenge")},
}


# --- Twilio SMS --------------------------------------------------------------------


def twilio_urls(request) -> list[str]:
    """The URLs Twilio may have signed: the public one (CHANNELS_PUBLIC_BASE_URL, behind a proxy) and this request's."""
    path = request.get_full_path()
    urls = [public_base_url() + path]
    own = request.build_absolute_uri()
    if own not in urls:
        urls.append(own)
    return urls


def twilio_verify(request, account: ChannelAccount) -> QueryDict:
    """The signed form parameters (every value of a repeated key kept), or 403."""
    auth_token = account.secrets.get("auth_token", "")
    signature = request.headers.get("X-Twilio-Signature", "")
    if not auth_token or not signature:
        raise forbidden("Missing Twilio signature.")
    # Twilio sends `application/x-www-form-urlencoded; charset=utf-8`: compared without parameters.
    if media_type_base(request.META.get("CONTENT_TYPE", "")) != "application/x-www-form-urlencoded":
        # Twilio signs form posts; anything else cannot be verified the same way.
        raise forbidden("Unsigned Twilio callback.")
    params = form_storable(request._request.POST if hasattr(request, "_request") else request.POST)
    validator = RequestValidator(auth_token)
    if not any(validator.validate(url, params, signature) for url in twilio_urls(request)):
        raise forbidden("Wrong Twilio signature.")
    return params


def _same_twilio_account(account: ChannelAccount, other: ChannelAccount) -> bool:
    """Whether `other` is verified by the same Twilio credentials that verified this request."""
    if other.pk == account.pk:
        return True
    token, other_token = account.secrets.get("auth_token", ""), other.secrets.get("auth_token", "")
    return bool(other_token) and hmac.compare_digest(token.encode(), other_token.encode())


def twilio_route(account: ChannelAccount, params: QueryDict) -> ChannelAccount | None:
    """The account owning the number written to (`To`), under the `AccountSid` that signed; None if nobody's."""
    to, account_sid = params.get("To", ""), params.get("AccountSid", "")
    try:
        target = channel_account_for_number(channel=Channel.SMS, number=to)
    except AmbiguousNumber as error:
        logger.error("twilio inbound %s not filed: %s", params.get("MessageSid"), error)
        return None
    if target is None:
        logger.warning("twilio inbound %s to %s: no account owns this number; not filed", params.get("MessageSid"), to)
        return None
    expected_sid = target.settings.get("account_sid", "")
    if (expected_sid and account_sid != expected_sid) or not _same_twilio_account(account, target):
        logger.warning(
            "twilio inbound %s to %s: signed for another Twilio account than the number's; not filed",
            params.get("MessageSid"), to,
        )
        return None
    return target


class SmsStatusCallbackApi(WebhookApi):
    @extend_schema(
        operation_id="channels_sms_status", request={"application/x-www-form-urlencoded": TWILIO_FORM},
        responses={204: OpenApiResponse(description="Recorded (or a status for a message we never sent).")},
    )
    def post(self, request, token: str):
        account = account_or_404(token, Channel.SMS)
        params = twilio_verify(request, account)
        try:
            item = payloads.twilio_status(params.dict())
        except payloads.PayloadError as error:
            raise malformed(str(error)) from None
        report(services.delivery_status_report, account=account, **item)
        return HttpResponse(status=204)


class SmsInboundApi(WebhookApi):
    @extend_schema(
        operation_id="channels_sms_inbound", request={"application/x-www-form-urlencoded": TWILIO_FORM},
        responses={(200, "text/xml"): OpenApiResponse(response=OpenApiTypes.STR, description="Empty TwiML.")},
    )
    def post(self, request, token: str):
        account = account_or_404(token, Channel.SMS)
        params = twilio_verify(request, account)
        try:
            item = payloads.twilio_inbound(params.dict())
        except payloads.PayloadError as error:
            raise malformed(str(error)) from None
        target = twilio_route(account, params)
        if target is not None:
            report(services.inbound_message_report, account=target, **item)
        return HttpResponse(EMPTY_TWIML, content_type="text/xml")


# --- WhatsApp Cloud API -------------------------------------------------------------


def meta_signature_valid(app_secret: str, raw_body: bytes, signature: str) -> bool:
    if not app_secret or not signature.startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.encode())


def _whatsapp_payload(raw_body: bytes) -> list[dict[str, Any]]:
    try:
        # json_loads: depth, size and text limits, a 400 (or 413), never a 500.
        return payloads.whatsapp_changes(json_loads(raw_body))
    except (ParseError, ValueError, payloads.PayloadError):
        raise malformed("Not a WhatsApp Business webhook payload.") from None


def _whatsapp_owner(phone_number_id: str) -> ChannelAccount | None:
    try:
        account = channel_account_for_number(channel=Channel.WHATSAPP_CLOUD, number=phone_number_id)
    except AmbiguousNumber as error:
        logger.error("whatsapp webhook for %s not filed: %s", phone_number_id, error)
        return None
    if account is None:
        logger.warning("whatsapp webhook for phone_number_id %r: no account owns it; not filed", phone_number_id)
    return account


def whatsapp_file(routed: list[tuple[ChannelAccount, dict[str, Any]]]) -> None:
    """Validate every change, then report its statuses and messages under the account owning its number."""
    parsed = []
    for account, value in routed:
        try:
            parsed.append((account, *payloads.whatsapp_value_items(value)))
        except payloads.PayloadError as error:
            raise malformed(str(error)) from None
    for account, statuses, inbound in parsed:
        for item in statuses:
            report(services.delivery_status_report, account=account, **item)
        for item in inbound:
            report(services.inbound_message_report, account=account, **item)


class WhatsAppCloudWebhookApi(WebhookApi):
    """One account's URL. Its app secret verifies the body; each change is filed under the account owning
    its `metadata.phone_number_id` (this one, or another company's number on the same Meta app)."""

    @extend_schema(operation_id="channels_whatsapp_verify", **WHATSAPP_VERIFY)
    def get(self, request, token: str):
        """Meta's subscription handshake: echo hub.challenge when the verify token matches."""
        account = account_or_404(token, Channel.WHATSAPP_CLOUD)
        return whatsapp_handshake(request, account.secrets.get("verify_token", ""))

    @extend_schema(
        operation_id="channels_whatsapp_webhook", request={"application/json": OpenApiTypes.OBJECT},
        responses={200: WEBHOOK_ACCEPTED},
    )
    def post(self, request, token: str):
        account = account_or_404(token, Channel.WHATSAPP_CLOUD)
        raw_body = request.body
        app_secret = account.secrets.get("app_secret", "")
        signature = request.headers.get("X-Hub-Signature-256", "")
        if not app_secret or not signature.startswith("sha256="):
            raise forbidden("Missing X-Hub-Signature-256.")
        if not meta_signature_valid(app_secret, raw_body, signature):
            raise forbidden("Wrong X-Hub-Signature-256.")
        routed = []
        for value in _whatsapp_payload(raw_body):
            owner = _whatsapp_owner(payloads.whatsapp_phone_number_id(value))
            if owner is None:
                continue
            if owner.pk != account.pk and not meta_signature_valid(owner.secrets.get("app_secret", ""), raw_body, signature):
                # Signed by this account's app, for a number of an account on another app: not ours to file.
                logger.warning("whatsapp webhook: number of account %s signed by another app; not filed", owner.pk)
                continue
            routed.append((owner, value))
        whatsapp_file(routed)
        return Response({"status": "ok"})


class WhatsAppCloudAppWebhookApi(WebhookApi):
    """The URL shared by every number of a Meta app (a Meta app has one callback URL): each change is
    filed under the account owning its number, and that account's app secret must have signed the body."""

    @extend_schema(operation_id="channels_whatsapp_app_verify", **WHATSAPP_VERIFY)
    def get(self, request):
        return whatsapp_handshake(request, getattr(settings, "WHATSAPP_WEBHOOK_VERIFY_TOKEN", ""))

    @extend_schema(
        operation_id="channels_whatsapp_app_webhook", request={"application/json": OpenApiTypes.OBJECT},
        responses={200: WEBHOOK_ACCEPTED},
    )
    def post(self, request):
        raw_body = request.body
        signature = request.headers.get("X-Hub-Signature-256", "")
        if not signature.startswith("sha256="):
            raise forbidden("Missing X-Hub-Signature-256.")
        changes = _whatsapp_payload(raw_body)
        routed, refused = [], 0
        for value in changes:
            owner = _whatsapp_owner(payloads.whatsapp_phone_number_id(value))
            if owner is None:
                continue
            if not meta_signature_valid(owner.secrets.get("app_secret", ""), raw_body, signature):
                refused += 1
                continue
            routed.append((owner, value))
        if refused and not routed:
            raise forbidden("Wrong X-Hub-Signature-256.")
        whatsapp_file(routed)
        return Response({"status": "ok"})


def whatsapp_handshake(request, verify_token: str) -> HttpResponse:
    given = request.GET.get("hub.verify_token", "")
    if (
        request.GET.get("hub.mode") != "subscribe"
        or not verify_token
        or not hmac.compare_digest(given.encode(), verify_token.encode())
    ):
        raise forbidden("Verification failed.")
    return HttpResponse(request.GET.get("hub.challenge", ""), content_type="text/plain")


# --- Email: the provider's event webhook (bounces, complaints) ----------------------------------


class EmailEventsWebhookApi(WebhookApi):
    """Mailgun's event webhook for one email account (where the provider reports instead of a VERP mailbox):
    `failed` revokes email consent on a permanent failure and fails the message, `complained` revokes it and
    shows on the message; other events are acknowledged and ignored. The signature is in the body
    (HMAC-SHA256 of timestamp + token with the account's `webhook_signing_key`): the body is read
    within the JSON limits first, then verified, then recorded."""

    @extend_schema(
        operation_id="channels_email_events", request={"application/json": OpenApiTypes.OBJECT},
        responses={200: WEBHOOK_ACCEPTED},
    )
    def post(self, request, token: str):
        account = account_or_404(token, Channel.EMAIL)
        try:
            body = json_loads(request.body)
        except (ParseError, ValueError):
            raise malformed("Not an email provider event.") from None
        if not isinstance(body, dict):
            raise malformed("Not an email provider event.")
        if not bounces.mailgun_signature_valid(
            signing_key=account.secrets.get("webhook_signing_key", ""), signature=body.get("signature"), now=time.time()
        ):
            raise forbidden("Wrong or stale webhook signature.")
        event = body.get("event-data")
        if not isinstance(event, dict):
            raise malformed("The event has no event-data.")
        report_item = bounces.mailgun_event_report(event, company_id=account.company_id)
        outcome = "ignored"
        if report_item is not None:
            outcome = report(bounces.bounce_record, report=report_item)
        return Response({"status": outcome})


# --- Email tracking -------------------------------------------------------------------


def _claims_or_404(token: str, salt: str) -> dict[str, Any]:
    try:
        return tracking.token_read(token, salt=salt)
    except signing.BadSignature:
        raise ApplicationError("Unknown link.", code="not_found", status_code=status.HTTP_404_NOT_FOUND) from None


def _unknown_link() -> ApplicationError:
    return ApplicationError("Unknown link.", code="not_found", status_code=status.HTTP_404_NOT_FOUND)


def _pixel() -> HttpResponse:
    response = HttpResponse(PIXEL_GIF, content_type="image/gif")
    response["Cache-Control"] = "no-store, private"
    return response


class EmailOpenApi(LinkApi):
    """The open pixel: the first GET per email is recorded (a prefetcher's flagged); HEAD records nothing."""

    @extend_schema(
        operation_id="channels_email_open",
        responses={(200, "image/gif"): OpenApiResponse(response=OpenApiTypes.BINARY, description="A 1x1 pixel.")},
    )
    def get(self, request, token: str):
        claims = _claims_or_404(token, tracking.OPEN_SALT)
        is_prefetch = tracking.is_prefetch(request.headers.get("User-Agent", ""))
        if "d" in claims:
            services.email_open_record(company_id=claims["c"], delivery_id=claims["d"], is_prefetch=is_prefetch)
        else:  # a token of an email sent before delivery rows existed
            services.email_engagement_record(
                company_id=claims["c"], type="notification_opened", message_id=claims.get("m"),
                correlation_id=claims.get("r"), contact_id=claims.get("k"), email=claims.get("e") or "",
                agent_type=claims.get("a") or "", is_prefetch=is_prefetch,
            )
        return _pixel()

    def head(self, request, token: str):
        _claims_or_404(token, tracking.OPEN_SALT)
        return _pixel()


class EmailClickApi(LinkApi):
    """A link of an email: redirects to the URL stored for it, only on an allowed host; the first click is
    recorded (a scanner's flagged), HEAD records nothing."""

    def _target(self, token: str) -> tuple[Any, str]:
        claims = _claims_or_404(token, tracking.CLICK_SALT)
        if "d" in claims:
            found = services.email_click_target(company_id=claims["c"], delivery_id=claims["d"], index=claims.get("l"))
            if found is None:
                raise _unknown_link()
            return found
        url = claims.get("u") or ""  # a token of an email sent before delivery rows existed
        if not tracking.is_allowed_link(url, tracking.click_allowed_hosts()):
            raise _unknown_link()
        return claims, url

    @extend_schema(
        operation_id="channels_email_click", responses={302: OpenApiResponse(description="On to the link's target.")}
    )
    def get(self, request, token: str):
        target, url = self._target(token)
        is_prefetch = tracking.is_prefetch(request.headers.get("User-Agent", ""))
        if isinstance(target, dict):
            services.email_engagement_record(
                company_id=target["c"], type="message_clicked", message_id=target.get("m"),
                correlation_id=target.get("r"), contact_id=target.get("k"), email=target.get("e") or "", url=url,
                agent_type=target.get("a") or "", is_prefetch=is_prefetch,
            )
        else:
            services.email_click_record(delivery=target, url=url, is_prefetch=is_prefetch)
        return HttpResponseRedirect(url)

    def head(self, request, token: str):
        _, url = self._target(token)
        return HttpResponseRedirect(url)


UNSUBSCRIBE_PAGE = {(200, "text/html"): OpenApiResponse(response=OpenApiTypes.STR, description="The page.")}


class EmailUnsubscribeApi(LinkApi):
    """GET shows a confirmation (link scanners must not unsubscribe anyone); POST is RFC 8058 one-click."""

    @extend_schema(operation_id="channels_email_unsubscribe_page", responses=UNSUBSCRIBE_PAGE)
    def get(self, request, token: str):
        return self._page(request, self._who(token), is_done=False)

    @extend_schema(
        operation_id="channels_email_unsubscribe", request={"application/x-www-form-urlencoded": OpenApiTypes.OBJECT},
        responses=UNSUBSCRIBE_PAGE,
    )
    def post(self, request, token: str):
        who = self._who(token)
        services.email_unsubscribe(company_id=who["c"], contact_id=who.get("k"), email=who.get("e") or "")
        return self._page(request, who, is_done=True)

    @staticmethod
    def _who(token: str) -> dict[str, Any]:
        claims = _claims_or_404(token, tracking.UNSUBSCRIBE_SALT)
        if "d" not in claims:
            return claims
        delivery = services.email_delivery_for(company_id=claims["c"], delivery_id=claims["d"])
        if delivery is None:
            raise _unknown_link()
        return {"c": delivery.company_id, "k": delivery.contact_id, "e": delivery.to_email}

    @staticmethod
    def _page(request, who: dict[str, Any], *, is_done: bool) -> HttpResponse:
        company = Company.objects.filter(pk=who["c"]).only("name").first()
        context = {"done": is_done, "email": who.get("e") or "", "company_name": company.name if company else ""}
        return render(request, "channels_app/email/unsubscribe.html", context)
