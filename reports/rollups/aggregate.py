"""Aggregating raw rows into rollup rows for one company and a range of its local days.

Portable on purpose (SQLite and PostgreSQL alike): the queries select narrow column tuples in a UTC range (index
friendly, no date arithmetic in SQL), and Python buckets each timestamp into the company's local day with
`zoneinfo`, so an event at 18:30 UTC counts on the next Dhaka day on every backend. Each function returns
unsaved model instances; `reports.rollups.services` replaces a range of days with them in one transaction.

The metric definitions (the tests count the same things straight from the raw rows):
- engagement, over outbound messages of every agent but CoachNova: `sent`/`delivered`/`failed` on the local day
  of `sent_at`/`delivered_at`/`failed_at`; `opened` (notification_opened events), `clicked` (message_clicked,
  deeplink_followed) on the event's day, tied to their message by correlation id and contact; `booked` and
  `revenue` are engage's attributed bookings (last touch, `engage.api.attributed_bookings`) on the booking
  event's day, revenue from the event payload's `amount` (else `price`); `opt_outs` are `opt_out` events (their
  channel from the payload). Segments: the message's channel, template version, campaign and its service's
  category, and the customer cohort (days from the customer's last booking to the message, bucketed).
- AI: AISession rows on their creation day by agent, outcome and reason (the first safety code of a rejection,
  the error's first line for a fallback or error), with latency and tokens.
- leads: created on the day (by source, channel); won/lost: `stage.changed` events on the day whose payload
  status is won/lost; the stage snapshot counts every lead by its stage now.
- workers: coaching's BookingPunctuality on its `local_date` (the scheduled local day), by the booking's zone and
  its service's category.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Iterator
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Count, Q

from coaching.models import BookingPunctuality
from crm.models import Company, Customer, Event, Lead
from engage.api import (
    CLICK_EVENT_TYPES,
    NOTIFICATION_OPENED,
    AgentType,
    AISession,
    CampaignRecipient,
    Message,
    attributed_bookings,
)
from reports.rollups.models import (
    COHORT_NONE,
    AIDaily,
    EngagementDaily,
    LeadDaily,
    LeadStageCount,
    WorkerDaily,
)

CHUNK = 2000
OPT_OUT = "opt_out"
STAGE_CHANGED = "stage.changed"
# Days since the customer's last booking: the upper bound of each bucket (inclusive) and its name.
COHORTS: tuple[tuple[int, str], ...] = ((30, "0-30"), (90, "31-90"), (180, "91-180"))
COHORT_OLDEST = "181+"
COHORT_NAMES = (*(name for _, name in COHORTS), COHORT_OLDEST, COHORT_NONE)


def company_zone(company: Company) -> ZoneInfo:
    try:
        return ZoneInfo(company.timezone or "Asia/Dhaka")
    except (ValueError, KeyError):
        return ZoneInfo("Asia/Dhaka")


def local_today(company: Company, *, now: dt.datetime | None = None) -> dt.date:
    return (now or dt.datetime.now(dt.UTC)).astimezone(company_zone(company)).date()


def utc_range(company: Company, first: dt.date, last: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) in UTC of the local days first..last (inclusive)."""
    zone = company_zone(company)
    start = dt.datetime.combine(first, dt.time.min, tzinfo=zone)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time.min, tzinfo=zone)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def cohort_of(*, last_booking_at: dt.datetime | None, at: dt.datetime) -> str:
    if last_booking_at is None:
        return COHORT_NONE
    days = max((at - last_booking_at).days, 0)
    for bound, name in COHORTS:
        if days <= bound:
            return name
    return COHORT_OLDEST


def _chunks(items: Iterable[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _money(payload: Any) -> Decimal:
    if not isinstance(payload, dict):
        return Decimal(0)
    value = payload.get("amount", payload.get("price"))
    try:
        return Decimal(str(value)).quantize(Decimal("0.01")) if value not in (None, "") else Decimal(0)
    except (InvalidOperation, ValueError):
        return Decimal(0)


# --- engagement -------------------------------------------------------------------------------------------------

def _engagement_messages():
    return Message.objects.filter(direction=Message.Direction.OUTBOUND).exclude(agent_type=AgentType.COACHNOVA)


def _message_dims(company: Company, rows: list[tuple]) -> dict[int, tuple]:
    """message id -> (channel, template_version_id, campaign_id, service_category, cohort) for rows of
    (id, channel, template_version_id, contact_id, created_at)."""
    ids = [row[0] for row in rows]
    contact_ids = {row[3] for row in rows}
    campaigns = {
        message_id: (campaign_id, category or "")
        for message_id, campaign_id, category in CampaignRecipient.objects.filter(
            company_id=company.pk, message_id__in=ids).values_list("message_id", "campaign_id",
                                                                     "campaign__service__category")
    }
    last_booking = dict(Customer.objects.filter(company_id=company.pk, contact_id__in=contact_ids)
                        .values_list("contact_id", "last_booking_at"))
    dims = {}
    for message_id, channel, template_version_id, contact_id, created_at in rows:
        campaign_id, category = campaigns.get(message_id, (0, ""))
        cohort = cohort_of(last_booking_at=last_booking.get(contact_id), at=created_at)
        dims[message_id] = (channel or "", template_version_id or 0, campaign_id, category, cohort)
    return dims


def _messages_by_correlation(company: Company, keys: set[tuple]) -> dict[tuple, tuple]:
    """(correlation_id, contact_id) -> the dims of the newest engagement message carrying it."""
    found: dict[tuple, tuple] = {}
    correlation_ids = {key[0] for key in keys}
    for batch in _chunks(correlation_ids):
        rows = list(_engagement_messages().filter(company_id=company.pk, correlation_id__in=batch)
                    .order_by("created_at", "id")
                    .values_list("id", "channel", "template_version_id", "contact_id", "created_at", "correlation_id"))
        dims = _message_dims(company, [row[:5] for row in rows])
        for row in rows:
            found[(row[5], row[3])] = dims[row[0]]  # later rows (newer) win
    return found


def engagement_rows(*, company: Company, first: dt.date, last: dt.date) -> list[EngagementDaily]:
    zone = company_zone(company)
    start, end = utc_range(company, first, last)
    totals: dict[tuple, dict[str, Any]] = defaultdict(lambda: defaultdict(int))

    def add(at: dt.datetime, dims: tuple, metric: str, amount: Any = 1) -> None:
        day = at.astimezone(zone).date()
        if first <= day <= last:
            totals[(day, *dims)][metric] += amount

    in_range = Q()
    for field in ("sent_at", "delivered_at", "failed_at"):
        in_range |= Q(**{f"{field}__gte": start, f"{field}__lt": end})
    messages = (_engagement_messages().filter(company_id=company.pk).filter(in_range).order_by()
                .values_list("id", "channel", "template_version_id", "contact_id", "created_at",
                             "sent_at", "delivered_at", "failed_at"))
    for batch in _chunks(messages.iterator(chunk_size=CHUNK)):
        dims = _message_dims(company, [row[:5] for row in batch])
        for row in batch:
            for at, metric in zip(row[5:], ("sent", "delivered", "failed"), strict=True):
                if at is not None:
                    add(at, dims[row[0]], metric)

    events = (Event.objects.filter(company_id=company.pk, occurred_at__gte=start, occurred_at__lt=end,
                                   type__in=(NOTIFICATION_OPENED, *CLICK_EVENT_TYPES, OPT_OUT))
              .order_by().values_list("type", "correlation_id", "contact_id", "occurred_at", "payload"))
    for batch in _chunks(events.iterator(chunk_size=CHUNK)):
        keys = {(row[1], row[2]) for row in batch if row[0] != OPT_OUT and row[1] is not None}
        by_correlation = _messages_by_correlation(company, keys) if keys else {}
        opt_out_contacts = {row[2] for row in batch if row[0] == OPT_OUT and row[2] is not None}
        last_booking = dict(Customer.objects.filter(company_id=company.pk, contact_id__in=opt_out_contacts)
                            .values_list("contact_id", "last_booking_at")) if opt_out_contacts else {}
        for event_type, correlation_id, contact_id, occurred_at, payload in batch:
            if event_type == OPT_OUT:
                channel = str((payload or {}).get("channel", "")) if isinstance(payload, dict) else ""
                cohort = cohort_of(last_booking_at=last_booking.get(contact_id), at=occurred_at)
                add(occurred_at, (channel[:20], 0, 0, "", cohort), "opt_outs")
                continue
            dims = by_correlation.get((correlation_id, contact_id))
            if dims is not None:
                add(occurred_at, dims, "opened" if event_type == NOTIFICATION_OPENED else "clicked")

    bookings = (attributed_bookings(company=company).filter(occurred_at__gte=start, occurred_at__lt=end)
                .order_by().values_list("touch_correlation_id", "contact_id", "occurred_at", "payload"))
    for batch in _chunks(bookings.iterator(chunk_size=CHUNK)):
        by_correlation = _messages_by_correlation(company, {(row[0], row[1]) for row in batch})
        for correlation_id, contact_id, occurred_at, payload in batch:
            dims = by_correlation.get((correlation_id, contact_id))
            if dims is not None:
                add(occurred_at, dims, "booked")
                add(occurred_at, dims, "revenue", _money(payload))

    return [
        EngagementDaily(company_id=company.pk, local_date=key[0], channel=key[1], template_version_id=key[2],
                        campaign_id=key[3], service_category=key[4][:100], cohort=key[5], **values)
        for key, values in totals.items()
    ]


# --- AI ---------------------------------------------------------------------------------------------------------

def ai_reason(*, outcome: str, error: str, safety: Any) -> str:
    if outcome == AISession.Outcome.REJECTED and isinstance(safety, dict):
        for reason in safety.get("reasons") or []:
            if isinstance(reason, dict) and reason.get("code"):
                return str(reason["code"])[:100]
    if outcome == AISession.Outcome.OK:
        return ""
    line = (error or "").strip().splitlines()[0] if (error or "").strip() else ""
    return line.split(":")[0].strip()[:100] or outcome


def ai_rows(*, company: Company, first: dt.date, last: dt.date) -> list[AIDaily]:
    zone = company_zone(company)
    start, end = utc_range(company, first, last)
    totals: dict[tuple, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    sessions = (AISession.objects.filter(company_id=company.pk, created_at__gte=start, created_at__lt=end)
                .order_by().values_list("created_at", "agent_type", "outcome", "error", "safety", "latency_ms",
                                        "tokens_in", "tokens_out"))
    for created_at, agent_type, outcome, error, safety, latency_ms, tokens_in, tokens_out in sessions.iterator(
            chunk_size=CHUNK):
        key = (created_at.astimezone(zone).date(), agent_type or "", outcome,
               ai_reason(outcome=outcome, error=error, safety=safety))
        values = totals[key]
        values["sessions"] += 1
        if latency_ms:
            values["latency_ms_sum"] += latency_ms
            values["latency_count"] += 1
        values["tokens_in"] += tokens_in or 0
        values["tokens_out"] += tokens_out or 0
    return [
        AIDaily(company_id=company.pk, local_date=key[0], agent_type=key[1], outcome=key[2], reason=key[3], **values)
        for key, values in totals.items()
    ]


# --- leads ------------------------------------------------------------------------------------------------------

def lead_rows(*, company: Company, first: dt.date, last: dt.date) -> list[LeadDaily]:
    zone = company_zone(company)
    start, end = utc_range(company, first, last)
    totals: dict[tuple, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    leads = (Lead.objects.filter(company_id=company.pk, created_at__gte=start, created_at__lt=end).order_by()
             .values_list("created_at", "source", "channel"))
    for created_at, source, channel in leads.iterator(chunk_size=CHUNK):
        totals[(created_at.astimezone(zone).date(), (source or "")[:100], channel or "")]["new"] += 1
    changes = (Event.objects.filter(company_id=company.pk, type=STAGE_CHANGED, occurred_at__gte=start,
                                    occurred_at__lt=end).order_by().values_list("occurred_at", "payload"))
    for batch in _chunks(changes.iterator(chunk_size=CHUNK)):
        closing = [(at, payload) for at, payload in batch
                   if isinstance(payload, dict) and payload.get("status") in (Lead.Status.WON, Lead.Status.LOST)]
        lead_ids = {payload.get("lead_id") for _, payload in closing}
        segments = {pk: (source or "", channel or "") for pk, source, channel in Lead.objects.filter(
            company_id=company.pk, pk__in=[pk for pk in lead_ids if isinstance(pk, int)]).values_list(
            "pk", "source", "channel")}
        for at, payload in closing:
            source, channel = segments.get(payload.get("lead_id"), ("", ""))
            totals[(at.astimezone(zone).date(), source[:100], channel)][payload["status"]] += 1
    return [
        LeadDaily(company_id=company.pk, local_date=key[0], source=key[1], channel=key[2], **values)
        for key, values in totals.items()
    ]


def lead_stage_rows(*, company: Company) -> list[LeadStageCount]:
    counts = dict(Lead.objects.filter(company_id=company.pk).order_by().values_list("stage_id")
                  .annotate(n=Count("id")).values_list("stage_id", "n"))
    from crm.models import Stage

    stages = Stage.objects.filter(pipeline__company_id=company.pk).select_related("pipeline").order_by(
        "pipeline_id", "order")
    return [
        LeadStageCount(company_id=company.pk, stage_id=stage.pk, pipeline_name=stage.pipeline.name[:100],
                       stage_name=stage.name[:100], stage_order=stage.order, kind=stage.kind,
                       leads=counts.get(stage.pk, 0))
        for stage in stages
    ]


# --- workers ----------------------------------------------------------------------------------------------------

def worker_rows(*, company: Company, first: dt.date, last: dt.date) -> list[WorkerDaily]:
    totals: dict[tuple, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    rows = (BookingPunctuality.objects.filter(company_id=company.pk, local_date__gte=first, local_date__lte=last)
            .order_by().values_list("local_date", "outcome", "is_excused", "minutes_late", "booking__zone",
                                    "booking__service__category"))
    for local_date, outcome, is_excused, minutes_late, zone, category in rows.iterator(chunk_size=CHUNK):
        values = totals[(local_date, (zone or "")[:100], (category or "")[:100])]
        if is_excused:
            values["excused"] += 1
        elif outcome == BookingPunctuality.Outcome.ON_TIME:
            values["on_time"] += 1
        else:
            values["late"] += 1
            values["late_minutes"] += max(minutes_late or 0, 0)
    return [
        WorkerDaily(company_id=company.pk, local_date=key[0], zone=key[1], service_category=key[2], **values)
        for key, values in totals.items()
    ]


def first_activity_day(*, company: Company) -> dt.date | None:
    """The company's first local day with a message, a lead, an AI session or a punctuality row."""
    from django.db.models import Min

    zone = company_zone(company)
    firsts = [
        Message.objects.filter(company_id=company.pk).aggregate(at=Min("created_at"))["at"],
        Lead.objects.filter(company_id=company.pk).aggregate(at=Min("created_at"))["at"],
        AISession.objects.filter(company_id=company.pk).aggregate(at=Min("created_at"))["at"],
        Event.objects.filter(company_id=company.pk).aggregate(at=Min("occurred_at"))["at"],
    ]
    days = [at.astimezone(zone).date() for at in firsts if at is not None]
    punctual = BookingPunctuality.objects.filter(company_id=company.pk).aggregate(day=Min("local_date"))["day"]
    if punctual is not None:
        days.append(punctual)
    return min(days) if days else None
