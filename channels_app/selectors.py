"""Reads of channels_app."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import Q
from django.urls import reverse

from channels_app.models import ChannelAccount, ChannelNumber
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


# The settings key naming an account's own number, per channel (see ChannelNumber).
NUMBER_SETTING = {Channel.WHATSAPP_CLOUD: "phone_number_id", Channel.SMS: "from_number"}


class AmbiguousNumber(Exception):
    """Two active accounts claim one number: nothing may be filed until ops fix it."""


def channel_account_for_number(*, channel: str, number: str) -> ChannelAccount | None:
    """The active account owning `number` on `channel` (a ChannelNumber row or its settings number), or None.

    Raises AmbiguousNumber when two accounts claim it (one in a row, another in its settings).
    """
    if not number or channel not in NUMBER_SETTING:
        return None
    owns = Q(numbers__number=number, numbers__channel=channel) | Q(**{f"settings__{NUMBER_SETTING[channel]}": number})
    accounts = list(
        ChannelAccount.objects.select_related("company")
        .filter(owns, channel=channel, is_active=True, company__is_active=True)
        .distinct()
        .order_by("pk")[:2]
    )
    if len(accounts) > 1:
        raise AmbiguousNumber(f"{channel} number {number} is claimed by accounts {accounts[0].pk} and {accounts[1].pk}.")
    return accounts[0] if accounts else None


def public_base_url() -> str:
    """The base URL providers call (behind a proxy, the public one): CHANNELS_PUBLIC_BASE_URL or SITE_URL."""
    return (getattr(settings, "CHANNELS_PUBLIC_BASE_URL", "") or settings.SITE_URL).rstrip("/")


def channel_settings_for(*, company_id: int, channel: str) -> dict[str, Any]:
    """The active account's settings with its secrets decrypted, for `registry.send`; {} when none.

    `numbers`: every number the account owns (its settings number and its ChannelNumber rows), the
    ones a send may go from (`base.sender_number`).
    """
    account = channel_account_active(company_id=company_id, channel=channel)
    if account is None:
        return {}
    numbers: list[str] = []
    if channel in NUMBER_SETTING:
        own = str(account.settings.get(NUMBER_SETTING[channel]) or "")
        numbers = ([own] if own else []) + list(
            ChannelNumber.objects.filter(account=account, channel=channel).exclude(number=own)
            .order_by("number").values_list("number", flat=True)
        )
    return {
        **account.settings,
        **account.secrets,
        "account_id": account.pk,
        "company_id": account.company_id,
        "webhook_token": account.webhook_token,
        "numbers": numbers,
    }


def webhook_urls_for(*, account: ChannelAccount) -> dict[str, str]:
    """The URLs to paste into the provider's console for this account."""
    names = {
        Channel.SMS: {"Status callback URL": "channels:sms-status", "Incoming message webhook": "channels:sms-inbound"},
        Channel.WHATSAPP_CLOUD: {"Callback URL (webhook)": "channels:whatsapp-cloud-webhook"},
        Channel.EMAIL: {"Event webhook (Mailgun: permanent failures, complaints)": "channels:email-events"},
    }.get(account.channel, {})
    site = public_base_url()
    urls = {label: site + reverse(name, kwargs={"token": account.webhook_token}) for label, name in names.items()}
    if account.channel == Channel.WHATSAPP_CLOUD:
        # Several companies' numbers on one Meta app share the app's single callback URL.
        urls["Callback URL shared by every number of a Meta app"] = site + reverse("channels:whatsapp-cloud-app-webhook")
    return urls
