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
  status is won/lost; the stage snapshot counts every lead by its stage now; time in stage: every `stage.changed`
  event on the day ends a stay in its `from_id` stage that began at the lead's previous stage change (else its
  creation), counted in local days between the two (a histogram by stage and days).
- workers: coaching's BookingPunctuality on its `local_date` (the scheduled local day), by the booking's zone, its
  service's category and whether the worker had been coached (a `coached` CoachingRecipient made before the
  booking's time).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Iterator
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Count, Exists, F, OuterRef, Q, Sum
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce, TruncDate

from coaching.models import BookingPunctuality, CoachingRecipient
from crm.models import Company, Event, Lead
from engage.api import (
    CLICK_EVENT_TYPES,
    NOTIFICATION_OPENED,
    AgentType,
    AISession,
    Message,
    attributed_bookings,
)
from reports.rollups.models import (
    COHORT_NONE,
    AIDaily,
    EngagementDaily,
    LeadDaily,
    LeadStageCount,
    LeadStageTimeDaily,
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


def read_range(company: Company, first: dt.date, last: dt.date, since: dt.datetime | None = None,
               until: dt.datetime | None = None) -> tuple[dt.datetime, dt.datetime]:
    """The UTC range the aggregation reads: the local days first..last, cut to [since, until) when given. The
    refresh reads up to the moment it started (`until`, its "data as of"), and the live "today" numbers read from
    there on (`since`), so a row counts in exactly one of the two."""
    start, end = utc_range(company, first, last)
    if since is not None:
        start = max(start, since)
    if until is not None:
        end = min(end, until)
    return start, end


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


# The columns every engagement query reads: the message, its campaign (a LEFT JOIN through its recipient row) and
# its customer's last booking (through the contact).
MESSAGE_COLUMNS = ("id", "channel", "template_version_id", "created_at", "correlation_id", "contact_id",
                   "campaign_recipients__campaign_id", "campaign_recipients__campaign__service__category",
                   "contact__customer__last_booking_at")


def _dims(row: tuple) -> tuple:
    """(channel, template_version_id, campaign_id, service_category, cohort) of a MESSAGE_COLUMNS row."""
    _, channel, template_version_id, created_at, _, _, campaign_id, category, last_booking_at = row[:9]
    return (channel or "", template_version_id or 0, campaign_id or 0, (category or "")[:100],
            cohort_of(last_booking_at=last_booking_at, at=created_at))


class _MessageIndex:
    """(correlation_id, contact_id) -> the dims of the newest engagement message carrying it: filled from the
    messages the range reads, completed from the database in batches for events about older messages."""

    def __init__(self, company: Company) -> None:
        self.company = company
        self.found: dict[tuple, tuple] = {}
        self.order: dict[tuple, tuple] = {}
        self.asked: set = set()

    def add(self, row: tuple) -> None:
        key, rank = (row[4], row[5]), (row[3], row[0])
        if row[4] is not None and (key not in self.order or rank > self.order[key]):
            self.found[key], self.order[key] = _dims(row), rank

    def lookup(self, keys: set[tuple]) -> dict[tuple, tuple]:
        missing = {key[0] for key in keys if key not in self.found and key[0] is not None} - self.asked
        for batch in _chunks(missing):
            for row in (_engagement_messages().filter(company_id=self.company.pk, correlation_id__in=batch)
                        .order_by().values_list(*MESSAGE_COLUMNS)):
                self.add(row)
        self.asked |= missing  # asked once: the misses (CoachNova's or unknown messages) are not asked again
        return self.found


def engagement_rows(*, company: Company, first: dt.date, last: dt.date, since: dt.datetime | None = None,
                    until: dt.datetime | None = None) -> list[EngagementDaily]:
    zone = company_zone(company)
    start, end = read_range(company, first, last, since, until)
    totals: dict[tuple, dict[str, Any]] = defaultdict(lambda: defaultdict(int))

    def add(at: dt.datetime, dims: tuple, metric: str, amount: Any = 1) -> None:
        if start <= at < end:
            totals[(at.astimezone(zone).date(), *dims)][metric] += amount

    in_range = Q()
    for field in ("sent_at", "delivered_at", "failed_at"):
        in_range |= Q(**{f"{field}__gte": start, f"{field}__lt": end})
    index = _MessageIndex(company)
    seen: set[int] = set()
    messages = (_engagement_messages().filter(company_id=company.pk).filter(in_range).order_by()
                .values_list(*MESSAGE_COLUMNS, "sent_at", "delivered_at", "failed_at"))
    for row in messages.iterator(chunk_size=CHUNK):
        if row[0] in seen:  # a second recipient row of one message (the LEFT JOIN): counted once
            continue
        seen.add(row[0])
        index.add(row)
        dims = _dims(row)
        for at, metric in zip(row[9:], ("sent", "delivered", "failed"), strict=True):
            if at is not None:
                add(at, dims, metric)

    events = (Event.objects.filter(company_id=company.pk, occurred_at__gte=start, occurred_at__lt=end,
                                   type__in=(NOTIFICATION_OPENED, *CLICK_EVENT_TYPES, OPT_OUT))
              .order_by().values_list("type", "correlation_id", "contact_id", "occurred_at", "payload",
                                      "contact__customer__last_booking_at"))
    for batch in _chunks(events.iterator(chunk_size=CHUNK)):
        by_correlation = index.lookup({(row[1], row[2]) for row in batch if row[0] != OPT_OUT})
        for event_type, correlation_id, contact_id, occurred_at, payload, last_booking_at in batch:
            if event_type == OPT_OUT:
                channel = str(payload.get("channel", "")) if isinstance(payload, dict) else ""
                cohort = cohort_of(last_booking_at=last_booking_at, at=occurred_at)
                add(occurred_at, (channel[:20], 0, 0, "", cohort), "opt_outs")
                continue
            dims = by_correlation.get((correlation_id, contact_id))
            if dims is not None:
                add(occurred_at, dims, "opened" if event_type == NOTIFICATION_OPENED else "clicked")

    bookings = (attributed_bookings(company=company).filter(occurred_at__gte=start, occurred_at__lt=end)
                .order_by().values_list("touch_correlation_id", "contact_id", "occurred_at", "payload"))
    for batch in _chunks(bookings.iterator(chunk_size=CHUNK)):
        by_correlation = index.lookup({(row[0], row[1]) for row in batch})
        for correlation_id, contact_id, occurred_at, payload in batch:
            dims = by_correlation.get((correlation_id, contact_id))
            if dims is not None:
                add(occurred_at, dims, "booked")
                add(occurred_at, dims, "revenue", _money(payload))

    return [
        EngagementDaily(company_id=company.pk, local_date=key[0], channel=key[1], template_version_id=key[2],
                        campaign_id=key[3], service_category=key[4], cohort=key[5], **values)
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


def ai_rows(*, company: Company, first: dt.date, last: dt.date, since: dt.datetime | None = None,
            until: dt.datetime | None = None) -> list[AIDaily]:
    """Grouped in SQL by local day (TruncDate in the company's zone: portable), agent, outcome, error and first
    safety code; the reasons are then named and merged in Python."""
    zone = company_zone(company)
    start, end = read_range(company, first, last, since, until)
    totals: dict[tuple, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    groups = (AISession.objects.filter(company_id=company.pk, created_at__gte=start, created_at__lt=end).order_by()
              .values(day=TruncDate("created_at", tzinfo=zone), agent=F("agent_type"), result=F("outcome"),
                      failure=F("error"), code=KT("safety__reasons__0__code"))
              .annotate(sessions=Count("pk"), latency_ms_sum=Coalesce(Sum("latency_ms"), 0),
                        latency_count=Count("pk", filter=Q(latency_ms__gt=0)),
                        tokens_in=Coalesce(Sum("tokens_in"), 0), tokens_out=Coalesce(Sum("tokens_out"), 0)))
    for group in groups.iterator(chunk_size=CHUNK):
        safety = {"reasons": [{"code": group["code"]}]} if group["code"] else {}
        key = (group["day"], group["agent"] or "", group["result"],
               ai_reason(outcome=group["result"], error=group["failure"], safety=safety))
        for field in ("sessions", "latency_ms_sum", "latency_count", "tokens_in", "tokens_out"):
            totals[key][field] += group[field]
    return [
        AIDaily(company_id=company.pk, local_date=key[0], agent_type=key[1], outcome=key[2], reason=key[3], **values)
        for key, values in totals.items()
    ]


# --- leads ------------------------------------------------------------------------------------------------------

def lead_rows(*, company: Company, first: dt.date, last: dt.date, since: dt.datetime | None = None,
              until: dt.datetime | None = None) -> list[LeadDaily]:
    zone = company_zone(company)
    start, end = read_range(company, first, last, since, until)
    totals: dict[tuple, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    leads = (Lead.objects.filter(company_id=company.pk, created_at__gte=start, created_at__lt=end).order_by()
             .values_list(TruncDate("created_at", tzinfo=zone), "source", "channel").annotate(n=Count("pk")))
    for day, source, channel, count in leads.iterator(chunk_size=CHUNK):
        totals[(day, (source or "")[:100], channel or "")]["new"] += count
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


def _stage_moves(company: Company, lead_ids: list[int], end: dt.datetime) -> dict[int, list[tuple]]:
    """lead id -> its stage changes before `end`, oldest first, as (occurred_at, event id, from_id, to_id): read
    through the events' (target_type, target_id) index, as `lead_move_to_stage` records its lead as the target."""
    from django.contrib.contenttypes.models import ContentType

    moves: dict[int, list[tuple]] = defaultdict(list)
    events = (Event.objects.filter(company_id=company.pk, type=STAGE_CHANGED,
                                   target_type=ContentType.objects.get_for_model(Lead),
                                   target_id__in=[str(pk) for pk in lead_ids], occurred_at__lt=end)
              .order_by().values_list("occurred_at", "id", "payload"))
    for at, pk, payload in events:
        if isinstance(payload, dict) and isinstance(payload.get("lead_id"), int):
            moves[payload["lead_id"]].append((at, pk, payload.get("from_id"), payload.get("to_id")))
    for history in moves.values():
        history.sort(key=lambda move: (move[0], move[1]))
    return moves


def lead_stage_time_rows(*, company: Company, first: dt.date, last: dt.date, since: dt.datetime | None = None,
                         until: dt.datetime | None = None) -> list[LeadStageTimeDaily]:
    """Stays that ended on local days first..last: each stage change in the range closes the stay in its
    `from_id` stage (else the stage the previous change moved the lead to), begun at the previous change of the
    same lead or, for its first, at the lead's creation; a stay whose start is unknown (the lead deleted, no
    earlier change) is left out."""
    zone = company_zone(company)
    start, end = read_range(company, first, last, since, until)
    totals: dict[tuple, int] = defaultdict(int)
    changes = (Event.objects.filter(company_id=company.pk, type=STAGE_CHANGED, occurred_at__gte=start,
                                    occurred_at__lt=end).order_by().values_list("id", "payload"))
    for batch in _chunks(changes.iterator(chunk_size=CHUNK)):
        in_range = {pk for pk, payload in batch if isinstance(payload, dict)
                    and isinstance(payload.get("lead_id"), int)}
        lead_ids = sorted({payload["lead_id"] for pk, payload in batch if pk in in_range})
        created = dict(Lead.objects.filter(company_id=company.pk, pk__in=lead_ids).values_list("pk", "created_at"))
        for lead_id, history in _stage_moves(company, lead_ids, end).items():
            entered, stage_id = created.get(lead_id), None
            for at, pk, from_id, to_id in history:
                left_stage = from_id if isinstance(from_id, int) else stage_id
                if pk in in_range and entered is not None and left_stage is not None:
                    days = max((at.astimezone(zone).date() - entered.astimezone(zone).date()).days, 0)
                    totals[(at.astimezone(zone).date(), left_stage, days)] += 1
                entered, stage_id = at, to_id if isinstance(to_id, int) else None
    return [
        LeadStageTimeDaily(company_id=company.pk, local_date=key[0], stage_id=key[1], days=key[2], stays=stays)
        for key, stays in totals.items()
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
    """One grouped query: BookingPunctuality already carries its local day."""
    counted = Q(is_excused=False)
    late = counted & ~Q(outcome=BookingPunctuality.Outcome.ON_TIME)
    coached = CoachingRecipient.objects.filter(worker_id=OuterRef("worker_id"), status=CoachingRecipient.Status.COACHED,
                                               created_at__lte=OuterRef("scheduled_at"))
    groups = (BookingPunctuality.objects.filter(company_id=company.pk, local_date__gte=first, local_date__lte=last)
              .order_by().values("local_date", zone=F("booking__zone"), category=F("booking__service__category"),
                                 was_coached=Exists(coached))
              .annotate(on_time=Count("pk", filter=counted & Q(outcome=BookingPunctuality.Outcome.ON_TIME)),
                        late=Count("pk", filter=late), excused=Count("pk", filter=Q(is_excused=True)),
                        late_minutes=Coalesce(Sum("minutes_late", filter=late & Q(minutes_late__gt=0)), 0)))
    return [
        WorkerDaily(company_id=company.pk, local_date=group["local_date"], zone=group["zone"] or "",
                    service_category=group["category"] or "", coached=bool(group["was_coached"]),
                    on_time=group["on_time"], late=group["late"],
                    excused=group["excused"], late_minutes=group["late_minutes"])
        for group in groups.iterator(chunk_size=CHUNK)
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
