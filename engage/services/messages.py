"""Sending outbound messages and following their delivery status. Everyone sends through here."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, connection, transaction
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from channels_app import registry
from channels_app.base import ChannelError, OutboundMessage
from crm.models import Company, Contact, Event, Lead
from crm.services import event_record
from engage.models import CampaignRecipient, CampaignRun, Job, Message

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


def _count(counter_name: str, **labels: str) -> None:
    """Increment a business counter of shokti.metrics; metrics never break a send."""
    try:
        from shokti import metrics

        counter = getattr(metrics, counter_name, None)
        if counter is not None:
            counter.labels(**labels).inc()
    except Exception:  # pragma: no cover - metrics are best effort
        logger.exception("metric %s not counted", counter_name)


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


def _channel_settings_cache_connect() -> None:
    try:
        from channels_app.models import ChannelAccount
    except ImportError:  # pragma: no cover - channels_app without accounts
        return
    for signal in (post_save, post_delete):
        for sender in (ChannelAccount, Company):
            signal.connect(
                channel_settings_cache_clear, sender=sender,
                dispatch_uid=f"channel_settings_cache_clear_{signal is post_save}_{sender.__name__}",
            )


_channel_settings_cache_connect()


def channel_settings_for(*, company: Company | int, channel: str) -> dict[str, Any]:
    """The company's channel account settings for the adapter; {} when it has none (cached, see above)."""
    company_id = company if isinstance(company, int) else company.pk
    key = (company_id, channel)
    now = time.monotonic()
    cached = _settings_cache.get(key)
    if cached is not None and cached[0] > now:
        return cached[1]
    try:
        from channels_app.selectors import channel_settings_for as selector
    except ImportError:  # channels_app without accounts: adapters run on their defaults
        return {}
    found = selector(company_id=company_id, channel=channel)
    with _settings_cache_lock:
        _settings_cache[key] = (now + CHANNEL_SETTINGS_CACHE_SECONDS, found)
    return found


def _outbound_for_job(*, job: Job | None, **fields: Any) -> Message:
    """The job's outbound message, created queued on first call (one per job, by a unique constraint)."""
    if job is None:
        return Message.objects.create(**fields)
    existing = Message.objects.filter(job=job, direction=Message.Direction.OUTBOUND).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
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
) -> Message:
    """Send one message through its channel, at most once per job; raises ChannelError when it must be retried.

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
    message = _outbound_for_job(job=job, **fields)
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
        # The channel decides with them too (email: marketing needs a postal address; Feedback-ID).
        options={"agent_type": agent_type, "message_type": message_type, **(options or {})},
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
            _count(
                "ai_messages_sent_total", agent_type=agent_type, channel=channel, message_type=message_type,
                status="failed" if error.permanent else "retry",
            )
            if error.permanent:
                _count("ai_messages_failed_total", agent_type=agent_type, channel=channel, reason="send_rejected")
        raise

    now = timezone.now()
    status = result.status if result.status in (Message.Status.QUEUED, Message.Status.SENT) else Message.Status.SENT
    message.status = status
    message.provider_message_id = result.provider_message_id or ""
    message.provider_response = result.raw or {}
    message.error = ""
    update_fields = ["status", "provider_message_id", "provider_response", "error", "updated_at"]
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
        _count("ai_messages_sent_total", agent_type=agent_type, channel=channel, message_type=message_type, status="sent")
    return message


@dataclass(frozen=True)
class QueuedOutbound:
    """A ledger job's queued outbound message with its contact's addresses (`message_queued_for_job`)."""

    id: int
    company_id: int
    contact_id: int
    lead_id: int | None
    channel: str
    subject: str
    body: str
    status: str
    correlation_id: uuid.UUID | None
    to_phone: str
    to_email: str
    to_name: str


def message_queued_for_job(*, job: Job) -> QueuedOutbound | None:
    """The outbound message written with `job` (in the job's company) and its contact, in one query; None if none."""
    quote = connection.ops.quote_name
    messages, contacts = quote(Message._meta.db_table), quote(Contact._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT m.id, m.company_id, m.contact_id, m.lead_id, m.channel, m.subject, m.body, m.status,"
            f" m.correlation_id, c.phone, c.email, c.name FROM {messages} m JOIN {contacts} c ON c.id = m.contact_id"
            " WHERE m.job_id = %s AND m.direction = %s AND m.company_id = %s ORDER BY m.id LIMIT 1",
            [job.pk, Message.Direction.OUTBOUND, job.company_id],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    values = list(row)
    if values[8] is not None and not isinstance(values[8], uuid.UUID):
        values[8] = uuid.UUID(str(values[8]))  # SQLite keeps UUIDs as text
    values[9:] = [value or "" for value in values[9:]]
    return QueuedOutbound(*values)


@dataclass(frozen=True)
class QueuedSendResult:
    message_id: int
    status: str
    # The statuses of the campaign runs whose recipient row this send moved (see `recipient_run_id`).
    run_statuses: tuple[str, ...] = ()


def message_send_queued(
    *,
    job: Job,
    queued: QueuedOutbound,
    agent_type: str,
    message_type: str,
    recipient_run_id: int | None = None,
) -> QueuedSendResult:
    """Send a job's queued outbound message (written with the job, e.g. a campaign's intent), at most once per job.

    What `message_send(job=...)` does for a message that already exists, with fewer round trips for
    bulk sends: the channel settings come from the process cache, and once the provider accepted
    the message ONE statement records it: the message's status, its `message.sent` event, the job's
    completion (if the job is still this worker's) and, with `recipient_run_id`, the campaign
    recipient row of this job (a data-modifying CTE on PostgreSQL; one transaction elsewhere, same
    rows). So a process that dies after a provider call leaves at most that one message unrecorded,
    as with `message_send`. On success `job.status` is `completed` when this send completed the job
    (job_execute then does not complete it again). A channel error is recorded and re-raised as in
    `message_send`; the recipient row becomes `failed` with it.
    """
    if queued.status in DONE_STATUSES:
        return QueuedSendResult(
            message_id=queued.id, status=queued.status,
            run_statuses=_recipient_update(
                job=job, run_id=recipient_run_id, status=CampaignRecipient.Status.SENT, error=""
            ),
        )
    if queued.status == Message.Status.FAILED:
        # A replayed job tries its failed message again.
        Message.objects.filter(pk=queued.id).update(status=Message.Status.QUEUED, error="", updated_at=timezone.now())
    outbound = OutboundMessage(
        company_id=queued.company_id,
        channel=queued.channel,
        body=queued.body,
        message_id=queued.id,
        correlation_id=queued.correlation_id,
        contact_id=queued.contact_id,
        to_phone=queued.to_phone,
        to_email=queued.to_email,
        to_name=queued.to_name,
        subject=queued.subject,
        options={"agent_type": agent_type, "message_type": message_type},
    )
    is_ai = agent_type in AI_AGENT_TYPES
    try:
        result = registry.send(outbound, settings=channel_settings_for(company=queued.company_id, channel=queued.channel))
    except ChannelError as error:
        now = timezone.now()
        changes: dict[str, Any] = {"error": str(error)[:5000], "updated_at": now}
        if error.permanent:
            changes.update(status=Message.Status.FAILED, failed_at=now)
        Message.objects.filter(pk=queued.id).update(**changes)
        if is_ai:
            _count(
                "ai_messages_sent_total", agent_type=agent_type, channel=queued.channel, message_type=message_type,
                status="failed" if error.permanent else "retry",
            )
            if error.permanent:
                _count("ai_messages_failed_total", agent_type=agent_type, channel=queued.channel, reason="send_rejected")
        _recipient_update(job=job, run_id=recipient_run_id, status=CampaignRecipient.Status.FAILED, error=str(error))
        raise
    status = result.status if result.status in (Message.Status.QUEUED, Message.Status.SENT) else Message.Status.SENT
    record = _sent_record_cte if connection.vendor == "postgresql" else _sent_record_portable
    is_completed, run_statuses = record(
        job=job, queued=queued, status=status, provider_message_id=result.provider_message_id or "",
        raw=result.raw or {}, agent_type=agent_type, message_type=message_type, recipient_run_id=recipient_run_id,
        now=timezone.now(),
    )
    if is_completed:
        job.status, job.result = Job.Status.COMPLETED, {"message_id": queued.id, "status": status}
    if is_ai:
        _count(
            "ai_messages_sent_total", agent_type=agent_type, channel=queued.channel, message_type=message_type,
            status="sent",
        )
    return QueuedSendResult(message_id=queued.id, status=status, run_statuses=run_statuses)


def _sent_payload(*, queued: QueuedOutbound, agent_type: str, message_type: str, job: Job) -> dict[str, Any]:
    return {
        "message_id": queued.id, "channel": queued.channel, "agent_type": agent_type, "message_type": message_type,
        "lead_id": queued.lead_id, "job_id": job.pk,
    }


def _sent_record_cte(
    *, job: Job, queued: QueuedOutbound, status: str, provider_message_id: str, raw: dict, agent_type: str,
    message_type: str, recipient_run_id: int | None, now: datetime,
) -> tuple[bool, tuple[str, ...]]:
    """PostgreSQL: message, event, job completion and recipient in one statement; (job completed?, run statuses)."""
    quote = connection.ops.quote_name
    messages, events, jobs = (quote(model._meta.db_table) for model in (Message, Event, Job))
    sent_at = ", sent_at = %(now)s" if status == Message.Status.SENT else ""
    sql = (
        f"WITH message AS (UPDATE {messages} SET status = %(status)s, provider_message_id = %(provider_id)s,"
        f" provider_response = %(raw)s::jsonb, error = '', updated_at = %(now)s{sent_at} WHERE id = %(message)s"
        " RETURNING id),"
        f" event AS (INSERT INTO {events} (company_id, type, contact_id, target_type_id, target_id, payload, source,"
        " actor_id, correlation_id, occurred_at) SELECT %(company)s, 'message.sent', %(contact)s, %(message_type)s,"
        " message.id::text, %(payload)s::jsonb, 'engage', NULL, %(correlation)s::uuid, %(now)s FROM message),"
        f" completed AS (UPDATE {jobs} SET status = %(completed)s, result = %(result)s::jsonb, finished_at = %(now)s,"
        " updated_at = %(now)s, locked_at = NULL, locked_by = '' WHERE id = %(job)s AND status = %(processing)s"
        " AND locked_by = %(locked_by)s AND locked_at = %(locked_at)s RETURNING id)"
    )
    select = "SELECT (SELECT count(*) FROM completed)"
    if recipient_run_id is not None:
        recipients, runs = quote(CampaignRecipient._meta.db_table), quote(CampaignRun._meta.db_table)
        sql += (
            f", recipient AS (UPDATE {recipients} SET status = %(sent)s, error = '', updated_at = %(now)s"
            f" WHERE job_id = %(job)s AND status <> %(sent)s RETURNING (SELECT status FROM {runs} WHERE id = %(run)s)"
            " AS run_status)"
        )
        select += ", (SELECT array_agg(run_status) FROM recipient)"
    params = {
        "status": status, "provider_id": provider_message_id, "raw": json.dumps(raw, default=str), "now": now,
        "message": queued.id, "company": queued.company_id, "contact": queued.contact_id,
        "message_type": ContentType.objects.get_for_model(Message).pk,
        "payload": json.dumps(_sent_payload(queued=queued, agent_type=agent_type, message_type=message_type, job=job)),
        "correlation": queued.correlation_id, "completed": Job.Status.COMPLETED,
        "result": json.dumps({"message_id": queued.id, "status": status}), "job": job.pk,
        "processing": Job.Status.PROCESSING, "locked_by": job.locked_by, "locked_at": job.locked_at,
        "sent": CampaignRecipient.Status.SENT, "run": recipient_run_id,
    }
    with connection.cursor() as cursor:
        cursor.execute(f"{sql} {select}", params)
        row = cursor.fetchone()
    return bool(row[0]), tuple(row[1] or ()) if recipient_run_id is not None else ()


def _sent_record_portable(
    *, job: Job, queued: QueuedOutbound, status: str, provider_message_id: str, raw: dict, agent_type: str,
    message_type: str, recipient_run_id: int | None, now: datetime,
) -> tuple[bool, tuple[str, ...]]:
    """The same rows as `_sent_record_cte`, in one transaction (SQLite)."""
    changes: dict[str, Any] = {
        "status": status, "provider_message_id": provider_message_id, "provider_response": raw, "error": "",
        "updated_at": now,
    }
    if status == Message.Status.SENT:
        changes["sent_at"] = now
    with transaction.atomic():
        Message.objects.filter(pk=queued.id).update(**changes)
        Event.objects.create(
            company_id=queued.company_id, type="message.sent", contact_id=queued.contact_id,
            target_type=ContentType.objects.get_for_model(Message), target_id=str(queued.id),
            payload=_sent_payload(queued=queued, agent_type=agent_type, message_type=message_type, job=job),
            source="engage", correlation_id=queued.correlation_id, occurred_at=now,
        )
        is_completed = bool(Job.objects.filter(
            pk=job.pk, status=Job.Status.PROCESSING, locked_by=job.locked_by, locked_at=job.locked_at
        ).update(
            status=Job.Status.COMPLETED, result={"message_id": queued.id, "status": status}, finished_at=now,
            updated_at=now, locked_at=None, locked_by="",
        ))
        run_statuses = _recipient_update(
            job=job, run_id=recipient_run_id, status=CampaignRecipient.Status.SENT, error="", now=now
        )
    return is_completed, run_statuses


def _recipient_update(
    *, job: Job, run_id: int | None, status: str, error: str, now: datetime | None = None
) -> tuple[str, ...]:
    """Move the job's campaign recipient row (unless already sent); the statuses of its run, read in the same statement."""
    if run_id is None:
        return ()
    recipients = connection.ops.quote_name(CampaignRecipient._meta.db_table)
    runs = connection.ops.quote_name(CampaignRun._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {recipients} SET status = %s, error = %s, updated_at = %s"
            f" WHERE job_id = %s AND status <> %s RETURNING (SELECT status FROM {runs} WHERE id = %s)",
            [status, error[:5000], connection.ops.adapt_datetimefield_value(now or timezone.now()), job.pk,
             CampaignRecipient.Status.SENT, run_id],
        )
        return tuple(row[0] for row in cursor.fetchall())


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
            _count("ai_messages_delivered_total", agent_type=message.agent_type, channel=channel)
        elif status == Message.Status.FAILED:
            _count("ai_messages_failed_total", agent_type=message.agent_type, channel=channel, reason="undelivered")
    return message
