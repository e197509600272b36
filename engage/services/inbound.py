"""Capturing inbound messages: the `/inbound-message` webhook and channels' inbound webhooks share this."""

from __future__ import annotations

import hashlib
import json
import logging
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from crm.models import Channel, Company, Contact, Event, Lead, Pipeline, Stage
from crm.services import consent_revoke, phone_normalize, pipeline_get_or_create_default
from engage.models import Message
from engage.services.handoff import lead_flag_handoff_if_requested
from engage.services.jobs import job_enqueue, sql_value
from engage.services.messages import _count

logger = logging.getLogger(__name__)

DEFAULT_OPT_OUT_KEYWORDS = ("STOP", "STOP ALL", "UNSUBSCRIBE", "CANCEL", "বন্ধ")


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
    """Whether the message is an opt-out keyword on its own (STOP, UNSUBSCRIBE, বন্ধ ..., setting OPT_OUT_KEYWORDS)."""
    keywords = getattr(settings, "OPT_OUT_KEYWORDS", DEFAULT_OPT_OUT_KEYWORDS)
    return _normalize_words(text) in {_normalize_words(keyword) for keyword in keywords}


def inbound_dedupe_key(
    *, company_id: int, channel: str, phone: str, email: str, text: str, external_id: str, now: datetime
) -> str:
    """The sender's id when given; else a hash of the payload within a time bucket (a retried delivery)."""
    if external_id:
        return f"ext:{external_id}"[:200]
    window = int(getattr(settings, "INBOUND_DEDUPE_WINDOW_SECONDS", 600))
    bucket = int(now.timestamp()) // window
    digest = hashlib.sha256(f"{company_id}\x1f{channel}\x1f{phone}\x1f{email}\x1f{text}\x1f{bucket}".encode()).hexdigest()
    return f"hash:{digest}"


def _existing(*, company: Company, key: str) -> InboundResult | None:
    # Plain SQL: this probe is the whole database work of a duplicate delivery, and ORM
    # query compilation would cost more than the indexed lookup itself.
    table = connection.ops.quote_name(Message._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT lead_id, id, job_id, contact_id FROM {table}"
            " WHERE company_id = %s AND direction = %s AND external_id = %s LIMIT 1",
            [company.pk, Message.Direction.INBOUND, key],
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
    *, company: Company, contact_id: int, lead_id: int, channel: str, text: str, key: str, now: datetime,
    correlation_id: Any, raw: dict | None,
) -> int | None:
    """Insert the inbound message; None when the same delivery got there first (the unique key says so)."""
    table = connection.ops.quote_name(Message._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (company_id, contact_id, lead_id, direction, channel, agent_type, message_type,"
            " subject, body, status, provider_message_id, provider_response, error, correlation_id, external_id,"
            " created_at, updated_at)"
            " VALUES (%s, %s, %s, %s, %s, '', %s, '', %s, %s, '', %s, '', %s, %s, %s, %s)"
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
                key,
                now,
                now,
            ]],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def _open_lead(*, company: Company, contact_id: int, channel: str, source: str, now: datetime) -> tuple[int, bool]:
    with connection.cursor() as cursor:  # plain SQL on the hot path, like the probes above
        cursor.execute(
            f"SELECT id, channel FROM {connection.ops.quote_name(Lead._meta.db_table)}"
            " WHERE company_id = %s AND contact_id = %s AND status = %s ORDER BY id DESC LIMIT 1",
            [company.pk, contact_id, Lead.Status.OPEN],
        )
        row = cursor.fetchone()
    if row is not None:
        if row[1] != channel:
            # Replies go where the person wrote last.
            Lead.objects.filter(pk=row[0]).update(channel=channel, updated_at=now)
        return row[0], False
    stage = (
        Stage.objects.filter(pipeline__company=company, pipeline__is_default=True).order_by("order")
        .values_list("id", "pipeline_id").first()
    )
    if stage is None:
        pipeline: Pipeline = pipeline_get_or_create_default(company=company)
        stage = (pipeline.stages.order_by("order").values_list("id", flat=True).first(), pipeline.pk)
    lead = Lead.objects.create(
        company=company, contact_id=contact_id, pipeline_id=stage[1], stage_id=stage[0], status=Lead.Status.OPEN,
        channel=channel, source=source[:100],
    )
    return lead.pk, True


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
) -> InboundResult:
    """Upsert contact and open lead, store the message, record events and enqueue the reply, in one transaction.

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
    key = inbound_dedupe_key(
        company_id=company.pk, channel=channel, phone=phone, email=email, text=text, external_id=external_id, now=now
    )
    existing = _existing(company=company, key=key)
    if existing is not None:
        return existing
    for attempt in range(2):
        try:
            return _capture(
                company=company, channel=channel, text=text, phone=phone, email=email, contact_name=contact_name,
                source=source, key=key, now=now, occurred_at=occurred_at or now, raw=raw,
            )
        except _Duplicate:
            break
        except IntegrityError:
            # A concurrent first delivery of the same person won a race on another unique key: try again once.
            if attempt:
                raise
    existing = _existing(company=company, key=key)
    if existing is None:  # pragma: no cover - the conflicting row was rolled back meanwhile
        raise IntegrityError("inbound message conflict without a stored duplicate")
    return existing


@transaction.atomic
def _capture(
    *, company: Company, channel: str, text: str, phone: str, email: str, contact_name: str, source: str, key: str,
    now: datetime, occurred_at: datetime, raw: dict[str, Any] | None,
) -> InboundResult:
    contact_id = _contact_upsert(company=company, phone=phone, email=email, name=contact_name[:200], channel=channel, now=now)
    lead_id, is_new_lead = _open_lead(company=company, contact_id=contact_id, channel=channel, source=source, now=now)
    correlation_id = uuid.uuid4()
    message_id = _message_insert(
        company=company, contact_id=contact_id, lead_id=lead_id, channel=channel, text=text, key=key, now=now,
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
                target_id=str(lead_id), payload={"lead_id": lead_id, "channel": channel, "source": source},
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
    Event.objects.bulk_create(events)

    is_opt_out = inbound_is_opt_out(text=text)
    payload = {"lead_id": lead_id, "message_id": message_id, "contact_id": contact_id}
    if is_opt_out:
        contact = Contact(pk=contact_id, company=company)
        if consent_revoke(contact=contact, channel=channel, reason="keyword", source=channel, text=text):
            _count("opt_outs_total", channel=channel, reason="keyword")
        job = job_enqueue(
            company=company, task_name="opt_out_confirmation", payload={**payload, "channel": channel},
            idempotency_key=f"opt_out_confirmation:{message_id}",
        )
    else:
        # Asking for a human pauses the AI for this lead (the queued ai_engage then skips).
        lead_flag_handoff_if_requested(company=company, lead_id=lead_id, text=text)
        job = job_enqueue(
            company=company, task_name="ai_engage", payload=payload, idempotency_key=f"ai_engage:inbound:{message_id}"
        )
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {connection.ops.quote_name(Message._meta.db_table)} SET job_id = %s WHERE id = %s",
            [job.pk, message_id],
        )
    return InboundResult(
        lead_id=lead_id, message_id=message_id, job_id=job.pk, contact_id=contact_id, is_opt_out=is_opt_out
    )
