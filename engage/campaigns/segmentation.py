"""SmartEngage segmentation: which customers are due a reminder now. One indexed query per batch.

A customer is eligible when, at `now`:
- their last completed booking (`Customer.last_booking_at`, kept by `crm.feed.services.booking_complete`)
  is in `[cadence_days, cadence_days + window_days)` days old;
- their contact consented to the channel and has an address on it;
- they were not reminded in this cycle: no SmartEngage message (that did not fail) since that booking;
- they are under the caps of the company's policy: fewer than the daily limit since local midnight,
  fewer than the weekly limit since local Monday, none in the last `min_hours_between` hours;
- the local hour in their own time zone is inside the send window `[start, end)`.

All of it is `EXISTS`/`NOT EXISTS` subqueries over `engage_message (contact, created_at)`; batches
come by keyset (`id > after_id`). The zone arithmetic happens in Python once per zone name present on
the company's contacts (`contact_zones`, cached ten minutes, refreshed at the start of every walk):
the send window becomes `timezone IN (...)`, the day and week starts constants.
The caps here only select: the send still reserves its slot atomically (engage.policy.consent).
Each rule is defined once (`_segment_rules`): `customer_segment` keeps the customers passing them
all, `customer_segment_skips` names the first rule each other candidate fails (no_consent,
no_address, too_soon, daily_cap, weekly_cap), so a campaign run records why it left them out.
Zone names PostgreSQL would not know are read in the company's zone.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import (
    Case,
    CharField,
    DateTimeField,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
    Window,
)
from django.db.models.functions import Coalesce, RowNumber
from django.utils import timezone

from crm.models import Booking, Channel, Company, Contact, Customer, Service
from engage.ai.bengali import date_bn, number_bn
from engage.campaigns.models import CampaignRecipient
from engage.messaging.models import Message
from engage.policy.consent import CAPPED_AGENT_TYPES, local_day_and_week_start
from engage.policy.services import ROLE_CUSTOMER, Preset, policy_for


@dataclass(frozen=True)
class SegmentCriteria:
    cadence_days: int
    window_days: int
    send_window_start_hour: int
    send_window_end_hour: int
    channel: str = Channel.EMAIL

    @classmethod
    def from_preset(cls, preset: Preset, *, channel: str = Channel.EMAIL) -> SegmentCriteria:
        return cls(
            cadence_days=preset.cadence_days,
            window_days=preset.window_days,
            send_window_start_hour=preset.send_window_start_hour,
            send_window_end_hour=preset.send_window_end_hour,
            channel=channel,
        )

    def __post_init__(self) -> None:
        if self.cadence_days < 1 or self.window_days < 1:
            raise ValueError("cadence_days and window_days must be at least 1")
        if not 0 <= self.send_window_start_hour < self.send_window_end_hour <= 24:
            raise ValueError("the send window is [start, end) hours with 0 <= start < end <= 24")
        Channel(self.channel)


def send_window_parse(*, send_window: str) -> tuple[int, int]:
    """"9-18" -> (9, 18); ValueError when malformed."""
    start, _, end = send_window.partition("-")
    hours = int(start), int(end)
    if not 0 <= hours[0] < hours[1] <= 24:
        raise ValueError("A send window is 'start-end' hours with 0 <= start < end <= 24.")
    return hours


def is_within_send_window(*, local_hour: int, start_hour: int, end_hour: int) -> bool:
    return start_hour <= local_hour < end_hour


ZONES_CACHE_SECONDS = 600


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    """Zone names both Python and the database know (read once per process)."""
    zones = set(available_timezones())
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT name FROM pg_timezone_names")
            zones &= {row[0] for row in cursor.fetchall()}
    return frozenset(zones)


def contact_zones(*, company: Company, refresh: bool = False) -> tuple[str, ...]:
    """The distinct zone names on the company's contacts (cached ten minutes; every walk refreshes it)."""
    key = f"engage:segmentation:zones:v1:{company.pk}"
    zones = None if refresh else cache.get(key)
    if zones is None:
        present = Contact.objects.filter(company=company).order_by().values_list("timezone", flat=True).distinct()
        zones = tuple(sorted(present))
        cache.set(key, zones, ZONES_CACHE_SECONDS)
    return zones


def _company_zone(company: Company) -> ZoneInfo:
    try:
        return ZoneInfo(company.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _zone(name: str, fallback: ZoneInfo) -> ZoneInfo:
    if name not in _known_zones():
        return fallback
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return fallback


def _per_zone(values: dict[str, dt.datetime]) -> Value | Case:
    """A constant when every zone agrees (the usual single-zone company), else a CASE on the zone name."""
    distinct = set(values.values())
    if len(distinct) == 1:
        return Value(distinct.pop(), output_field=DateTimeField())
    return Case(
        *(When(contact__timezone=name, then=Value(value)) for name, value in sorted(values.items())),
        output_field=DateTimeField(),
    )


def _segment_rules(
    *, company: Company, criteria: SegmentCriteria, now: dt.datetime, zones: list[str]
) -> tuple[QuerySet[Customer], Exists, list[tuple[str, Q | Exists]]]:
    """The segment's parts, each rule defined once for both the segment and its skip reasons.

    Returns the candidates (the company's customers whose last booking is in the cadence window,
    annotated with their zone's day and week starts for `zones`), the "already reminded in this
    cycle" condition, and the eligibility rules as (skip reason, condition a customer passes), in
    the order a skipped customer's reason is chosen: the first rule failed.
    """
    caps = policy_for(company=company).caps_for(ROLE_CUSTOMER)
    channel = Channel(criteria.channel)
    consent_field = Contact.CONSENT_FIELD_BY_CHANNEL[channel]
    fallback = _company_zone(company)
    day_starts: dict[str, dt.datetime] = {}
    week_starts: dict[str, dt.datetime] = {}
    for name in zones:
        day_starts[name], week_starts[name] = local_day_and_week_start(now=now, zone=_zone(name, fallback))

    capped = Message.objects.filter(
        contact_id=OuterRef("contact_id"),
        direction=Message.Direction.OUTBOUND,
        agent_type__in=CAPPED_AGENT_TYPES,
    ).exclude(status=Message.Status.FAILED)

    def under(count: int, queryset: QuerySet) -> Exists:
        # "Fewer than N rows" without counting them all: the Nth row does not exist. N = 1 (the usual
        # daily and weekly cap) stays a plain NOT EXISTS, which PostgreSQL turns into an anti join.
        return ~Exists(queryset if count <= 1 else queryset.order_by()[count - 1 : count])

    candidates = Customer.objects.filter(
        company=company,
        is_active=True,  # a customer the marketplace deleted is never reminded
        last_booking_at__lte=now - dt.timedelta(days=criteria.cadence_days),
        last_booking_at__gt=now - dt.timedelta(days=criteria.cadence_days + criteria.window_days),
    ).alias(day_start=_per_zone(day_starts), week_start=_per_zone(week_starts))
    reminded = Exists(
        capped.filter(agent_type=Message.AgentType.SMARTENGAGE, created_at__gt=OuterRef("last_booking_at"))
    )
    Reason = CampaignRecipient.Reason
    rules: list[tuple[str, Q | Exists]] = [(Reason.NO_CONSENT, Q(**{f"contact__{consent_field}": True}))]
    if channel == Channel.EMAIL:
        rules.append((Reason.NO_ADDRESS, ~Q(contact__email="")))
    elif channel != Channel.CONSOLE:
        rules.append((Reason.NO_ADDRESS, ~Q(contact__phone="")))
    if caps.min_hours_between:
        rules.append(
            (Reason.TOO_SOON, ~Exists(capped.filter(created_at__gt=now - dt.timedelta(hours=caps.min_hours_between))))
        )
    rules.append((Reason.DAILY_CAP, under(caps.daily_limit, capped.filter(created_at__gte=OuterRef("day_start")))))
    rules.append((Reason.WEEKLY_CAP, under(caps.weekly_limit, capped.filter(created_at__gte=OuterRef("week_start")))))
    return candidates, reminded, rules


def customer_segment(
    *,
    company: Company,
    criteria: SegmentCriteria,
    now: dt.datetime | None = None,
    after_id: int = 0,
    limit: int | None = None,
    zones: tuple[str, ...] | None = None,
) -> QuerySet[Customer]:
    """Eligible customers of `company` (see the module doc), by id, after `after_id`, at most `limit`.

    `zones`: the zone names on the company's contacts (`contact_zones`, from the cache when not given).
    """
    now = now or timezone.now()
    # Zone arithmetic once per zone name, here, not per row in SQL: the send window becomes
    # `timezone IN (...)`, which the planner estimates well, and the day and week starts constants
    # (or a CASE over the few zone names).
    fallback = _company_zone(company)
    inside = [
        name
        for name in (contact_zones(company=company) if zones is None else zones)
        if is_within_send_window(
            local_hour=now.astimezone(_zone(name, fallback)).hour,
            start_hour=criteria.send_window_start_hour,
            end_hour=criteria.send_window_end_hour,
        )
    ]
    if not inside:
        return Customer.objects.none()
    candidates, reminded, rules = _segment_rules(company=company, criteria=criteria, now=now, zones=inside)
    customers = (
        candidates.filter(id__gt=after_id, contact__timezone__in=inside)
        .exclude(reminded)
        .filter(*(passes for _, passes in rules))
        .select_related("contact")
        # Timestamps nobody reads when reminding: four fewer datetimes to parse per customer.
        .defer("created_at", "contact__created_at", "contact__updated_at", "contact__consent_updated_at")
        .order_by("id")
    )
    return customers[:limit] if limit else customers


def customer_segment_skips(
    *,
    company: Company,
    criteria: SegmentCriteria,
    now: dt.datetime,
    after_id: int = 0,
    upto_id: int | None = None,
    zones: tuple[str, ...] | None = None,
) -> QuerySet[Customer]:
    """The candidates in `(after_id, upto_id]` the segment's rules exclude, each with `skip_reason` (else NULL).

    Candidates: last booking in the cadence window, not reminded in this cycle; any zone (the send
    window is the sender's to apply). `skip_reason` is the first rule failed, in `_segment_rules`'s
    order; customers passing every rule have NULL (select `skip_reason IS NOT NULL` around it: a
    filter here would evaluate the subqueries twice).
    """
    zones = contact_zones(company=company) if zones is None else zones
    candidates, reminded, rules = _segment_rules(company=company, criteria=criteria, now=now, zones=list(zones))
    customers = candidates.filter(id__gt=after_id).exclude(reminded)
    if upto_id is not None:
        customers = customers.filter(id__lte=upto_id)
    reason = Case(
        *(When(~passes, then=Value(str(skip))) for skip, passes in rules),
        default=Value(None),
        output_field=CharField(),
    )
    return customers.annotate(skip_reason=reason).order_by()


@contextlib.contextmanager
def custom_plans(*, nested_loops: bool = False) -> Iterator[None]:
    """Plan the statements inside for their own parameters (a transaction with `SET LOCAL`).

    psycopg prepares a statement run five times on a connection (settings: server-side binding), and
    after five more PostgreSQL may keep a generic plan, blind to the keyset position, the clock and
    the zones: the segment's batches then took 30-130 ms instead of ~11 ms, a run's skip records
    1-2 s instead of ~30 ms (bench/segmentation.py's 100k database).

    `nested_loops`: no hash or merge joins either, for a statement over one keyset range of customers
    (a few thousand), which the planner misjudges: it counts the cost of the per-row rule subqueries
    against the index lookups, then hashes the whole contact and message tables instead. At 1M
    customers a run's skip records took 230-285 ms a batch that way, 32 ms in nested loops.
    """
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL plan_cache_mode = force_custom_plan")
            if nested_loops:
                cursor.execute(
                    "SELECT current_setting('enable_hashjoin'), current_setting('enable_mergejoin'),"
                    " set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)"
                )
                previous = cursor.fetchone()[:2]
        yield
        if nested_loops:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT set_config('enable_hashjoin', %s, true), set_config('enable_mergejoin', %s, true)", previous
                )


def customer_segment_batches(
    *,
    company: Company,
    criteria: SegmentCriteria,
    batch_size: int = 100,
    now: dt.datetime | None = None,
    after_id: int = 0,
    zones: tuple[str, ...] | None = None,
    exclude: Any = None,
) -> Iterator[list[Customer]]:
    """The eligible customers after `after_id` in batches of `batch_size`, by keyset; `now` and the zone
    list fixed for the walk (`zones`: read afresh when not given). `exclude`: a condition (Q or
    boolean expression) that leaves more customers out, in the same statement (a run's: who already
    has an intent in this cycle)."""
    now = now or timezone.now()
    zones = contact_zones(company=company, refresh=True) if zones is None else zones
    # The segment's query is built once for the walk and each batch adds its keyset bound: building it
    # (rules, subqueries, joins) was ~5 % of a dry run's CPU when done per batch.
    customers = customer_segment(company=company, criteria=criteria, now=now, after_id=after_id, zones=zones)
    if exclude is not None:
        customers = customers.exclude(exclude)
    while True:
        with custom_plans():
            batch = list(customers.filter(id__gt=after_id)[:batch_size])
        if not batch:
            return
        yield batch
        after_id = batch[-1].pk
        if len(batch) < batch_size:
            return


BOOKING_HISTORY_LENGTH = 3  # bookings in a reminder prompt's `booking_history`


class PastBooking(NamedTuple):
    """A completed booking as a reminder's prompt and deep link read it: no model instance per row (at
    1M customers a dry run spent a quarter of its time building the Booking and Service of each row)."""

    pk: int
    finished_at: dt.datetime  # when it was finished (the scheduled time if no finish was recorded)
    service: Service  # id, company_id, name and name_bn loaded; one instance per service


_SERVICE_FIELDS = ["id", "company_id", "name", "name_bn", "base_price"]


def customer_booking_histories(*, customer_ids: list[int], limit: int = BOOKING_HISTORY_LENGTH) -> dict[int, list[PastBooking]]:
    """Each customer's latest `limit` completed bookings, newest first, for a whole batch in one query.

    A window function ranks each customer's bookings (on booking_customer_finished); customers
    without a completed booking are absent from the answer.
    """
    if not customer_ids:
        return {}
    ranked = (
        Booking.objects.filter(customer_id__in=customer_ids, status=Booking.Status.COMPLETED)
        .annotate(
            rank=Window(
                RowNumber(),
                partition_by=[F("customer_id")],
                order_by=[F("finished_at").desc(nulls_last=True), F("id").desc()],
            ),
            when=Coalesce("finished_at", "scheduled_at"),
        )
        .filter(rank__lte=limit)
        .order_by("customer_id", "rank")
        .values_list("id", "customer_id", "when", *(f"service__{name}" for name in _SERVICE_FIELDS))
    )
    services: dict[int, Service] = {}
    histories: dict[int, list[PastBooking]] = {}
    for pk, customer_id, when, *service_values in ranked:
        service = services.get(service_values[0])
        if service is None:
            # As `.only(...)` would load it: the other fields are deferred, not defaults.
            service = services[service_values[0]] = Service.from_db(Booking.objects.db, _SERVICE_FIELDS, service_values)
        histories.setdefault(customer_id, []).append(PastBooking(pk, when, service))
    return histories


def booking_history_text(*, bookings: list[PastBooking], now: dt.datetime, zone: dt.tzinfo | None = None) -> str:
    """The prompt's `booking_history`: one line per booking, newest first: the date as a Bengali reader
    writes it (in `zone`, the customer's), service, days ago ("- ১৫ নভেম্বর ২০২৬: এসি সার্ভিসিং (৪৫ দিন আগে)")."""

    lines = []
    for booking in bookings:
        when = booking.finished_at
        service = booking.service.name_bn or booking.service.name
        local = when.astimezone(zone) if zone is not None else when
        lines.append(f"- {date_bn(local)}: {service} ({number_bn((now - when).days)} দিন আগে)")
    return "\n".join(lines)
