"""Sending outbound messages and following their delivery status. Everyone sends through here."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from types import EllipsisType
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from channels_app import registry
from channels_app.base import ChannelError, OutboundMedia, OutboundMessage, media_type_for
from channels_app.models import ChannelAccount, ChannelNumber
from channels_app.selectors import channel_settings_for as channel_account_settings
from crm.models import Channel, Company, Contact, Lead
from crm.services import event_record
from engage.ledger.models import Job
from engage.ledger.registry import JobPermanentError
from engage.messaging.models import Message
from engage.messaging.selectors import NUMBERED_CHANNELS, contact_reply_number
from shokti.metrics import count

logger = logging.getLogger(__name__)


AI_AGENT_TYPES = {Message.AgentType.SMARTENGAGE, Message.AgentType.COACHNOVA, Message.AgentType.SALES}


DONE_STATUSES = {Message.Status.SENT, Message.Status.DELIVERED, Message.Status.READ}


# Forward-only delivery statuses: a status may replace only those listed for it.
STATUS_MAY_FOLLOW = {
    Message.Status.SENT: [Message.Status.QUEUED],
    Message.Status.DELIVERED: [Message.Status.QUEUED, Message.Status.SENT],
    Message.Status.READ: [Message.Status.QUEUED, Message.Status.SENT, Message.Status.DELIVERED],
    Message.Status.FAILED: [Message.Status.QUEUED, Message.Status.SENT],
}


TIMESTAMP_FIELD = {
    Message.Status.SENT: "sent_at",
    Message.Status.DELIVERED: "delivered_at",
    Message.Status.READ: "read_at",
    Message.Status.FAILED: "failed_at",
}


# Per-process cache of the channel account settings a send hands its adapter:
# {(company id, channel): (expires at, monotonic; settings)}. An account saved or deleted in this
# process clears it at once (signals below); one changed elsewhere (another worker, a queryset
# update) takes effect within CHANNEL_SETTINGS_CACHE_SECONDS, like the API-key cache.
CHANNEL_SETTINGS_CACHE_SECONDS = 10.0


_settings_cache: dict[tuple[int, str], tuple[float, dict[str, Any]]] = {}


_settings_cache_lock = threading.Lock()


def channel_settings_cache_clear(**kwargs: Any) -> None:
    """Forget every cached channel account of this process."""
    with _settings_cache_lock:
        _settings_cache.clear()


def channel_settings_cache_connect() -> None:
    """Clear the cache when an account, its numbers or a company is saved or deleted in this process (EngageConfig.ready)."""
    for signal in (post_save, post_delete):
        for sender in (ChannelAccount, ChannelNumber, Company):
            signal.connect(
                channel_settings_cache_clear, sender=sender,
                dispatch_uid=f"channel_settings_cache_clear_{signal is post_save}_{sender.__name__}",
            )


def channel_settings_for(*, company: Company | int, channel: str) -> dict[str, Any]:
    """The company's channel account settings for the adapter; {} when it has none (cached, see above)."""
    company_id = company if isinstance(company, int) else company.pk
    key = (company_id, channel)
    now = time.monotonic()
    cached = _settings_cache.get(key)
    if cached is not None and cached[0] > now:
        return cached[1]
    found = channel_account_settings(company_id=company_id, channel=channel)
    with _settings_cache_lock:
        _settings_cache[key] = (now + CHANNEL_SETTINGS_CACHE_SECONDS, found)
    return found


# The hosts a company's messages may link to (engage.ai.config.allowed_link_hosts, registered by
# EngageConfig.ready(): the AI settings sit above this module). Email turns those links into tracked
# buttons and its click redirect follows only them.
_link_hosts_provider: Callable[..., tuple[str, ...]] | None = None


def link_hosts_provider_register(provider: Callable[..., tuple[str, ...]]) -> None:
    global _link_hosts_provider
    _link_hosts_provider = provider


def channel_options(
    *, company: Company | int, channel: str, agent_type: str, message_type: str, contact: Contact | int | None = None,
) -> dict[str, Any]:
    """What a send tells its channel besides the message: who speaks, what kind, (email) the link hosts, and
    (SMS, WhatsApp) `reply_from`: the company's number the contact last wrote to, so the reply comes from
    the number they know. The channel uses it only if the account owns it (else its default number)."""
    options: dict[str, Any] = {"agent_type": agent_type, "message_type": message_type}
    if channel == Channel.EMAIL and _link_hosts_provider is not None:
        options["allowed_link_hosts"] = _link_hosts_provider(company=company)
    if contact is not None and channel in NUMBERED_CHANNELS:
        reply_from = contact_reply_number(contact=contact, channel=channel)
        if reply_from:
            options["reply_from"] = reply_from
    return options


def _outbound_for_job(*, job: Job | None, existing: Message | EllipsisType | None = ..., **fields: Any) -> Message:
    """The job's outbound message, created queued on first call (one per job, by a unique constraint).

    `existing`: what the caller just read for the job (None: it has none), not read again; the unique
    constraint still decides between two runs racing."""
    if job is None:
        return Message.objects.create(**fields)
    if existing is ...:
        existing = Message.objects.filter(job=job, direction=Message.Direction.OUTBOUND).first()
    if existing is not None:
        return existing
    try:
        if not connection.in_atomic_block:
            # One INSERT in autocommit is its own transaction: no BEGIN/COMMIT round trips around it.
            return Message.objects.create(job=job, **fields)
        with transaction.atomic():  # a savepoint: a duplicate must not break the caller's transaction
            return Message.objects.create(job=job, **fields)
    except IntegrityError:
        return Message.objects.get(job=job, direction=Message.Direction.OUTBOUND)


def message_send(
    *,
    job: Job | None,
    company: Company,
    contact: Contact,
    lead: Lead | None,
    channel: str,
    body: str,
    agent_type: str,
    message_type: str,
    subject: str = "",
    correlation_id: uuid.UUID | str | None = None,
    template_version: Any = None,
    options: dict[str, Any] | None = None,
    existing: Message | EllipsisType | None = ...,
    media_url: str = "",
    media_content_type: str = "",
) -> Message:
    """Send one message through its channel, at most once per job; raises ChannelError when it must be retried.

    `existing`: the job's outbound message as the caller has just read it (None: none yet), so it is not
    read twice; left out, it is read here.

    `media_url`, `media_content_type`: one file sent by link with a new message (a queued message carries its
    own). A channel that cannot send it, or a media message the provider refuses after the text went, leaves
    the message sent with the text alone and the reason in `metadata["media_error"]`.

    A message already sent for this job is returned as it is. A transient channel error
    leaves the message queued and re-raises (the job retries); a permanent one marks it
    failed and re-raises with `permanent=True` (the job goes to the dead-letter queue).
    """
    correlation_id = correlation_id or uuid.uuid4()
    fields: dict[str, Any] = {
        "company": company,
        "contact": contact,
        "lead": lead,
        "direction": Message.Direction.OUTBOUND,
        "channel": channel,
        "agent_type": agent_type,
        "message_type": message_type,
        "subject": subject,
        "body": body,
        "status": Message.Status.QUEUED,
        "correlation_id": correlation_id,
    }
    if template_version is not None:
        fields["template_version"] = template_version
    if media_url:
        fields.update(media_url=media_url, media_content_type=media_content_type,
                      media_type=media_type_for(media_content_type))
    message = _outbound_for_job(job=job, existing=existing, **fields)
    if message.status in DONE_STATUSES:
        return message
    if message.status == Message.Status.FAILED:
        # A replayed job tries its failed message again, with what the caller says now.
        message.status, message.error, message.body, message.subject = Message.Status.QUEUED, "", body, subject
        message.save(update_fields=["status", "error", "body", "subject", "updated_at"])

    outbound = OutboundMessage(
        company_id=company.pk,
        channel=channel,
        body=message.body,
        message_id=message.pk,
        correlation_id=message.correlation_id,
        contact_id=contact.pk,
        to_phone=contact.phone,
        to_email=contact.email,
        to_name=contact.name,
        subject=message.subject,
        # The channel decides with them too (email: marketing needs a postal address; Feedback-ID; link hosts).
        options={
            **channel_options(
                company=company, channel=channel, agent_type=agent_type, message_type=message_type, contact=contact
            ),
            **(options or {}),
        },
        media=(OutboundMedia(url=message.media_url, content_type=message.media_content_type,
                             media_type=message.media_type or media_type_for(message.media_content_type))
               if message.media_url else None),
    )
    is_ai = agent_type in AI_AGENT_TYPES
    try:
        result = registry.send(outbound, settings=channel_settings_for(company=company, channel=channel))
    except ChannelError as error:
        now = timezone.now()
        message.error = str(error)[:5000]
        update_fields = ["error", "updated_at"]
        if error.permanent:
            message.status, message.failed_at = Message.Status.FAILED, now
            update_fields += ["status", "failed_at"]
        message.save(update_fields=update_fields)
        if is_ai:
            count(
                "ai_messages_sent_total", agent_type=agent_type, channel=channel, message_type=message_type,
                status="failed" if error.permanent else "retry",
            )
            if error.permanent:
                count("ai_messages_failed_total", agent_type=agent_type, channel=channel, reason="send_rejected")
        raise

    now = timezone.now()
    status = result.status if result.status in (Message.Status.QUEUED, Message.Status.SENT) else Message.Status.SENT
    message.status = status
    message.provider_message_id = result.provider_message_id or ""
    message.provider_response = result.raw or {}
    message.error = ""
    update_fields = ["status", "provider_message_id", "provider_response", "error", "updated_at"]
    if result.from_address:
        message.channel_number = result.from_address[:64]
        update_fields.append("channel_number")
    if message.media_url:
        media = ({"media_error": result.media_error} if result.media_error
                 else {"media_provider_message_id": result.media_provider_message_id})
        message.metadata = {**(message.metadata or {}), **media}
        update_fields.append("metadata")
    if status == Message.Status.SENT:
        message.sent_at = now
        update_fields.append("sent_at")
    with transaction.atomic():
        message.save(update_fields=update_fields)
        event_record(
            company=company,
            type="message.sent",
            contact=contact,
            target=message,
            payload={
                "message_id": message.pk,
                "channel": channel,
                "agent_type": agent_type,
                "message_type": message_type,
                "lead_id": lead.pk if lead else None,
                "job_id": job.pk if job else None,
            },
            source="engage",
            correlation_id=message.correlation_id,
        )
    if is_ai:
        count("ai_messages_sent_total", agent_type=agent_type, channel=channel, message_type=message_type, status="sent")
    return message


def message_status_update(
    *,
    company_id: int | None,
    channel: str,
    provider_message_id: str,
    status: str,
    error: str = "",
    raw: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
) -> Message | None:
    """Move a message forward (queued → sent → delivered → read; failed only before delivery).

    Duplicates and out-of-order reports change nothing; an unknown message is logged and acknowledged.
    `company_id` is the company whose signed webhook reported it: a tenant can never move another's message.
    """
    if status not in STATUS_MAY_FOLLOW or not provider_message_id:
        logger.info("delivery status %r for %s/%s ignored", status, channel, provider_message_id)
        return None
    occurred_at = occurred_at or timezone.now()
    with transaction.atomic():
        message = (
            Message.objects.select_for_update()
            .select_related("company", "contact")
            .filter(company_id=company_id, channel=channel, provider_message_id=provider_message_id)
            .first()
        )
        if message is None:
            logger.info("delivery status %s for unknown message %s/%s", status, channel, provider_message_id)
            return None
        if message.status not in STATUS_MAY_FOLLOW[status]:
            return message  # a duplicate, or older news than what we know
        message.status = status
        update_fields = ["status", "updated_at", TIMESTAMP_FIELD[status]]
        setattr(message, TIMESTAMP_FIELD[status], occurred_at)
        if status == Message.Status.FAILED:
            message.error = error[:5000]
            update_fields.append("error")
        if raw:
            message.provider_response = {**(message.provider_response or {}), status: raw}
            update_fields.append("provider_response")
        message.save(update_fields=update_fields)
        event_record(
            company=message.company,
            type=f"message.{status}",
            contact=message.contact,
            target=message,
            payload={"message_id": message.pk, "channel": channel, **({"error": error} if error else {})},
            source=channel,
            correlation_id=message.correlation_id,
        )
    if message.agent_type in AI_AGENT_TYPES:
        if status == Message.Status.DELIVERED:
            count("ai_messages_delivered_total", agent_type=message.agent_type, channel=channel)
        elif status == Message.Status.FAILED:
            count("ai_messages_failed_total", agent_type=message.agent_type, channel=channel, reason="undelivered")
    return message


MESSAGE_SEND_TASK = "message_send"


def message_send_for_job(*, job: Job) -> dict[str, Any]:
    """The `message_send` job: send the outbound message queued with it (engage.policy.consent.message_queue)."""
    message = (
        Message.objects.select_related("company", "contact", "lead", "template_version")
        .filter(job=job, company_id=job.company_id, direction=Message.Direction.OUTBOUND)
        .first()
    )
    if message is None:
        raise JobPermanentError("No message was queued with this job.")
    sent = message_send(
        job=job, company=message.company, contact=message.contact, lead=message.lead, channel=message.channel,
        body=message.body, subject=message.subject, agent_type=message.agent_type, message_type=message.message_type,
        correlation_id=message.correlation_id, template_version=message.template_version,
    )
    return {"message_id": sent.pk, "status": sent.status}
