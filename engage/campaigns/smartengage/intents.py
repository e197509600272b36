"""Step 8: a batch's intents in one transaction, before any provider is called: the send slots reserved under
the caps, the recipient rows, the ledger jobs and the queued messages."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from crm.models import Channel, Company
from engage.ai.models import AISession
from engage.campaigns.models import CampaignRecipient, CampaignRun
from engage.campaigns.smartengage.outcomes import (
    AGENT_TYPE,
    EMAIL_SUBJECT,
    MESSAGE_TYPE,
    SCHEDULED,
    SEND_TASK,
    SENT,
    SKIPPED,
    Plan,
    Reason,
    RecipientRow,
    ReminderOutcome,
)
from engage.ledger.models import Job
from engage.ledger.registry import default_priority
from engage.ledger.services import (
    JOB_MAX_ATTEMPTS,
    job_dispatched_at,
    jobs_dispatch_on_commit,
    queued_job_row,
    sql_value,
)
from engage.messaging.models import Message
from engage.policy.consent import send_slots_reserve
from engage.policy.services import ROLE_CUSTOMER
from shokti.metrics import count


def _send_payload(*, plan: Plan, run_id: int | None, subject: str) -> dict[str, Any]:
    return {
        "customer_id": plan.customer.pk,
        "contact_id": plan.customer.contact_id,
        "channel": plan.channel,
        "subject": subject,
        "correlation_id": str(plan.correlation_id),
        "template_version_id": plan.version.pk if plan.version else None,
        "ai_session_id": plan.session.pk if plan.session else None,
        "run_id": run_id,
        # A later send (the send-time arm) asks consent again when it runs (smartengage_job_send).
        "send_at": plan.send_at.isoformat() if plan.send_at else None,
    }


def subject_for(plan: Plan) -> str:
    locale = plan.request.locale if plan.request else "bn"
    return EMAIL_SUBJECT.get(locale, EMAIL_SUBJECT["en"]) if plan.channel == Channel.EMAIL else ""


@dataclass
class QueuedReminder:
    index: int
    plan: Plan
    outcome: ReminderOutcome
    job_id: int
    message: Message


def intents_write(
    *, company: Company, to_send: list[tuple[int, Plan]], run: CampaignRun | None, bypass_frequency_caps: bool
) -> tuple[list[tuple[int, ReminderOutcome]], list[QueuedReminder]]:
    """Step 8, a batch in one transaction: reserve the slots, write the intents, jobs and queued messages.

    Statements per batch, not per person: lock the contacts and count their caps (2), the intents
    (INSERT ... ON CONFLICT DO NOTHING: the unique (campaign, cycle, customer) decides who is
    already reminded), the ledger jobs, the queued messages, and the links between them. Nothing
    reaches a provider before this commits.
    """
    skipped: list[tuple[int, ReminderOutcome]] = []
    skip_reasons: list[str] = []
    queued: list[QueuedReminder] = []
    with transaction.atomic():
        decisions = send_slots_reserve(
            contacts=[plan.customer.contact for _, plan in to_send], channel=to_send[0][1].channel,
            role=ROLE_CUSTOMER, bypass_caps=bypass_frequency_caps,
        )
        now = timezone.now()
        skipped_rows: list[tuple[Plan, str, str, str]] = []
        allowed: list[tuple[int, Plan]] = []

        def skip(index: int, plan: Plan, reason: str) -> None:
            skipped.append((index, ReminderOutcome(
                customer_id=plan.customer.pk, status=SKIPPED, reason=reason, correlation_id=str(plan.correlation_id),
                body=plan.text, template_version_id=plan.version.pk if plan.version else None,
            )))
            skip_reasons.append(reason)
            if run is not None:
                skipped_rows.append((plan, CampaignRecipient.Status.SKIPPED, reason, ""))

        for (index, plan), decision in zip(to_send, decisions, strict=True):
            if decision.allowed:
                allowed.append((index, plan))
            else:
                skip(index, plan, str(decision.reason))
        intent_ids: dict[int, int] = {}
        if run is not None and allowed:
            intent_ids = _recipient_intents_insert(run=run, plans=[plan for _, plan in allowed], now=now)
            for index, plan in allowed:
                if plan.customer.pk not in intent_ids:
                    skip(index, plan, Reason.ALREADY_REMINDED)
            allowed = [(index, plan) for index, plan in allowed if plan.customer.pk in intent_ids]
        if allowed:
            priority = default_priority(SEND_TASK)
            jobs = Job.objects.bulk_create([
                Job(**queued_job_row(
                    company_id=company.pk, task_name=SEND_TASK, priority=priority,
                    payload=_send_payload(plan=plan, run_id=run.pk if run else None, subject=subject_for(plan)),
                    idempotency_key=f"{SEND_TASK}:{plan.correlation_id}", max_attempts=JOB_MAX_ATTEMPTS,
                    next_run_at=plan.send_at or now,
                    dispatched_at=job_dispatched_at(next_run_at=plan.send_at, now=now) if plan.send_at else now,
                    now=now,
                ))
                for _, plan in allowed
            ])
            # The queued messages are the reservations the caps count; message_send(job=...) sends these rows.
            messages = Message.objects.bulk_create([
                Message(
                    company=company, contact=plan.customer.contact, direction=Message.Direction.OUTBOUND,
                    channel=plan.channel, agent_type=AGENT_TYPE, message_type=MESSAGE_TYPE, subject=subject_for(plan),
                    body=plan.text, status=Message.Status.QUEUED, correlation_id=plan.correlation_id, job=job,
                    template_version=plan.version, experiment_assignment_id=plan.assignment_id,
                )
                for (_, plan), job in zip(allowed, jobs, strict=True)
            ])
            if intent_ids:
                _rows_link(
                    table=CampaignRecipient._meta.db_table, columns=("message_id", "job_id"),
                    rows=[(intent_ids[plan.customer.pk], message.pk, job.pk)
                          for (_, plan), job, message in zip(allowed, jobs, messages, strict=True)],
                )
            sessions = [(plan.session.pk, message.pk) for (_, plan), message in zip(allowed, messages, strict=True)
                        if plan.session is not None and plan.session.pk is not None]
            if sessions:
                _rows_link(table=AISession._meta.db_table, columns=("message_id",), rows=sessions)
            jobs_dispatch_on_commit(jobs=jobs)
            for (index, plan), job, message in zip(allowed, jobs, messages, strict=True):
                queued.append(QueuedReminder(index=index, plan=plan, job_id=job.pk, message=message, outcome=ReminderOutcome(
                    customer_id=plan.customer.pk, status=SCHEDULED if plan.send_at else SENT, reason=plan.reason,
                    correlation_id=str(plan.correlation_id), body=plan.text,
                    template_version_id=plan.version.pk if plan.version else None,
                )))
        if skipped_rows:
            recipient_rows_insert(run=run, rows=skipped_rows, now=now)
    for reason in skip_reasons:
        count("campaign_recipients_skipped_total", reason=reason)
    for item in queued:
        if item.plan.reason:
            count("campaign_recipients_skipped_total", reason=item.plan.reason)
    return skipped, queued


def _rows_link(*, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """Set `columns` of each row (id, *values): on PostgreSQL one UPDATE ... FROM (VALUES ...) for the batch,
    elsewhere one UPDATE per row (executemany)."""
    quote = connection.ops.quote_name
    table = quote(table)
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            assignments = ", ".join(f"{quote(column)} = %s" for column in columns)
            cursor.executemany(
                f"UPDATE {table} SET {assignments} WHERE id = %s", [(*row[1:], row[0]) for row in rows]
            )
            return
        names = ", ".join(quote(column) for column in columns)
        assignments = ", ".join(f"{quote(column)} = v.{quote(column)}" for column in columns)
        values = ", ".join(["(" + ", ".join(["%s::bigint"] * (len(columns) + 1)) + ")"] * len(rows))
        cursor.execute(
            f"UPDATE {table} SET {assignments} FROM (VALUES {values}) AS v(id, {names}) WHERE {table}.id = v.id",
            [value for row in rows for value in row],
        )


_RECIPIENT_COLUMNS = (
    "company_id, campaign_id, run_id, customer_id, cycle_started_at, status, reason, body, message_id, job_id,"
    " template_version_id, correlation_id, error, created_at, updated_at"
)


def recipient_rows_insert(*, run: CampaignRun, rows: list[RecipientRow], now: Any) -> None:
    """Insert recipient rows (plan, status, reason, error) without model instances: COPY on PostgreSQL.

    A dry run writes one row per customer, so this is its biggest write. Measured per row of client
    CPU: a multi-row VALUES statement of a batch ~76 us (psycopg re-parses its thousands of
    placeholders every time: it caches only short statements), Django's bulk_create ~37 us,
    executemany of a short INSERT ~15 us (but one statement per row for the server), COPY ~11 us
    and one statement. Elsewhere: executemany.
    """
    table = connection.ops.quote_name(CampaignRecipient._meta.db_table)
    params = [_recipient_params(run=run, plan=plan, status=status, reason=reason, error=error, now=now)
              for plan, status, reason, error in rows]
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            cursor.executemany(
                f"INSERT INTO {table} ({_RECIPIENT_COLUMNS})"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, NULL, NULL, %s, %s, %s, %s, %s)",
                params,
            )
            return
        columns = _RECIPIENT_COLUMNS.replace(" message_id, job_id,", "")
        sql = f"COPY {table} ({columns}) FROM STDIN"
        # COPY goes past Django's cursor wrapper: log it as one query like the others (DEBUG, tests).
        logged = cursor.debug_sql(sql) if hasattr(cursor, "debug_sql") else contextlib.nullcontext()
        with logged, cursor.cursor.copy(sql) as copy:
            for row in params:
                copy.write_row(row)


def _recipient_params(*, run: CampaignRun, plan: Plan, status: str, reason: str, error: str, now: Any) -> list[Any]:
    return [
        run.company_id, run.campaign_id, run.pk, plan.customer.pk, sql_value(plan.cycle_started_at or run.created_at),
        status, reason, plan.text, plan.version.pk if plan.version else None, sql_value(plan.correlation_id), error,
        sql_value(now), sql_value(now),
    ]


def _recipient_intents_insert(*, run: CampaignRun, plans: list[Plan], now: Any) -> dict[int, int]:
    """Write the pending intent rows; {customer id: intent id} of those written (the others have one in this cycle).

    INSERT ... ON CONFLICT DO NOTHING: the unique (campaign, cycle, customer) decides, no savepoint.
    """
    table = connection.ops.quote_name(CampaignRecipient._meta.db_table)
    values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, NULL, NULL, %s, %s, %s, %s, %s)"] * len(plans))
    params: list[Any] = []
    for plan in plans:
        params += _recipient_params(
            run=run, plan=plan, status=CampaignRecipient.Status.PENDING, reason=plan.reason, error="", now=now
        )
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({_RECIPIENT_COLUMNS}) VALUES {values} ON CONFLICT DO NOTHING RETURNING customer_id, id",
            params,
        )
        return dict(cursor.fetchall())
