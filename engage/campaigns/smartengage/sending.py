"""Steps 9-10: the `smartengage_send` job sends a reminder queued with it and records the provider's
acceptance, the event, the recipient row and the job's completion in one statement."""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.utils import timezone

from channels_app import registry
from channels_app.base import ChannelError, OutboundMessage
from crm.models import Contact, Event
from engage.campaigns.models import CampaignRecipient, CampaignRun
from engage.campaigns.runs import campaign_run_counts_refresh
from engage.campaigns.smartengage.intents import QueuedReminder
from engage.campaigns.smartengage.outcomes import AGENT_TYPE, FAILED, MESSAGE_TYPE, QUEUED, ReminderOutcome
from engage.ledger.models import Job
from engage.ledger.registry import JobPermanentError
from engage.ledger.services import job_execute
from engage.messaging.models import Message
from engage.messaging.services import AI_AGENT_TYPES, DONE_STATUSES, channel_options, channel_settings_for
from engage.policy.consent import can_send
from engage.policy.services import ROLE_CUSTOMER
from shokti.metrics import count

logger = logging.getLogger(__name__)


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
        options=channel_options(
            company=queued.company_id, channel=queued.channel, agent_type=agent_type, message_type=message_type,
            contact=queued.contact_id,
        ),
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
            count(
                "ai_messages_sent_total", agent_type=agent_type, channel=queued.channel, message_type=message_type,
                status="failed" if error.permanent else "retry",
            )
            if error.permanent:
                count("ai_messages_failed_total", agent_type=agent_type, channel=queued.channel, reason="send_rejected")
        _recipient_update(job=job, run_id=recipient_run_id, status=CampaignRecipient.Status.FAILED, error=str(error))
        raise
    status = result.status if result.status in (Message.Status.QUEUED, Message.Status.SENT) else Message.Status.SENT
    record = _sent_record_cte if connection.vendor == "postgresql" else _sent_record_portable
    is_completed, run_statuses = record(
        job=job, queued=queued, status=status, provider_message_id=result.provider_message_id or "",
        raw=result.raw or {}, agent_type=agent_type, message_type=message_type, recipient_run_id=recipient_run_id,
        now=timezone.now(), from_address=(result.from_address or "")[:64],
    )
    if is_completed:
        job.status, job.result = Job.Status.COMPLETED, {"message_id": queued.id, "status": status}
    if is_ai:
        count(
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
    message_type: str, recipient_run_id: int | None, now: datetime, from_address: str = "",
) -> tuple[bool, tuple[str, ...]]:
    """PostgreSQL: message, event, job completion and recipient in one statement; (job completed?, run statuses)."""
    quote = connection.ops.quote_name
    messages, events, jobs = (quote(model._meta.db_table) for model in (Message, Event, Job))
    sent_at = ", sent_at = %(now)s" if status == Message.Status.SENT else ""
    sql = (
        f"WITH message AS (UPDATE {messages} SET status = %(status)s, provider_message_id = %(provider_id)s,"
        f" provider_response = %(raw)s::jsonb, error = '', channel_number = %(from_address)s,"
        f" updated_at = %(now)s{sent_at} WHERE id = %(message)s"
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
        "from_address": from_address,
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
    message_type: str, recipient_run_id: int | None, now: datetime, from_address: str = "",
) -> tuple[bool, tuple[str, ...]]:
    """The same rows as `_sent_record_cte`, in one transaction (SQLite)."""
    changes: dict[str, Any] = {
        "status": status, "provider_message_id": provider_message_id, "provider_response": raw, "error": "",
        "updated_at": now, "channel_number": from_address,
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


def reminder_send_queued(*, item: QueuedReminder) -> ReminderOutcome:
    """Step 9: run the send job here (the copy Celery gets on commit finds it done; if this process
    dies first, Celery or the relay sends it: the message is unique per job either way)."""
    outcome = item.outcome
    ran = job_execute(job_id=item.job_id, worker=f"smartengage:{item.plan.correlation_id}")
    outcome.message_id = item.message.pk
    if ran == "skipped":
        # A worker claimed the job first: its send is this message's one send. Count what it did,
        # once it is done, not the queued state it was in.
        _wait_for_other_sender(job_id=item.job_id)
    if ran != "completed":
        # Failed (the ledger retries it), dead, or sent by the worker that took it: ask the message.
        item.message.refresh_from_db(fields=["status", "error"])
        if item.message.status == Message.Status.FAILED or (
            item.message.status == Message.Status.QUEUED and ran != "skipped"
        ):
            outcome.status = FAILED
            outcome.error = item.message.error or "The send did not complete; the job retries it."
        elif item.message.status == Message.Status.QUEUED:
            # Still with the other process after the wait: neither sent nor failed yet.
            outcome.status = QUEUED
            outcome.error = "Another process is sending it."
    return outcome


def _wait_for_other_sender(*, job_id: int) -> None:
    """Wait (SMARTENGAGE_SEND_WAIT_SECONDS at most) until no process holds the job any more."""
    deadline = time.monotonic() + float(settings.SMARTENGAGE_SEND_WAIT_SECONDS)
    pause = 0.05
    while Job.objects.filter(pk=job_id, status=Job.Status.PROCESSING).exists() and time.monotonic() < deadline:
        time.sleep(pause)
        pause = min(pause * 2, 0.5)


def smartengage_job_send(*, job: Job) -> dict[str, Any]:
    """The `smartengage_send` job: send the reminder queued with the job; its recipient row follows the result.

    The hot path of a campaign: the message and its contact in one read, then `message_send_queued`
    records the provider's acceptance, the event, the recipient row and the job's completion in one
    statement right after this one provider call.
    """

    queued = message_queued_for_job(job=job)
    if queued is None:
        raise JobPermanentError("No reminder was queued with this job.")
    run_id = job.payload.get("run_id")
    if job.payload.get("send_at") and queued.status == Message.Status.QUEUED:
        # Queued hours ago for the customer's best hour: consent is asked again now (the caps counted the
        # queued message when it was written).
        decision = can_send(
            contact=Contact.objects.select_related("company").get(pk=queued.contact_id), channel=queued.channel,
            role=ROLE_CUSTOMER, bypass_caps=True,
        )
        if not decision.allowed:
            return _scheduled_send_cancel(job=job, queued=queued, reason=str(decision.reason), run_id=run_id)
    try:
        sent = message_send_queued(
            job=job, queued=queued, agent_type=AGENT_TYPE, message_type=MESSAGE_TYPE, recipient_run_id=run_id
        )
    except ChannelError:
        if run_id and CampaignRun.objects.filter(pk=run_id, status__in=CampaignRun.FINISHED_STATUSES).exists():
            campaign_run_counts_refresh(run_id=run_id)
        raise
    # A run still going counts at its end; a finished one (a retry, a late job) is recounted now.
    if run_id and any(status in CampaignRun.FINISHED_STATUSES for status in sent.run_statuses):
        campaign_run_counts_refresh(run_id=run_id)
    return {"message_id": sent.message_id, "status": sent.status}


def _scheduled_send_cancel(*, job: Job, queued: QueuedOutbound, reason: str, run_id: int | None) -> dict[str, Any]:
    """A later send no longer allowed: the message fails unsent, its recipient row is a skip with the reason."""
    now = timezone.now()
    with transaction.atomic():
        Message.objects.filter(pk=queued.id).update(
            status=Message.Status.FAILED, failed_at=now, error=f"Not sent at its hour: {reason}.", updated_at=now
        )
        CampaignRecipient.objects.filter(job_id=job.pk).update(
            status=CampaignRecipient.Status.SKIPPED, reason=reason, updated_at=now
        )
    if run_id and CampaignRun.objects.filter(pk=run_id, status__in=CampaignRun.FINISHED_STATUSES).exists():
        campaign_run_counts_refresh(run_id=run_id)
    return {"message_id": queued.id, "status": "skipped", "reason": reason}
