"""Reads of channels_app."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.urls import reverse

from channels_app.models import ChannelAccount
from crm.models import Channel


def channel_account_active(*, company_id: int, channel: str) -> ChannelAccount | None:
    return ChannelAccount.objects.filter(company_id=company_id, channel=channel, is_active=True).first()


def channel_account_by_webhook_token(*, token: str, channel: str) -> ChannelAccount | None:
    """The active account a per-account webhook URL points at, or None."""
    if not token:
        return None
    return (
        ChannelAccount.objects.select_related("company")
        .filter(webhook_token=token, channel=channel, is_active=True)
        .first()
    )


def channel_settings_for(*, company_id: int, channel: str) -> dict[str, Any]:
    """The active account's settings with its secrets decrypted, for `registry.send`; {} when none."""
    account = channel_account_active(company_id=company_id, channel=channel)
    if account is None:
        return {}
    return {
        **account.settings,
        **account.secrets,
        "account_id": account.pk,
        "company_id": account.company_id,
        "webhook_token": account.webhook_token,
    }


def webhook_urls_for(*, account: ChannelAccount) -> dict[str, str]:
    """The URLs to paste into the provider's console for this account."""
    names = {
        Channel.SMS: {"Status callback URL": "channels:sms-status", "Incoming message webhook": "channels:sms-inbound"},
        Channel.WHATSAPP_CLOUD: {"Callback URL (webhook)": "channels:whatsapp-cloud-webhook"},
    }.get(account.channel, {})
    site = settings.SITE_URL.rstrip("/")
    return {label: site + reverse(name, kwargs={"token": account.webhook_token}) for label, name in names.items()}
