"""Capturing inbound messages: the `/inbound-message` webhook and channels' inbound webhooks share this."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from crm.models import Channel, Company, Contact, Event, Lead, Pipeline, Stage
from crm.services import (
    consent_restore,
    consent_revoke,
    events_record,
    phone_normalize,
    pipeline_get_or_create_default,
)
from engage.ai.lexicons import lexicon
from engage.conversations.handoff import lead_flag_handoff_if_requested
from engage.ledger.models import Job
from engage.ledger.registry import default_priority
from engage.ledger.services import (
    JOB_MAX_ATTEMPTS,
    Sql,
    job_enqueue,
    job_insert_sql,
    jobs_dispatch_on_commit,
    queued_job_row,
    sql_value,
)
from engage.messaging.models import Message
from engage.webhooks import WEBHOOK_EVENT_TYPES, WEBHOOK_KEY_PREFIX, WEBHOOK_TASK, webhook_time
from shokti.metrics import count

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class InboundResult:
    lead_id: int
    message_id: int
    job_id: int | None
    contact_id: int
    is_duplicate: bool = False
    is_opt_out: bool = False


class _Duplicate(Exception):
    pass


def inbound_text_max_length() -> int:
    return int(getattr(settings, "INBOUND_MAX_TEXT_LENGTH", 4096))


def _normalize_words(text: str) -> str:
    text = unicodedata.normalize("NFC", text).strip().casefold()
    text = "".join(char for char in text if not unicodedata.category(char).startswith("P"))
    return " ".join(text.split())


def inbound_is_opt_out(*, text: str) -> bool:
    """Whether the message opts out: an opt-out keyword on its own (STOP, UNSUBSCRIBE, বন্ধ ..., setting
    OPT_OUT_KEYWORDS), or a sentence asking for no more messages ("please stop messaging me", "আর মেসেজ দিবেন
    না": engage/ai/lexicons/opt_out_requests.txt). "STOP" inside another sentence is not one."""
    if _normalize_words(text) in _normalized_keywords(tuple(settings.OPT_OUT_KEYWORDS)):
        return True
    return bool(lexicon("opt_out_requests").find(text))


def inbound_is_opt_in_keyword(*, text: str) -> bool:
    """Whether the message is an opt-in keyword on its own (START, UNSTOP ..., setting OPT_IN_KEYWORDS)."""
    return _normalize_words(text) in _normalized_keywords(tuple(settings.OPT_IN_KEYWORDS))


@functools.lru_cache(maxsize=8)
def _normalized_keywords(keywords: tuple[str, ...]) -> frozenset[str]:
    return frozenset(_normalize_words(keyword) for keyword in keywords)


def inbound_dedupe_window() -> timedelta:
    return timedelta(seconds=int(getattr(settings, "INBOUND_DEDUPE_WINDOW_SECONDS", 600)))


def inbound_dedupe_key(
    *, company_id: int, channel: str, phone: str, email: str, text: str, external_id: str, now: datetime
) -> str:
    """The sender's id when given; else a hash of the payload within a time bucket (a retried delivery)."""
    if external_id:
        return f"ext:{external_id}"[:200]
    window = int(inbound_dedupe_window().total_seconds())
    bucket = int(now.timestamp()) // window
    digest = hashlib.sha256(f"{company_id}\x1f{channel}\x1f{phone}\x1f{email}\x1f{text}\x1f{bucket}".encode()).hexdigest()
    return f"hash:{digest}"


@dataclass(frozen=True)
class _DedupeKeys:
    """The message's own key, and the key a delivery less than a window old may have stored it under.

    Payload-hash keys change at each window boundary: a retry one second after a boundary carries
    the next window's key, so the previous window's key (when that message is younger than the
    window) counts as the same delivery. With an external id `previous` is empty (never stored).
    """

    key: str
    previous: str
    since: datetime


def _dedupe_keys(*, company_id: int, channel: str, phone: str, email: str, text: str, external_id: str,
                 now: datetime) -> _DedupeKeys:
    fields = {"company_id": company_id, "channel": channel, "phone": phone, "email": email, "text": text,
              "external_id": external_id}
    window = inbound_dedupe_window()
    key = inbound_dedupe_key(**fields, now=now)
    previous = "" if external_id else inbound_dedupe_key(**fields, now=now - window)
    return _DedupeKeys(key=key, previous=previous, since=now - window)


@functools.lru_cache(maxsize=1)
def _probe_sql() -> str:
    """The duplicate probe: two single-key lookups, each an index probe (an OR of the two keys made
    PostgreSQL walk the company's whole index), this window's key first. Parameters: company, key,
    company, previous window's key, since."""
    table = connection.ops.quote_name(Message._meta.db_table)
    columns = "lead_id, id, job_id, contact_id"
    this_window = _INBOUND_KEY_SQL.format(alias=table, company="%s", key="%s")
    previous_window = _PREVIOUS_WINDOW_SQL.format(alias=table, company="%s", key="%s", since="%s")
    if connection.vendor != "postgresql":
        # SQLite allows no parenthesised member of a compound SELECT (a syntax error, so every
        # provider inbound answered 503 on the embedded default): each probe is a subquery there.
        return (
            f"SELECT * FROM (SELECT {columns} FROM {table} WHERE {this_window} LIMIT 1)"
            f" UNION ALL SELECT * FROM (SELECT {columns} FROM {table} WHERE {previous_window} LIMIT 1) LIMIT 1"
        )
    return (
        f"(SELECT {columns} FROM {table} WHERE {this_window} LIMIT 1)"
        f" UNION ALL (SELECT {columns} FROM {table} WHERE {previous_window} LIMIT 1) LIMIT 1"
    )


def _existing(*, company: Company, dedupe: _DedupeKeys) -> InboundResult | None:
    # Plain SQL: this probe is the whole database work of a duplicate delivery, and ORM
    # query compilation would cost more than the indexed lookup itself. The partial unique
    # index's predicate is written out literally, so a prepared (generic) plan can use it too.
    with connection.cursor() as cursor:
        cursor.execute(
            _probe_sql(), [company.pk, dedupe.key, company.pk, dedupe.previous, dedupe.since],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    return InboundResult(lead_id=row[0], message_id=row[1], job_id=row[2], contact_id=row[3], is_duplicate=True)


def _contact_upsert(*, company: Company, phone: str, email: str, name: str, channel: str, now: datetime) -> int:
    """The contact's id, matched by phone then email, created if new; its row stays locked until commit.

    The lock serialises concurrent deliveries from one person, so their lead is found, not created twice.
    Writing to us opts the person in on that channel, unless they opted out before (consent_updated_at set).
    """
    consent_field = Contact.CONSENT_FIELD_BY_CHANNEL[channel]
    quote = connection.ops.quote_name
    table = quote(Contact._meta.db_table)
    if email and phone:
        by_phone = Contact.objects.select_for_update().filter(company=company, phone=phone).values_list("id", flat=True)
        if not by_phone.exists():
            by_email = (
                Contact.objects.select_for_update()
                .filter(company=company, email=email)
                .order_by("id")
                .values_list("id", "phone")
                .first()
            )
            if by_email is not None:
                contact_id, existing_phone = by_email
                if not existing_phone:
                    Contact.objects.filter(pk=contact_id).update(phone=phone, updated_at=now)
                return contact_id
    if not phone:
        contact_id = (
            Contact.objects.select_for_update().filter(company=company, email=email).order_by("id")
            .values_list("id", flat=True).first()
        )
        if contact_id is not None:
            return contact_id
        contact = Contact.objects.create(
            company=company, email=email, name=name, consent_updated_at=None, **{consent_field: True}
        )
        return contact.pk
    consent = quote(consent_field)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (company_id, name, phone, email, locale, timezone, is_email_consented,"
            " is_sms_consented, is_whatsapp_consented, created_at, updated_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (company_id, phone) WHERE NOT (phone = '') DO UPDATE SET"
            f" name = CASE WHEN {table}.name = '' THEN EXCLUDED.name ELSE {table}.name END,"
            f" email = CASE WHEN {table}.email = '' THEN EXCLUDED.email ELSE {table}.email END,"
            f" {consent} = CASE WHEN {table}.consent_updated_at IS NULL THEN TRUE ELSE {table}.{consent} END,"
            " updated_at = EXCLUDED.updated_at"
            " RETURNING id",
            [sql_value(value) for value in [
                company.pk,
                name,
                phone,
                email,
                "bn",
                company.timezone or "Asia/Dhaka",
                consent_field == "is_email_consented",
                consent_field == "is_sms_consented",
                consent_field == "is_whatsapp_consented",
                now,
                now,
            ]],
        )
        return cursor.fetchone()[0]


def _message_insert(
    *, company: Company, contact_id: int, lead_id: int, channel: str, text: str, dedupe: _DedupeKeys, now: datetime,
    correlation_id: Any, raw: dict | None,
) -> int | None:
    """Insert the inbound message; None when the same delivery got there first (its dedupe keys say so)."""
    table = connection.ops.quote_name(Message._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (company_id, contact_id, lead_id, direction, channel, agent_type, message_type,"
            " subject, body, status, provider_message_id, provider_response, error, correlation_id, external_id,"
            " created_at, updated_at)"
            " SELECT %s, %s, %s, %s, %s, '', %s, '', %s, %s, '', %s, '', %s, %s, %s, %s"
            f" WHERE NOT EXISTS (SELECT 1 FROM {table} previous WHERE"
            f" {_PREVIOUS_WINDOW_SQL.format(alias='previous', company='%s', key='%s', since='%s')})"
            " ON CONFLICT DO NOTHING RETURNING id",
            [sql_value(value) for value in [
                company.pk,
                contact_id,
                lead_id,
                Message.Direction.INBOUND,
                channel,
                "inbound",
                text,
                Message.Status.RECEIVED,
                json.dumps(raw or {}, default=str),
                correlation_id,
                dedupe.key,
                now,
                now,
                company.pk,
                dedupe.previous,
                dedupe.since,
            ]],
        )
        row = cursor.fetchone()
    return row[0] if row else None


# An inbound message of the company under a dedupe key. The partial unique index's predicate is
# spelled out, so even a prepared statement's generic plan looks the key up in that index.
_INBOUND_KEY_SQL = (
    "{alias}.company_id = {company}"
    f" AND {{alias}}.direction = '{Message.Direction.INBOUND}' AND {{alias}}.external_id <> ''"
    " AND {alias}.external_id = {key}"
)
# ... stored under the previous window's key less than a window ago (see _DedupeKeys).
_PREVIOUS_WINDOW_SQL = _INBOUND_KEY_SQL + " AND {alias}.created_at > {since}"


AI_ENGAGE = "ai_engage"


def _is_folded() -> bool:
    """Whether the message, its job and its events go in one statement (PostgreSQL's data-modifying CTEs)."""
    return connection.vendor == "postgresql"


@functools.lru_cache(maxsize=2)
def _lead_message_job_events_sql(has_webhook: bool) -> str:
    """The statement of `_lead_message_job_events_insert`, built once per shape (a company with a webhook URL adds
    one `webhook_reminder` job per event, as `webhook_events_enqueue` writes it).

    The contact's open lead (moved to this channel: replies go where the person wrote last) or a new one in
    the first stage of the company's default pipeline, then the message, its `ai_engage` job and its events.
    The contact's row is locked by this transaction's upsert, so no concurrent delivery of the same person
    can create a lead between the lookup and the insert.
    """
    quote = connection.ops.quote_name
    message_table, job_table, event_table, lead_table, stage_table, pipeline_table = (
        quote(model._meta.db_table) for model in (Message, Job, Event, Lead, Stage, Pipeline)
    )
    event_columns = "company_id, type, contact_id, target_type_id, target_id, payload, source, correlation_id, occurred_at"
    now = Sql("%(now)s::timestamptz")
    # The ai_engage job, as job_enqueue writes it (its id drawn with the message's, its key carrying the message's).
    job_columns, job_values, _ = job_insert_sql(queued_job_row(
        company_id=Sql("%(company)s::bigint"), task_name=Sql("%(task)s::text"), priority=Sql("%(priority)s::integer"),
        payload=Sql(
            "jsonb_build_object('lead_id', message.lead_id, 'message_id', message.id, 'contact_id', %(contact)s::bigint)"
        ),
        idempotency_key=Sql("%(task)s::text || ':inbound:' || message.id"), max_attempts=Sql("%(max_attempts)s::integer"),
        next_run_at=now, dispatched_at=now, now=now,
    ))
    returning = " RETURNING id, type, payload" if has_webhook else ""
    open_status = Lead.Status.OPEN.value
    sql = (
        f"WITH found AS (SELECT id, channel FROM {lead_table} WHERE company_id = %(company)s::bigint"
        f" AND contact_id = %(contact)s::bigint AND status = '{open_status}' ORDER BY id DESC LIMIT 1),"
        f" moved AS (UPDATE {lead_table} SET channel = %(channel)s::text, updated_at = %(now)s::timestamptz"
        " WHERE id IN (SELECT id FROM found WHERE channel <> %(channel)s::text)),"
        f" created AS (INSERT INTO {lead_table} (company_id, contact_id, pipeline_id, stage_id, status, channel,"
        " source, summary, score, is_ai_paused, created_at, updated_at)"
        f" SELECT %(company)s::bigint, %(contact)s::bigint, stage.pipeline_id, stage.id, '{open_status}',"
        " %(channel)s::text, %(source)s::text, '', 0, false, %(now)s::timestamptz, %(now)s::timestamptz"
        f" FROM {stage_table} stage JOIN {pipeline_table} pipeline ON pipeline.id = stage.pipeline_id"
        " WHERE pipeline.company_id = %(company)s::bigint AND pipeline.is_default AND NOT EXISTS (SELECT 1 FROM found)"
        f" ORDER BY stage.{quote('order')}, stage.id LIMIT 1 RETURNING id),"
        " lead AS (SELECT id FROM found UNION ALL SELECT id FROM created),"
        f" ids AS (SELECT nextval(pg_get_serial_sequence('{Message._meta.db_table}', 'id')) AS message_id,"
        f" nextval(pg_get_serial_sequence('{Job._meta.db_table}', 'id')) AS job_id),"
        f" message AS (INSERT INTO {message_table} (id, company_id, contact_id, lead_id, direction, channel, agent_type,"
        " message_type, subject, body, status, provider_message_id, provider_response, error, correlation_id,"
        " external_id, job_id, created_at, updated_at)"
        f" SELECT ids.message_id, %(company)s::bigint, %(contact)s::bigint, lead.id, '{Message.Direction.INBOUND.value}', %(channel)s::text, '', 'inbound', '',"
        f" %(text)s::text, '{Message.Status.RECEIVED.value}', '', %(raw)s::jsonb, '', %(correlation)s::uuid, %(key)s::text, ids.job_id, %(now)s::timestamptz, %(now)s::timestamptz"
        f" FROM ids, lead WHERE NOT EXISTS (SELECT 1 FROM {message_table} previous WHERE"
        f" {_PREVIOUS_WINDOW_SQL.format(alias='previous', company='%(company)s::bigint', key='%(previous_key)s::text', since='%(since)s::timestamptz')})"
        " ON CONFLICT DO NOTHING RETURNING id, job_id, lead_id),"
        f" job AS (INSERT INTO {job_table} (id, {job_columns}) SELECT message.job_id, {job_values} FROM message RETURNING id),"
        # A new lead's event before the message's, as the portable path records them.
        f" lead_created AS (INSERT INTO {event_table} ({event_columns})"
        " SELECT %(company)s::bigint, 'lead.created', %(contact)s::bigint, %(lead_type)s::integer, created.id::text,"
        " jsonb_build_object('lead_id', created.id) || %(lead_payload)s::jsonb,"
        f" %(channel)s::text, %(correlation)s::uuid, %(occurred)s::timestamptz FROM message, created{returning or ' RETURNING id'}),"
        f" received AS (INSERT INTO {event_table} ({event_columns})"
        " SELECT %(company)s::bigint, 'message.received', %(contact)s::bigint, %(message_type)s::integer, message.id::text,"
        " jsonb_build_object('message_id', message.id, 'lead_id', message.lead_id, 'channel', %(channel)s::text),"
        # Reading lead_created makes PostgreSQL run it first: the new lead's event keeps the lower id.
        f" %(channel)s::text, %(correlation)s::uuid, %(occurred)s::timestamptz"
        f" FROM message, (SELECT count(*) FROM lead_created) after_lead_created{returning})"
    )
    # Always one row: the lead (NULL when the company has no default pipeline yet), the message and the job
    # (NULL when the same delivery got there first).
    result = " SELECT (SELECT id FROM lead), (SELECT id FROM message), (SELECT id FROM job)"
    delivered = " UNION ALL ".join(
        f"SELECT id, type, payload FROM {name}" for name, event_type in
        (("lead_created", "lead.created"), ("received", "message.received"))
        if event_type in WEBHOOK_EVENT_TYPES
    )
    if not (has_webhook and delivered):
        return sql + result
    # One webhook_reminder job per delivered event, as webhook_events_enqueue writes it: the delivery's
    # data is webhook_event_data(): the event's payload, its id, contact and time.
    webhook_columns, webhook_values, _ = job_insert_sql(queued_job_row(
        company_id=Sql("%(company)s::bigint"), task_name=WEBHOOK_TASK, priority=Sql("%(webhook_priority)s::integer"),
        payload=Sql(
            "jsonb_build_object('event', event.type, 'data', event.payload || jsonb_build_object('event_id', event.id,"
            " 'contact_id', %(contact)s::bigint, 'occurred_at', %(occurred_iso)s::text))"
        ),
        idempotency_key=Sql(f"'{WEBHOOK_KEY_PREFIX}' || event.id"), max_attempts=Sql("%(max_attempts)s::integer"),
        next_run_at=now, dispatched_at=now, now=now,
    ))
    sql += (
        f", webhook AS (INSERT INTO {job_table} ({webhook_columns}) SELECT {webhook_values}"
        f" FROM ({delivered}) event ORDER BY event.id RETURNING id)"
    )
    return sql + result + ", ARRAY(SELECT id FROM webhook ORDER BY id)"


@dataclass(frozen=True)
class _Inserted:
    lead_id: int | None  # None: the company has no default pipeline yet
    message_id: int | None  # None: the same delivery got there first
    job_id: int | None
    webhook_job_ids: list[int]


def _lead_message_job_events_insert(
    *, company: Company, contact_id: int, channel: str, text: str, dedupe: _DedupeKeys, source: str, now: datetime,
    occurred_at: datetime, correlation_id: uuid.UUID, raw: dict | None, lead_details: dict[str, Any] | None = None,
) -> _Inserted:
    """Find or open the contact's lead, insert the inbound message, its `ai_engage` job, its events (and their
    webhook jobs when the company has a webhook URL) in one round trip.

    Both ids are drawn from their sequences first, so the message is inserted with its job id
    (no UPDATE afterwards) and the job's key and payload carry the message id, as `job_enqueue` writes them.
    """
    lead_type = ContentType.objects.get_for_model(Lead)
    message_type = ContentType.objects.get_for_model(Message)
    has_webhook = bool(company.webhook_url)
    params = {
        "company": company.pk, "contact": contact_id, "channel": channel, "text": text, "source": source[:100],
        "raw": json.dumps(raw or {}, default=str), "correlation": correlation_id, "key": dedupe.key,
        "previous_key": dedupe.previous, "since": dedupe.since, "now": now,
        "task": AI_ENGAGE, "priority": default_priority(AI_ENGAGE),
        "max_attempts": JOB_MAX_ATTEMPTS, "message_type": message_type.pk, "lead_type": lead_type.pk,
        "lead_payload": json.dumps({"channel": channel, "source": source, **(lead_details or {})}),
        "occurred": occurred_at,
    }
    if has_webhook:
        params.update(webhook_priority=default_priority(WEBHOOK_TASK), occurred_iso=webhook_time(occurred_at))
    with connection.cursor() as cursor:
        cursor.execute(_lead_message_job_events_sql(has_webhook), params)
        row = cursor.fetchone()
    return _Inserted(
        lead_id=row[0], message_id=row[1], job_id=row[2], webhook_job_ids=(row[3] or []) if has_webhook else [],
    )


def _open_lead(*, company: Company, contact_id: int, channel: str, source: str, now: datetime) -> tuple[int, bool]:
    with connection.cursor() as cursor:  # plain SQL on the hot path, like the probes above
        cursor.execute(
            f"SELECT id, channel FROM {connection.ops.quote_name(Lead._meta.db_table)}"
            " WHERE company_id = %s AND contact_id = %s AND status = %s ORDER BY id DESC LIMIT 1",
            [company.pk, contact_id, Lead.Status.OPEN.value],
        )
        row = cursor.fetchone()
    if row is not None:
        if row[1] != channel:
            # Replies go where the person wrote last.
            Lead.objects.filter(pk=row[0]).update(channel=channel, updated_at=now)
        return row[0], False
    lead_id = _lead_insert(company=company, contact_id=contact_id, channel=channel, source=source, now=now)
    if lead_id is None:  # the company's first lead: no default pipeline yet
        pipeline_get_or_create_default(company=company)
        lead_id = _lead_insert(company=company, contact_id=contact_id, channel=channel, source=source, now=now)
    if lead_id is None:  # pragma: no cover - a default pipeline always has stages
        raise ValidationError({"pipeline": "The default pipeline has no stages."})
    return lead_id, True


def _lead_insert(*, company: Company, contact_id: int, channel: str, source: str, now: datetime) -> int | None:
    """A new open lead in the first stage of the company's default pipeline; None when there is no such pipeline."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        # The stage lookup and the insert in one statement: one round trip, and no stale stage id.
        cursor.execute(
            f"INSERT INTO {quote(Lead._meta.db_table)} (company_id, contact_id, pipeline_id, stage_id, status, channel,"
            " source, summary, score, is_ai_paused, created_at, updated_at)"
            " SELECT %s, %s, stage.pipeline_id, stage.id, %s, %s, %s, '', 0, %s, %s, %s"
            f" FROM {quote(Stage._meta.db_table)} stage JOIN {quote(Pipeline._meta.db_table)} pipeline"
            " ON pipeline.id = stage.pipeline_id"
            f" WHERE pipeline.company_id = %s AND pipeline.is_default ORDER BY stage.{quote('order')}, stage.id LIMIT 1"
            " RETURNING id",
            [sql_value(value) for value in [
                company.pk, contact_id, Lead.Status.OPEN.value, channel, source[:100], False, now, now, company.pk,
            ]],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def inbound_message_capture(
    *,
    company: Company,
    channel: str,
    text: str,
    phone: str = "",
    email: str = "",
    contact_name: str = "",
    source: str = "",
    external_id: str = "",
    occurred_at: datetime | None = None,
    raw: dict[str, Any] | None = None,
    lead_details: dict[str, Any] | None = None,
) -> InboundResult:
    """Upsert contact and open lead, store the message, record events and enqueue the reply, in one transaction.

    `lead_details` join a new lead's `lead.created` payload (a click-to-WhatsApp ad's referral).

    The same delivery twice (same `external_id`, or the same payload within the dedupe window)
    creates nothing and returns the first ids. An opt-out keyword revokes the channel's consent
    and queues one confirmation instead of an AI reply.
    """
    if channel not in Channel.values:
        raise ValidationError({"channel": f"Unknown channel {channel!r}."})
    # PostgreSQL text cannot hold NUL; providers have been seen to send it.
    text = (text or "").replace("\x00", "").strip()
    contact_name = (contact_name or "").replace("\x00", "").strip()
    if not text:
        raise ValidationError({"message_text": "The message is empty."})
    if len(text) > inbound_text_max_length():
        raise ValidationError({"message_text": f"At most {inbound_text_max_length()} characters."})
    email = (email or "").strip().lower()
    phone = phone_normalize(phone=phone, region=company.default_region) if phone else ""
    if not phone and not email:
        raise ValidationError({"phone_number": "A phone number (or an email address) is required."})
    now = timezone.now()
    dedupe = _dedupe_keys(
        company_id=company.pk, channel=channel, phone=phone, email=email, text=text, external_id=external_id, now=now
    )
    if external_id:
        # A sender's retry stops here, before any write. Without an external id the payload-hash
        # key is rarely repeated: the message's INSERT finds a repeat inside the transaction (this
        # window's key by its unique constraint, the previous window's by NOT EXISTS).
        existing = _existing(company=company, dedupe=dedupe)
        if existing is not None:
            return existing
    for attempt in range(2):
        try:
            return _capture(
                company=company, channel=channel, text=text, phone=phone, email=email, contact_name=contact_name,
                source=source, dedupe=dedupe, now=now, occurred_at=occurred_at or now, raw=raw,
                lead_details=lead_details,
            )
        except _Duplicate:
            break
        except IntegrityError:
            # A concurrent first delivery of the same person won a race on another unique key: try again once.
            if attempt:
                raise
    existing = _existing(company=company, dedupe=dedupe)
    if existing is None:  # pragma: no cover - the conflicting row was rolled back meanwhile
        raise IntegrityError("inbound message conflict without a stored duplicate")
    return existing


@transaction.atomic
def _capture(
    *, company: Company, channel: str, text: str, phone: str, email: str, contact_name: str, source: str,
    dedupe: _DedupeKeys,
    now: datetime, occurred_at: datetime, raw: dict[str, Any] | None, lead_details: dict[str, Any] | None = None,
) -> InboundResult:
    contact_id = _contact_upsert(company=company, phone=phone, email=email, name=contact_name[:200], channel=channel, now=now)
    correlation_id = uuid.uuid4()
    is_opt_out = inbound_is_opt_out(text=text)
    is_opt_in_keyword = not is_opt_out and inbound_is_opt_in_keyword(text=text)
    if not is_opt_out and not is_opt_in_keyword and _is_folded():
        # The common case on PostgreSQL: lead, message, job and events in one statement.
        def insert() -> _Inserted:
            return _lead_message_job_events_insert(
                company=company, contact_id=contact_id, channel=channel, text=text, dedupe=dedupe, source=source,
                now=now, occurred_at=occurred_at, correlation_id=correlation_id, raw=raw, lead_details=lead_details,
            )

        inserted = insert()
        if inserted.lead_id is None:  # the company's first lead: no default pipeline yet
            pipeline_get_or_create_default(company=company)
            inserted = insert()
        if inserted.lead_id is None:  # pragma: no cover - a default pipeline always has stages
            raise ValidationError({"pipeline": "The default pipeline has no stages."})
        if inserted.message_id is None:
            raise _Duplicate()  # rolls back whatever this delivery wrote
        # Asking for a human pauses the AI for this lead (the queued ai_engage then skips).
        lead_flag_handoff_if_requested(company=company, lead_id=inserted.lead_id, text=text)
        jobs_dispatch_on_commit(jobs=[
            Job(pk=inserted.job_id, task_name=AI_ENGAGE, priority=default_priority(AI_ENGAGE), next_run_at=now),
            *(Job(pk=job_id, task_name=WEBHOOK_TASK, priority=default_priority(WEBHOOK_TASK), next_run_at=now)
              for job_id in inserted.webhook_job_ids),
        ])
        return InboundResult(
            lead_id=inserted.lead_id, message_id=inserted.message_id, job_id=inserted.job_id, contact_id=contact_id
        )

    lead_id, is_new_lead = _open_lead(company=company, contact_id=contact_id, channel=channel, source=source, now=now)
    message_id = _message_insert(
        company=company, contact_id=contact_id, lead_id=lead_id, channel=channel, text=text, dedupe=dedupe, now=now,
        correlation_id=correlation_id, raw=raw,
    )
    if message_id is None:
        raise _Duplicate()  # rolls back whatever this delivery wrote

    lead_type = ContentType.objects.get_for_model(Lead)
    message_type = ContentType.objects.get_for_model(Message)
    events = []
    if is_new_lead:
        events.append(
            Event(
                company=company, type="lead.created", contact_id=contact_id, target_type=lead_type,
                target_id=str(lead_id),
                payload={"lead_id": lead_id, "channel": channel, "source": source, **(lead_details or {})},
                source=channel, correlation_id=correlation_id, occurred_at=occurred_at,
            )
        )
    events.append(
        Event(
            company=company, type="message.received", contact_id=contact_id, target_type=message_type,
            target_id=str(message_id), payload={"message_id": message_id, "lead_id": lead_id, "channel": channel},
            source=channel, correlation_id=correlation_id, occurred_at=occurred_at,
        )
    )
    events_record(events=events)  # and their webhook jobs, when the company has a URL

    payload = {"lead_id": lead_id, "message_id": message_id, "contact_id": contact_id}
    # START from a person who opted out on this channel: consent again, and a confirmation instead of a reply.
    is_opt_in = is_opt_in_keyword and consent_restore(
        contact=Contact(pk=contact_id, company=company), channel=channel, source=channel, text=text
    )
    if is_opt_out:
        contact = Contact(pk=contact_id, company=company)
        if consent_revoke(contact=contact, channel=channel, reason="keyword", source=channel, text=text):
            count("opt_outs_total", channel=channel, reason="keyword")
        job = job_enqueue(
            company=company, task_name="opt_out_confirmation", payload={**payload, "channel": channel},
            idempotency_key=f"opt_out_confirmation:{message_id}",
        )
    elif is_opt_in:
        job = job_enqueue(
            company=company, task_name="opt_in_confirmation", payload={**payload, "channel": channel},
            idempotency_key=f"opt_in_confirmation:{message_id}",
        )
    else:
        # Asking for a human pauses the AI for this lead (the queued ai_engage then skips).
        lead_flag_handoff_if_requested(company=company, lead_id=lead_id, text=text)
        job = job_enqueue(
            company=company, task_name=AI_ENGAGE, payload=payload, idempotency_key=f"{AI_ENGAGE}:inbound:{message_id}"
        )
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {connection.ops.quote_name(Message._meta.db_table)} SET job_id = %s WHERE id = %s",
            [job.pk, message_id],
        )
    return InboundResult(
        lead_id=lead_id, message_id=message_id, job_id=job.pk, contact_id=contact_id, is_opt_out=is_opt_out,
    )
