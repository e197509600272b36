"""Consent and frequency caps: may we message this person now, and, atomically, reserve the send.

Caps (the company's `EngagementPolicy`, per role customer/worker) count the contact's outbound
proactive messages (SmartEngage, CoachNova) that did not fail, by their creation time, i.e. the
moment the intent to send was recorded: per calendar day and per calendar week (Monday first) in
the contact's own time zone, plus a minimum gap since the last one.

`send_slot_reserve` is the atomic form: inside the caller's transaction it locks the contact row
(`SELECT ... FOR UPDATE`), re-reads consent, counts, and answers; the caller creates the outbound
`engage.Message` (the intent) in the same transaction. Two senders racing for one contact are
serialised on the lock and the second one counts the first one's intent, so no cap is ever exceeded.
`can_send` is the same check without the lock, for previews and segmentation.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Count, Max, Q
from django.utils import timezone

from channels_app.base import media_type_for
from crm.models import Channel, Company, Contact, Lead
from crm.services import consent_revoke
from engage.ledger.models import Job
from engage.ledger.services import job_enqueue
from engage.messaging.models import Message
from engage.messaging.services import MESSAGE_SEND_TASK
from engage.policy.services import ROLES, policy_for
from shokti.metrics import count

# Proactive agents whose messages count against the caps (replies to a person who wrote first do not).
CAPPED_AGENT_TYPES = (Message.AgentType.SMARTENGAGE, Message.AgentType.COACHNOVA)

REASON_NO_CONSENT = "no_consent"
REASON_NO_ADDRESS = "no_address"
REASON_DAILY_CAP = "daily_cap"
REASON_WEEKLY_CAP = "weekly_cap"
REASON_TOO_SOON = "too_soon"
REASONS = (REASON_NO_CONSENT, REASON_NO_ADDRESS, REASON_DAILY_CAP, REASON_WEEKLY_CAP, REASON_TOO_SOON)

T = TypeVar("T")


class SendDecision(NamedTuple):
    """(allowed, reason): reason is None when allowed, else one of REASONS."""

    allowed: bool
    reason: str | None


ALLOWED = SendDecision(True, None)


def contact_zone(*, contact: Contact) -> ZoneInfo:
    """The contact's time zone; the company's, then UTC, when it is not a known zone name."""
    for name in (contact.timezone, getattr(contact.company, "timezone", ""), "UTC"):
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            continue
    return ZoneInfo("UTC")


def local_day_and_week_start(*, now: dt.datetime, zone: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """The start of the calendar day and week (Monday) containing `now` in `zone`, as aware datetimes."""
    local = now.astimezone(zone)
    day_start = dt.datetime.combine(local.date(), dt.time.min, tzinfo=zone)
    week_start = day_start - dt.timedelta(days=local.weekday())
    return day_start, week_start


def _has_address(contact: Contact, channel: str) -> bool:
    if channel == Channel.EMAIL:
        return bool(contact.email)
    if channel == Channel.CONSOLE:
        return True
    return bool(contact.phone)


def _decide(*, contact: Contact, channel: str, role: str, now: dt.datetime, bypass_caps: bool) -> SendDecision:
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    if not contact.is_consented(channel):
        return SendDecision(False, REASON_NO_CONSENT)
    if not _has_address(contact, channel):
        return SendDecision(False, REASON_NO_ADDRESS)
    if bypass_caps:
        return ALLOWED
    caps = policy_for(company=contact.company).caps_for(role)
    day_start, week_start = local_day_and_week_start(now=now, zone=contact_zone(contact=contact))
    gap_start = now - dt.timedelta(hours=caps.min_hours_between)
    counted = _capped_messages(contact_ids=[contact.pk], since=min(week_start, gap_start))
    totals = counted.aggregate(
        today=Count("pk", filter=Q(created_at__gte=day_start, created_at__lte=now)),
        this_week=Count("pk", filter=Q(created_at__gte=week_start, created_at__lte=now)),
        last_at=Max("created_at", filter=Q(created_at__lte=now)),
    )
    return _caps_decision(caps=caps, today=totals["today"], this_week=totals["this_week"],
                          last_at=totals["last_at"], gap_start=gap_start)


def _capped_messages(*, contact_ids: Sequence[int], since: dt.datetime):
    return Message.objects.filter(
        contact_id__in=contact_ids,
        direction=Message.Direction.OUTBOUND,
        agent_type__in=CAPPED_AGENT_TYPES,
        created_at__gte=since,
    ).exclude(status=Message.Status.FAILED)


def _caps_decision(
    *, caps, today: int, this_week: int, last_at: dt.datetime | None, gap_start: dt.datetime
) -> SendDecision:
    if today >= caps.daily_limit:
        return SendDecision(False, REASON_DAILY_CAP)
    if this_week >= caps.weekly_limit:
        return SendDecision(False, REASON_WEEKLY_CAP)
    if last_at is not None and last_at > gap_start:
        return SendDecision(False, REASON_TOO_SOON)
    return ALLOWED


def can_send(
    *, contact: Contact, channel: str, role: str, now: dt.datetime | None = None, bypass_caps: bool = False
) -> SendDecision:
    """Consent and caps for one message to `contact` on `channel`, without reserving anything."""
    return _decide(contact=contact, channel=channel, role=role, now=now or timezone.now(), bypass_caps=bypass_caps)


def send_slot_reserve(
    *, contact: Contact, channel: str, role: str, now: dt.datetime | None = None, bypass_caps: bool = False
) -> SendDecision:
    """Lock the contact and decide; the caller records its outbound intent in the same transaction.

    Must run inside `transaction.atomic()`: the lock is held until that transaction ends.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("send_slot_reserve must run inside transaction.atomic(): the lock lives until commit.")
    locked = Contact.objects.select_for_update(of=("self",)).select_related("company").get(pk=contact.pk)
    return _decide(contact=locked, channel=channel, role=role, now=now or timezone.now(), bypass_caps=bypass_caps)


def send_slots_reserve(
    *, contacts: Sequence[Contact], channel: str, role: str, now: dt.datetime | None = None, bypass_caps: bool = False
) -> list[SendDecision]:
    """`send_slot_reserve` for many contacts in two statements: lock them all (in id order), count them all.

    One decision per given contact, in order; the caller writes the intents of the allowed ones in
    the same transaction. A contact given twice counts its first allowed send against the second.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("send_slots_reserve must run inside transaction.atomic(): the locks live until commit.")
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    ids = sorted({contact.pk for contact in contacts})
    # id order: two batch senders (or a batch and a single send) never wait on each other in a cycle.
    locked = {
        contact.pk: contact
        for contact in Contact.objects.select_for_update(of=("self",)).select_related("company").filter(pk__in=ids)
        .order_by("pk")
    }
    # Read the clock once the locks are held: an intent committed while we waited counts.
    now = now or timezone.now()
    windows: dict[int, tuple] = {}
    # A batch is one company and a handful of zones: the policy and each zone's day and week
    # starts are worked out once, not per contact.
    caps_by_company: dict[int, object] = {}
    starts_by_zone: dict[ZoneInfo, tuple[dt.datetime, dt.datetime]] = {}
    for contact in locked.values():
        caps = caps_by_company.get(contact.company_id)
        if caps is None:
            caps = caps_by_company[contact.company_id] = policy_for(company=contact.company).caps_for(role)
        zone = contact_zone(contact=contact)
        starts = starts_by_zone.get(zone)
        if starts is None:
            starts = starts_by_zone[zone] = local_day_and_week_start(now=now, zone=zone)
        day_start, week_start = starts
        windows[contact.pk] = (caps, day_start, week_start, now - dt.timedelta(hours=caps.min_hours_between))
    sent_at: dict[int, list[dt.datetime]] = {contact_id: [] for contact_id in locked}
    if windows and not bypass_caps:
        since = min(min(week_start, gap_start) for _, _, week_start, gap_start in windows.values())
        for contact_id, created_at in _capped_messages(contact_ids=ids, since=since).filter(
            created_at__lte=now
        ).values_list("contact_id", "created_at"):
            sent_at[contact_id].append(created_at)
    decisions = []
    for contact in contacts:
        current = locked.get(contact.pk)
        if current is None:
            raise Contact.DoesNotExist(f"Contact {contact.pk} does not exist.")
        if not current.is_consented(channel):
            decisions.append(SendDecision(False, REASON_NO_CONSENT))
            continue
        if not _has_address(current, channel):
            decisions.append(SendDecision(False, REASON_NO_ADDRESS))
            continue
        if bypass_caps:
            decisions.append(ALLOWED)
            continue
        caps, day_start, week_start, gap_start = windows[current.pk]
        times = [at for at in sent_at[current.pk] if at >= min(week_start, gap_start)]
        decision = _caps_decision(
            caps=caps,
            today=sum(1 for at in times if at >= day_start),
            this_week=sum(1 for at in times if at >= week_start),
            last_at=max(times, default=None),
            gap_start=gap_start,
        )
        if decision.allowed:
            sent_at[current.pk].append(now)
        decisions.append(decision)
    return decisions


def send_intent_create(
    *,
    contact: Contact,
    channel: str,
    role: str,
    create_intent: Callable[[], T],
    bypass_caps: bool = False,
) -> tuple[SendDecision, T | None]:
    """Reserve a send slot and, when allowed, run `create_intent()` (which writes the outbound Message) atomically."""
    with transaction.atomic():
        decision = send_slot_reserve(contact=contact, channel=channel, role=role, bypass_caps=bypass_caps)
        if not decision.allowed:
            return decision, None
        return decision, create_intent()


@dataclass(frozen=True)
class QueuedMessage:
    """What `message_queue` did: the decision, and the queued message and its ledger job when allowed."""

    decision: SendDecision
    message: Message | None = None
    job: Job | None = None


def message_queue(
    *,
    company: Company,
    contact: Contact,
    channel: str,
    body: str,
    agent_type: str,
    message_type: str,
    idempotency_key: str,
    role: str | None = None,
    subject: str = "",
    lead: Lead | None = None,
    correlation_id: uuid.UUID | None = None,
    template_version: Any = None,
    bypass_caps: bool = False,
    media_url: str = "",
    media_content_type: str = "",
    experiment_assignment_id: int | None = None,
) -> QueuedMessage:
    """Queue one outbound message through the ledger, under consent and (with a `role`) the frequency caps.

    In one transaction: the send slot is reserved (the contact locked, consent and caps decided), then
    the queued `Message` (which the caps count from now on) and its `message_send` ledger job are
    written; the job sends it once, after commit. Without `role` only consent and an address are
    checked (a reply the person asked for). The same `idempotency_key` queues nothing twice: the
    first call's message and job are returned. `media_url` and `media_content_type`: one file sent with the
    text, by link (a channel that cannot send it natively sends the text alone and records why).
    """
    if contact.company_id != company.pk:
        raise ValidationError({"contact": "The contact belongs to another company."})
    key = f"{MESSAGE_SEND_TASK}:{idempotency_key}"
    with transaction.atomic():
        # The contact's lock first: two calls with one key are serialised here, and the second finds the first's job.
        locked = Contact.objects.select_for_update(of=("self",)).get(pk=contact.pk)
        existing = Job.objects.filter(idempotency_key=key).first()
        if existing is not None:
            return QueuedMessage(ALLOWED, Message.objects.filter(job=existing).first(), existing)
        if role is None:
            decision = (
                ALLOWED if locked.is_consented(channel) and _has_address(locked, channel)
                else SendDecision(False, REASON_NO_CONSENT if not locked.is_consented(channel) else REASON_NO_ADDRESS)
            )
        else:
            decision = send_slot_reserve(contact=contact, channel=channel, role=role, bypass_caps=bypass_caps)
        if not decision.allowed:
            return QueuedMessage(decision)
        job = job_enqueue(company=company, task_name=MESSAGE_SEND_TASK, payload={"contact_id": contact.pk},
                          idempotency_key=key)
        message = Message.objects.create(
            company=company, contact=contact, lead=lead, direction=Message.Direction.OUTBOUND, channel=channel,
            agent_type=agent_type, message_type=message_type, subject=subject, body=body,
            status=Message.Status.QUEUED, correlation_id=correlation_id or uuid.uuid4(), job=job,
            template_version=template_version, **_media_fields(media_url, media_content_type),
            experiment_assignment_id=experiment_assignment_id,
        )
    return QueuedMessage(decision, message, job)


def _media_fields(url: str, content_type: str) -> dict[str, str]:
    if not url:
        return {}
    if not content_type:
        raise ValidationError({"media_content_type": "A media attachment needs its MIME type."})
    return {"media_url": url, "media_content_type": content_type, "media_type": media_type_for(content_type)}


def contact_opt_out(*, contact: Contact, channel: str, reason: str = "request", source: str = "") -> bool:
    """Withdraw consent (an `opt_out` event, through crm's consent_revoke) and count it; False if already out."""
    changed = consent_revoke(contact=contact, channel=channel, reason=reason, source=source)
    if changed:
        count("opt_outs_total", channel=channel, reason=reason)  # the opt-out is recorded; a counter never undoes it
    return changed
