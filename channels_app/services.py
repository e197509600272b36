"""Writes of channels_app: accounts, the callback log, and reporting back through the signals."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from channels_app import signals
from channels_app.models import (
    ChannelAccount,
    EmailDelivery,
    ProviderCallback,
    WhatsAppWebSession,
    webhook_token_new,
)
from channels_app.payloads import IGNORED_KINDS
from crm.models import Channel, Company, Contact
from crm.services import consent_revoke, event_record
from shokti.metrics import count

logger = logging.getLogger(__name__)

# The statuses `engage` understands; anything else a provider says is only logged.
# "played": a voice note of ours was played; "complained": the recipient reported an email as spam.
DELIVERY_STATUSES = ("sent", "delivered", "read", "failed", "played", "complained")


@transaction.atomic
def channel_account_secrets_update(*, account: ChannelAccount, secrets: dict[str, str]) -> ChannelAccount:
    """Set the given secrets of the account's channel; a blank value keeps the stored one. Never logs values."""
    allowed = ChannelAccount.SECRET_NAMES.get(account.channel, ())
    merged = {name: value for name, value in account.secrets.items() if name in allowed}
    for name, value in secrets.items():
        if value and name in allowed:
            merged[name] = value
    account.secrets_set(merged)
    account.save(update_fields=["secrets_encrypted", "updated_at"])
    logger.info("channel account %s: secrets updated (%s)", account.pk, ", ".join(sorted(secrets)) or "none")
    return account


@transaction.atomic
def channel_account_secrets_clear(*, account: ChannelAccount) -> ChannelAccount:
    account.secrets_set({})
    account.save(update_fields=["secrets_encrypted", "updated_at"])
    logger.info("channel account %s: secrets cleared", account.pk)
    return account


def channel_account_webhook_token_rotate(*, account: ChannelAccount) -> ChannelAccount:
    """A new webhook token: the old URLs stop working (paste the new ones into the provider)."""
    account.webhook_token = webhook_token_new()
    account.save(update_fields=["webhook_token", "updated_at"])
    return account


def _callback_record(
    *,
    account: ChannelAccount,
    provider_message_id: str,
    status: str,
    error: str = "",
    raw: dict[str, Any] | None = None,
) -> tuple[ProviderCallback, bool]:
    return ProviderCallback.objects.get_or_create(
        company_id=account.company_id,
        channel=account.channel,
        provider_message_id=provider_message_id,
        status=status,
        defaults={"account": account, "error": error[:500], "raw": raw or {}},
    )


def delivery_status_report(
    *,
    account: ChannelAccount,
    provider_message_id: str,
    status: str,
    error: str = "",
    raw: dict[str, Any] | None = None,
    occurred_at: dt.datetime | None = None,
    details: dict[str, Any] | None = None,
) -> bool:
    """Log a provider status callback and, the first time it is seen, tell `engage`. True if new.

    The log row and the receivers' writes share one transaction: if a receiver fails, nothing is
    kept and the provider's retry is processed afresh. `details` carries what the provider adds
    (pricing, conversation, every error with its message and details), `occurred_at` its own time.
    """
    with transaction.atomic():
        callback, created = _callback_record(
            account=account, provider_message_id=provider_message_id, status=status, error=error, raw=raw
        )
        if not created:
            logger.info("replayed %s callback %s %s ignored", account.channel, provider_message_id, status)
            return False
        if status in DELIVERY_STATUSES:
            _emit(
                callback,
                signals.delivery_status_changed,
                company_id=account.company_id,
                channel=account.channel,
                provider_message_id=provider_message_id,
                status=status,
                error=error,
                raw=raw or {},
                occurred_at=occurred_at or timezone.now(),
                details=details or {},
            )
    return True


def inbound_message_report(
    *,
    account: ChannelAccount,
    provider_message_id: str,
    text: str,
    from_phone: str = "",
    from_email: str = "",
    from_name: str = "",
    raw: dict[str, Any] | None = None,
    occurred_at: dt.datetime | None = None,
    kind: str = "text",
    caption: str = "",
    media: dict[str, Any] | None = None,
    reply: dict[str, Any] | None = None,
    context_message_id: str = "",
    referral: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    to_address: str = "",
    attachments: list[dict[str, Any]] | None = None,
) -> bool:
    """Log an inbound message and, the first time it is seen, hand it to `engage`. True if new.

    Every kind a customer can send is handed over (see channels_app.payloads); only the provider's
    own notices (unsupported, unknown types) stay in the log. `media` names the file to fetch
    later with `channels_app.media.media_fetch` (its `account_id` is this account's).
    """
    with transaction.atomic():
        callback, created = _callback_record(
            account=account, provider_message_id=provider_message_id, status=ProviderCallback.INBOUND, raw=raw
        )
        if not created:
            logger.info("replayed %s inbound %s ignored", account.channel, provider_message_id)
            return False
        if kind in IGNORED_KINDS or (kind == "text" and not text.strip()):
            logger.info("%s inbound %s of kind %s only logged", account.channel, provider_message_id, kind)
            return True
        _emit(
            callback,
            signals.inbound_message_received,
            company_id=account.company_id,
            channel=account.channel,
            from_phone=from_phone,
            from_email=from_email,
            from_name=from_name,
            text=text,
            provider_message_id=provider_message_id,
            raw=raw or {},
            occurred_at=occurred_at or timezone.now(),
            kind=kind,
            caption=caption,
            media={**media, "account_id": account.pk} if media else None,
            # Every file of the message (an MMS may carry several), each fetchable with media_fetch.
            attachments=[
                {**item, "account_id": account.pk}
                for item in (attachments if attachments is not None else ([media] if media else []))
            ],
            reply=reply,
            context_message_id=context_message_id,
            referral=referral,
            extra=extra or {},
            to_address=to_address,
        )
    return True


def _emit(callback: ProviderCallback, signal, **kwargs: Any) -> None:
    """Send the signal; a receiver's ValidationError (bad data: a retry would fail alike) is kept on the log row.

    Any other exception propagates and undoes the caller's transaction, so the provider retries.
    """
    try:
        with transaction.atomic():
            signal.send(sender=ChannelAccount, **kwargs)
    except ValidationError as error:
        logger.warning("%s callback %s refused by a receiver: %s", callback.channel, callback.provider_message_id, error)
        callback.error = f"refused: {'; '.join(error.messages)}"[:500]
        callback.save(update_fields=["error"])


def _contact_for(*, company_id: int, contact_id: int | None, email: str) -> Contact | None:
    contacts = Contact.objects.filter(company_id=company_id)
    if contact_id:
        return contacts.filter(pk=contact_id).first()
    if email:
        return contacts.filter(email=email.strip().lower()).first()
    return None


def email_engagement_record(
    *,
    company_id: int,
    type: str,
    message_id: int | None,
    correlation_id: str | None,
    contact_id: int | None = None,
    email: str = "",
    url: str = "",
    agent_type: str = "",
    is_prefetch: bool = False,
) -> None:
    """Record `notification_opened` / `message_clicked` from an email's pixel or link."""
    company = Company.objects.filter(pk=company_id).first()
    if company is None:
        return
    payload: dict[str, Any] = {"channel": Channel.EMAIL, "message_id": message_id}
    if url:
        payload["url"] = url
    if is_prefetch:
        payload["is_prefetch"] = True
    event_record(
        company=company,
        type=type,
        contact=_contact_for(company_id=company_id, contact_id=contact_id, email=email),
        payload=payload,
        source="email",
        correlation_id=_uuid_or_none(correlation_id),
    )
    if not is_prefetch:
        count("user_events_total", event_type=type, agent_type=agent_type, channel=Channel.EMAIL, source="email")


def email_delivery_for(*, company_id: int, delivery_id: int) -> EmailDelivery | None:
    return EmailDelivery.objects.filter(pk=delivery_id, company_id=company_id).first()


def _first_hit(*, company_id: int, delivery_id: int, at_field: str, prefetch_field: str, is_prefetch: bool,
               extra: dict[str, Any] | None = None) -> bool:
    """Record the first open (or click) of an email: True if this hit is the one kept.

    A prefetcher's hit counts only while nothing is recorded; a person's replaces a prefetcher's.
    """
    first = Q(**{f"{at_field}__isnull": True})
    if not is_prefetch:
        first |= Q(**{prefetch_field: True})
    return bool(
        EmailDelivery.objects.filter(first, pk=delivery_id, company_id=company_id).update(
            **{at_field: timezone.now(), prefetch_field: is_prefetch}, **(extra or {})
        )
    )


def email_open_record(*, company_id: int, delivery_id: int, is_prefetch: bool, correlation_id: str | None = None) -> bool:
    """The first open of an email (its pixel): records `notification_opened` once. True if recorded."""
    delivery = email_delivery_for(company_id=company_id, delivery_id=delivery_id)
    if delivery is None:
        return False
    with transaction.atomic():
        if not _first_hit(company_id=company_id, delivery_id=delivery_id, at_field="opened_at",
                          prefetch_field="open_is_prefetch", is_prefetch=is_prefetch):
            return False
        email_engagement_record(
            company_id=company_id, type="notification_opened", message_id=delivery.message_id,
            correlation_id=correlation_id, contact_id=delivery.contact_id, email=delivery.to_email,
            agent_type=delivery.agent_type, is_prefetch=is_prefetch,
        )
    return True


def email_click_target(*, company_id: int, delivery_id: int, index: int) -> tuple[EmailDelivery, str] | None:
    """The delivery and the URL its link number `index` leads to, if that URL is (still) allowed."""
    from channels_app.tracking import click_allowed_hosts, is_allowed_link

    delivery = email_delivery_for(company_id=company_id, delivery_id=delivery_id)
    if delivery is None or not isinstance(index, int) or not 0 <= index < len(delivery.links or []):
        return None
    url = str(delivery.links[index])
    return (delivery, url) if is_allowed_link(url, click_allowed_hosts(extra=delivery.link_hosts or ())) else None


def email_click_record(*, delivery: EmailDelivery, url: str, is_prefetch: bool, correlation_id: str | None = None) -> bool:
    """The first click of an email: records `message_clicked` once. True if recorded."""
    with transaction.atomic():
        if not _first_hit(company_id=delivery.company_id, delivery_id=delivery.pk, at_field="clicked_at",
                          prefetch_field="click_is_prefetch", is_prefetch=is_prefetch, extra={"clicked_url": url[:2000]}):
            return False
        email_engagement_record(
            company_id=delivery.company_id, type="message_clicked", message_id=delivery.message_id,
            correlation_id=correlation_id, contact_id=delivery.contact_id, email=delivery.to_email, url=url,
            agent_type=delivery.agent_type, is_prefetch=is_prefetch,
        )
    return True


@transaction.atomic
def email_unsubscribe(
    *, company_id: int, contact_id: int | None = None, email: str = "", reason: str = "unsubscribe_link"
) -> Contact | None:
    """Revoke the contact's email consent (an unsubscribe link, a hard bounce, a complaint); records `opt_out` once."""
    contact = _contact_for(company_id=company_id, contact_id=contact_id, email=email)
    if contact is None:
        return None
    if consent_revoke(contact=contact, channel=Channel.EMAIL, reason=reason, source="email"):
        count("opt_outs_total", channel=Channel.EMAIL, reason=reason)
    return contact


def _uuid_or_none(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def whatsapp_web_session_update(*, account_id: int, state: str, error: str = "", qr_png: bytes | None = None) -> None:
    """Record what the browser saw, for ops in the admin."""
    session, _ = WhatsAppWebSession.objects.get_or_create(account_id=account_id)
    session.state = state
    session.last_error = error[:500]
    session.last_checked_at = timezone.now()
    fields = ["state", "last_error", "last_checked_at"]
    if qr_png is not None:
        session.qr_screenshot_png = qr_png
        fields.append("qr_screenshot_png")
    session.save(update_fields=fields)


def whatsapp_web_sent_mark(*, account_id: int) -> None:
    WhatsAppWebSession.objects.update_or_create(
        account_id=account_id,
        defaults={"last_sent_at": timezone.now(), "state": WhatsAppWebSession.State.LOGGED_IN, "last_error": ""},
    )
