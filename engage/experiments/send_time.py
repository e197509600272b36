"""Send-time optimisation: each customer's best hour inside the send window, learned from their past opens,
clicks and bookings. A simple model a marketer can check by hand:

- the customer's histogram: how many of their engagements (a notification opened, a link clicked or
  followed, a booking made) fell in each local hour of the day over the last 180 days;
- the segment's histogram: the same over all the company's contacts (the segment of a campaign's
  audience), Laplace-smoothed (+1 an hour) so no hour has zero probability;
- the score of hour h: (customer count[h] + K · segment share[h]) / (customer total + K), K = 5:
  with no history a customer gets the segment's best hour; after a few dozen engagements their own.

The best hour is the top score among the window's hours (ties: the earliest). `explain` says why in words.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.core.cache import cache
from django.db.models import Count
from django.db.models.functions import ExtractHour
from django.utils import timezone

from crm.models import Company, Contact, Event
from engage.policy.consent import contact_zone

ENGAGEMENT_TYPES = ("notification_opened", "message_clicked", "deeplink_followed", "booking_created")
LOOKBACK = dt.timedelta(days=180)
PRIOR_STRENGTH = 5.0
SEGMENT_CACHE_SECONDS = 600


def segment_hour_shares(*, company: Company, zone_name: str = "") -> list[float]:
    """The company's engagements per local hour (in `zone_name`, the company's by default), smoothed, as shares."""
    zone_name = zone_name or getattr(company, "timezone", "") or "UTC"
    key = f"sendtime:segment:{company.pk}:{zone_name}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    contact = Contact(timezone=zone_name, company=company)
    rows = (
        Event.objects.filter(
            company=company, type__in=ENGAGEMENT_TYPES, occurred_at__gte=timezone.now() - LOOKBACK
        )
        .annotate(hour=ExtractHour("occurred_at", tzinfo=contact_zone(contact=contact)))
        .values("hour").annotate(count=Count("id")).values_list("hour", "count")
    )
    counts = [1.0] * 24  # Laplace smoothing
    for hour, count in rows:
        counts[int(hour)] += count
    total = sum(counts)
    shares = [count / total for count in counts]
    cache.set(key, shares, SEGMENT_CACHE_SECONDS)
    return shares


def contact_hour_counts(*, company: Company, contacts: Iterable[Contact]) -> dict[int, list[int]]:
    """Each contact's engagements per local hour over the lookback (one query for the batch)."""
    contacts = {contact.pk: contact for contact in contacts}
    counts: dict[int, list[int]] = defaultdict(lambda: [0] * 24)
    events = Event.objects.filter(
        company=company, contact_id__in=list(contacts), type__in=ENGAGEMENT_TYPES,
        occurred_at__gte=timezone.now() - LOOKBACK,
    ).values_list("contact_id", "occurred_at")
    zones: dict[int, Any] = {}
    for contact_id, occurred_at in events:
        zone = zones.get(contact_id)
        if zone is None:
            zone = zones[contact_id] = contact_zone(contact=contacts[contact_id])
        counts[contact_id][occurred_at.astimezone(zone).hour] += 1
    return {contact_id: counts[contact_id] for contact_id in contacts}


def hour_scores(*, own: list[int], segment: list[float], prior_strength: float = PRIOR_STRENGTH) -> list[float]:
    total = sum(own)
    return [(own[hour] + prior_strength * segment[hour]) / (total + prior_strength) for hour in range(24)]


def best_hour(*, scores: list[float], window: tuple[int, int]) -> int:
    """The top-scoring hour in [start, end) (ties: the earliest)."""
    hours = range(window[0], window[1])
    return max(hours, key=lambda hour: (scores[hour], -hour))


def explain(*, own: list[int], segment: list[float], window: tuple[int, int]) -> str:
    """Why this hour, in a sentence."""
    hour = best_hour(scores=hour_scores(own=own, segment=segment), window=window)
    total = sum(own)
    segment_hour = best_hour(scores=segment, window=window)
    if total == 0:
        return f"{hour:02d}:00, the segment's best hour in the window (no engagement of this customer yet)."
    return (
        f"{hour:02d}:00: {own[hour]} of this customer's {total} opens, clicks and bookings were in that hour; "
        f"the segment's best is {segment_hour:02d}:00 (weight {PRIOR_STRENGTH:g} engagements)."
    )


def best_hours(*, company: Company, contacts: Iterable[Contact], window: tuple[int, int]) -> dict[int, int]:
    """Each contact's best local hour inside `window` (two queries for the batch; the segment's is cached)."""
    segment = segment_hour_shares(company=company)
    counts = contact_hour_counts(company=company, contacts=contacts)
    return {
        contact_id: best_hour(scores=hour_scores(own=own, segment=segment), window=window)
        for contact_id, own in counts.items()
    }
