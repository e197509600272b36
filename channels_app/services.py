"""Writes of channels_app: accounts, the callback log, and reporting back through the signals."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from channels_app import signals
from channels_app.models import (
    ChannelAccount,
    ProviderCallback,
    WhatsAppWebSession,
    webhook_token_new,
)
from crm.models import Channel, Company, Contact
from crm.services import consent_revoke, event_record
from shokti.metrics import count

logger = logging.getLogger(__name__)

# The statuses `engage` understands; anything else a provider says is only logged.
DELIVERY_STATUSES = ("sent", "delivered", "read", "failed")


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
) -> bool:
    """Log a provider status callback and, the first time it is seen, tell `engage`. True if new.

    The log row and the receivers' writes share one transaction: if a receiver fails, nothing is
    kept and the provider's retry is processed afresh.
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
) -> bool:
    """Log an inbound message and, the first time it is seen, hand it to `engage`. True if new."""
    with transaction.atomic():
        callback, created = _callback_record(
            account=account, provider_message_id=provider_message_id, status=ProviderCallback.INBOUND, raw=raw
        )
        if not created:
            logger.info("replayed %s inbound %s ignored", account.channel, provider_message_id)
            return False
        if not text.strip():
            # Images, voice notes, reactions: kept in the log, not a conversation turn.
            logger.info("%s inbound %s without text only logged", account.channel, provider_message_id)
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
) -> None:
    """Record `notification_opened` / `message_clicked` from an email's pixel or link."""

    company = Company.objects.filter(pk=company_id).first()
    if company is None:
        return
    payload: dict[str, Any] = {"channel": Channel.EMAIL, "message_id": message_id}
    if url:
        payload["url"] = url
    event_record(
        company=company,
        type=type,
        contact=_contact_for(company_id=company_id, contact_id=contact_id, email=email),
        payload=payload,
        source="email",
        correlation_id=_uuid_or_none(correlation_id),
    )
    count("user_events_total", event_type=type, agent_type=agent_type, channel=Channel.EMAIL, source="email")


@transaction.atomic
def email_unsubscribe(
    *, company_id: int, contact_id: int | None, email: str
) -> Contact | None:
    """Revoke the contact's email consent from an unsubscribe link (records `opt_out` once)."""
    contact = _contact_for(company_id=company_id, contact_id=contact_id, email=email)
    if contact is None:
        return None
    if consent_revoke(contact=contact, channel=Channel.EMAIL, reason="unsubscribe_link", source="email"):
        count("opt_outs_total", channel=Channel.EMAIL, reason="unsubscribe_link")
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
