"""Channel accounts (per-company credentials), the raw provider callback log, WhatsApp Web sessions."""

from __future__ import annotations

import secrets as pysecrets
from typing import Any

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from channels_app.crypto import secrets_decrypt, secrets_encrypt
from crm.models import Channel, Company


def webhook_token_new() -> str:
    # Hex: safe in any provider URL field (Twilio rejects some characters in callback URLs).
    return pysecrets.token_hex(24)


class ChannelAccount(models.Model):
    """A company's credentials and settings for one channel. Secrets are encrypted and write-only."""

    # The secret names each channel uses; the admin offers a password input for each.
    SECRET_NAMES: dict[str, tuple[str, ...]] = {
        # webhook_signing_key: the email provider's event webhook (Mailgun's HTTP webhook signing key).
        Channel.EMAIL: ("password", "webhook_signing_key"),
        Channel.SMS: ("auth_token",),
        Channel.WHATSAPP_CLOUD: ("access_token", "app_secret", "verify_token"),
        Channel.WHATSAPP_WEB: (),
        Channel.CONSOLE: (),
    }

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="channel_accounts", verbose_name=_("company"))
    channel = models.CharField(max_length=20, choices=Channel.choices, verbose_name=_("channel"))
    name = models.CharField(max_length=100, verbose_name=_("name"))
    is_active = models.BooleanField(default=True, verbose_name=_("is active"))
    settings = models.JSONField(default=dict, blank=True, help_text=_("Non-secret settings, e.g. from number."), verbose_name=_("settings"))
    secrets_encrypted = models.TextField(blank=True, editable=False, verbose_name=_("secrets encrypted"))
    webhook_token = models.CharField(max_length=64, unique=True, default=webhook_token_new, editable=False, verbose_name=_("webhook token"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("channel account")
        verbose_name_plural = _("channel accounts")
        ordering = ["company_id", "channel", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["company", "channel"],
                condition=Q(is_active=True),
                name="channels_one_active_account_per_channel",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_channel_display()})"

    def __repr__(self) -> str:  # never show secrets, even in tracebacks
        return f"<ChannelAccount {self.pk} {self.channel} company={self.company_id}>"

    @property
    def secrets(self) -> dict[str, Any]:
        return secrets_decrypt(self.secrets_encrypted)

    def secrets_set(self, values: dict[str, Any]) -> None:
        self.secrets_encrypted = secrets_encrypt({key: value for key, value in values.items() if value})

    @property
    def secret_names_set(self) -> list[str]:
        return sorted(self.secrets)


class ChannelNumber(models.Model):
    """A provider number an account owns: where the provider's webhooks for that number are filed.

    WhatsApp Cloud: the `phone_number_id` Meta names in `metadata.phone_number_id`; SMS: the E.164
    number Twilio names in `To`. A number belongs to one account at most (unique), so a payload for
    it can never land in another company. An account's own `settings` number (phone_number_id,
    from_number) counts as registered too; rows here add the company's further numbers.
    """

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="channel_numbers", verbose_name=_("company"))
    account = models.ForeignKey(ChannelAccount, on_delete=models.CASCADE, related_name="numbers", verbose_name=_("account"))
    channel = models.CharField(max_length=20, choices=Channel.choices, verbose_name=_("channel"))
    number = models.CharField(max_length=64, help_text=_("WhatsApp phone_number_id, or the E.164 SMS number."), verbose_name=_("number"))
    label = models.CharField(max_length=100, blank=True, verbose_name=_("label"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("channel number")
        verbose_name_plural = _("channel numbers")
        ordering = ["account_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["channel", "number"], name="channels_number_one_owner"),
        ]

    def __str__(self) -> str:
        return f"{self.number} ({self.get_channel_display()})"


class ProviderCallback(models.Model):
    """Every provider callback as received: the raw delivery history, and the replay guard."""

    INBOUND = "inbound"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="provider_callbacks", verbose_name=_("company"))
    account = models.ForeignKey(
        ChannelAccount, on_delete=models.SET_NULL, null=True, blank=True, related_name="callbacks", verbose_name=_("account")
    )
    channel = models.CharField(max_length=20, choices=Channel.choices, verbose_name=_("channel"))
    provider_message_id = models.CharField(max_length=200, verbose_name=_("provider message id"))
    # sent/delivered/read/failed for statuses, "inbound" for inbound messages, the provider's word otherwise.
    status = models.CharField(max_length=30, verbose_name=_("status"))
    error = models.CharField(max_length=500, blank=True, verbose_name=_("error"))
    raw = models.JSONField(default=dict, blank=True, verbose_name=_("raw"))
    received_at = models.DateTimeField(auto_now_add=True, db_index=True, verbose_name=_("received at"))

    class Meta:
        verbose_name = _("provider callback")
        verbose_name_plural = _("provider callbacks")
        ordering = ["-received_at"]
        constraints = [
            # Per company: another tenant's signed callbacks can never pre-empt this one's.
            models.UniqueConstraint(
                fields=["company", "channel", "provider_message_id", "status"],
                name="channels_callback_once_per_company_status",
            ),
        ]
        indexes = [models.Index(fields=["company", "-received_at"])]

    def __str__(self) -> str:
        return f"{self.channel} {self.provider_message_id} {self.status}"


class WhatsAppWebSession(models.Model):
    """The browser session of a WhatsApp Web account, as ops need to see it (QR login)."""

    class State(models.TextChoices):
        UNKNOWN = "unknown", _("Not started")
        LOGGED_IN = "logged_in", _("Logged in")
        LOGIN_REQUIRED = "login_required", _("QR login required")
        ERROR = "error", _("Error")

    account = models.OneToOneField(ChannelAccount, on_delete=models.CASCADE, related_name="whatsapp_web_session", verbose_name=_("account"))
    state = models.CharField(max_length=20, choices=State.choices, default=State.UNKNOWN, verbose_name=_("state"))
    qr_screenshot_png = models.BinaryField(blank=True, default=b"", editable=False, verbose_name=_("qr screenshot png"))
    last_error = models.CharField(max_length=500, blank=True, verbose_name=_("last error"))
    last_checked_at = models.DateTimeField(null=True, blank=True, verbose_name=_("last checked at"))
    last_sent_at = models.DateTimeField(null=True, blank=True, verbose_name=_("last sent at"))

    class Meta:
        verbose_name = _("WhatsApp Web session")
        verbose_name_plural = _("WhatsApp Web sessions")

    def __str__(self) -> str:
        return f"{self.account} - {self.get_state_display()}"


class WhatsAppWebDelivery(models.Model):
    """The outbox row of one WhatsApp Web message: written with the caller's send, relayed until it is done.

    `send()` only publishes a Celery task after commit; if the broker is down or loses the message,
    this row is what remembers it (`channels_app.whatsapp_web_relay` publishes it again).
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="whatsapp_web_deliveries", verbose_name=_("company"))
    account = models.ForeignKey(ChannelAccount, on_delete=models.CASCADE, related_name="whatsapp_web_deliveries", verbose_name=_("account"))
    provider_message_id = models.CharField(max_length=200, unique=True, verbose_name=_("provider message id"))
    to_phone = models.CharField(max_length=32, verbose_name=_("to phone"))
    body = models.TextField(verbose_name=_("body"))
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, verbose_name=_("status"))
    attempts = models.PositiveIntegerField(default=0, verbose_name=_("attempts"))
    last_error = models.CharField(max_length=500, blank=True, verbose_name=_("last error"))
    # When the task was last published (or, after a transient failure, when its retry is due).
    dispatched_at = models.DateTimeField(null=True, blank=True, verbose_name=_("dispatched at"))
    # Set while a task is typing it; a claim older than the task time limit belonged to a dead worker.
    claimed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("claimed at"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("WhatsApp Web delivery")
        verbose_name_plural = _("WhatsApp Web deliveries")
        ordering = ["-created_at"]
        indexes = [
            # The relay scans only the pending rows, oldest dispatch first.
            models.Index(
                fields=["dispatched_at"],
                condition=Q(status="pending"),
                name="channels_waweb_pending_relay",
            ),
            models.Index(fields=["company", "-created_at"], name="channels_waweb_company_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.provider_message_id} {self.status}"


def email_delivery_token_new() -> str:
    # Lower-case hex: survives the local part of a VERP address (case-folded by some relays).
    return pysecrets.token_hex(12)


class EmailDelivery(models.Model):
    """One email we sent: what its tracking links and its bounce address point at, and what came back.

    Tracking tokens carry only this row's id (signed), never the recipient's address; the click
    redirect reads the URL from `links`. `token` is the VERP part of the return path
    (bounces+<token>@...), so a bounce names the email it is about. Opens and clicks keep the
    first one only (a prefetcher's hit is replaced by a person's).
    """

    class BounceType(models.TextChoices):
        HARD = "hard", _("Hard (permanent)")
        SOFT = "soft", _("Soft (temporary)")

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="email_deliveries", db_index=False, verbose_name=_("company"))
    account = models.ForeignKey(
        ChannelAccount, on_delete=models.SET_NULL, null=True, blank=True, related_name="email_deliveries", verbose_name=_("account")
    )
    # The sender's (engage's) message id: an integer, not a foreign key (channels_app never imports engage).
    message_id = models.BigIntegerField(null=True, blank=True, verbose_name=_("message id"))
    contact = models.ForeignKey(
        "crm.Contact", on_delete=models.SET_NULL, null=True, blank=True, related_name="email_deliveries", db_index=False, verbose_name=_("contact")
    )
    to_email = models.EmailField(max_length=254, verbose_name=_("to email"))
    token = models.CharField(max_length=32, unique=True, default=email_delivery_token_new, editable=False, verbose_name=_("token"))
    provider_message_id = models.CharField(max_length=255, blank=True, help_text=_("The Message-ID header."), verbose_name=_("provider message id"))
    agent_type = models.CharField(max_length=20, blank=True, verbose_name=_("agent type"))
    links = models.JSONField(default=list, blank=True, verbose_name=_("links"))
    link_hosts = models.JSONField(
        default=list, blank=True,
        help_text=_("The company's own link hosts the send allowed besides ours (its allowed link domains): a click on"
        " one of `links` redirects while its host is still ours or one of these."), verbose_name=_("link hosts"),
    )
    opened_at = models.DateTimeField(null=True, blank=True, verbose_name=_("opened at"))
    open_is_prefetch = models.BooleanField(default=False, verbose_name=_("open is prefetch"))
    clicked_at = models.DateTimeField(null=True, blank=True, verbose_name=_("clicked at"))
    clicked_url = models.CharField(max_length=2000, blank=True, verbose_name=_("clicked url"))
    click_is_prefetch = models.BooleanField(default=False, verbose_name=_("click is prefetch"))
    bounced_at = models.DateTimeField(null=True, blank=True, verbose_name=_("bounced at"))
    bounce_type = models.CharField(max_length=10, choices=BounceType.choices, blank=True, verbose_name=_("bounce type"))
    bounce_detail = models.CharField(max_length=500, blank=True, verbose_name=_("bounce detail"))
    complained_at = models.DateTimeField(null=True, blank=True, verbose_name=_("complained at"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("email delivery")
        verbose_name_plural = _("email deliveries")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["company", "message_id"], condition=Q(message_id__isnull=False), name="channels_email_one_per_message"
            ),
        ]
        indexes = [
            models.Index(fields=["company", "-created_at"], name="channels_email_company_recent"),
            models.Index(fields=["provider_message_id"], name="channels_email_message_id_hdr"),
            models.Index(fields=["contact"], condition=Q(contact__isnull=False), name="channels_email_contact"),
        ]

    def __str__(self) -> str:
        return f"email #{self.pk} to {self.to_email}"
