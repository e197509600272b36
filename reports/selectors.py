"""The dashboard's numbers: cards and segment breakdowns read from the rollups through the `reports` database alias
(a read replica when DATABASE_REPLICA_URL is set), cached per company, card, period, dimension and the rollups'
watermark (so a refresh or any other filter is a different key). Operations reads the live ledger instead.

Who sees what: owners and Operations every card of their companies, Marketing the engagement card only
(`cards_for_role`); the company itself is always one the caller belongs to (the views and APIs scope it).
"""

from __future__ import annotations

import copy
import datetime as dt
import importlib
import math
import time
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db.models import Sum
from django.utils import timezone

from crm.models import Company, Membership
from engage.api import Campaign, Job, queue_stats, template_version_labels
from reports.rollups import aggregate
from reports.rollups.aggregate import COHORT_NAMES, local_today
from reports.rollups.models import (
    AIDaily,
    EngagementDaily,
    LeadDaily,
    LeadStageCount,
    LeadStageTimeDaily,
    RollupWatermark,
    WorkerDaily,
)

DB = "reports"
PERIODS = {"today": 1, "7d": 7, "30d": 30, "90d": 90}
DEFAULT_PERIOD = "7d"
MAX_POINTS = 31  # a series longer than this is summed into equal buckets of days
CACHE_SECONDS = 60

ENGAGEMENT = "engagement"
AI = "ai"
LEADS = "leads"
WORKERS = "workers"
OPERATIONS = "operations"
CARDS = (ENGAGEMENT, AI, LEADS, WORKERS, OPERATIONS)
ENGAGEMENT_METRICS = ("sent", "delivered", "opened", "clicked", "booked", "revenue", "opt_outs", "failed")
WORKER_METRICS = ("on_time", "late", "excused", "late_minutes")
# The segment dimensions each breakable card has: dimension -> the rollup's column.
DIMENSIONS = {
    ENGAGEMENT: {"channel": "channel", "template_version": "template_version_id", "campaign": "campaign_id",
                 "service_category": "service_category", "cohort": "cohort"},
    WORKERS: {"zone": "zone", "service_category": "service_category", "coached": "coached"},
}
ROLE_CARDS = {
    Membership.Role.OWNER: CARDS,
    Membership.Role.OPERATIONS: CARDS,
    Membership.Role.MARKETING: (ENGAGEMENT,),
}


# --- who and when ---------------------------------------------------------------------------------------------

def cards_for_role(role: str | None) -> tuple[str, ...]:
    return ROLE_CARDS.get(role or "", ())


def cards_for_user(*, user, company: Company) -> tuple[str, ...]:
    """The cards `user` may see of `company` (none when not a member; a superuser sees all)."""
    if user.is_superuser:
        return CARDS
    role = Membership.objects.filter(user=user, company=company).values_list("role", flat=True).first()
    return cards_for_role(role)


def period_days(*, company: Company, period: str, today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    if period not in PERIODS:
        raise ValidationError({"period": f"One of {', '.join(PERIODS)}."})
    last = today or local_today(company)
    return last - dt.timedelta(days=PERIODS[period] - 1), last


def previous_days(first: dt.date, last: dt.date) -> tuple[dt.date, dt.date]:
    span = (last - first).days + 1
    return first - dt.timedelta(days=span), first - dt.timedelta(days=1)


def data_as_of(*, company: Company) -> dt.datetime | None:
    return (RollupWatermark.objects.using(DB).filter(company_id=company.pk)
            .values_list("refreshed_at", flat=True).first())


# --- helpers --------------------------------------------------------------------------------------------------

def _sum(queryset, fields: tuple[str, ...]) -> dict[str, Any]:
    totals = queryset.aggregate(**{field: Sum(field) for field in fields})
    return {field: _plain(totals[field] or 0) for field in fields}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    return value


def _rate(part: float, whole: float) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def _days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


def downsample(*, days: list[dt.date], series: dict[str, list[float]], max_points: int = MAX_POINTS
               ) -> tuple[list[str], dict[str, list[float]]]:
    """Sum daily values into equal buckets of days so no series has more than `max_points` points; a bucket is
    labelled with its first day."""
    size = max(1, math.ceil(len(days) / max_points))
    labels = [days[n].isoformat() for n in range(0, len(days), size)]
    sampled = {name: [round(sum(values[n:n + size]), 2) for n in range(0, len(values), size)]
               for name, values in series.items()}
    return labels, sampled


def _daily(queryset, fields: tuple[str, ...], first: dt.date, last: dt.date) -> dict[str, list[float]]:
    rows = {row["local_date"]: row for row in queryset.values("local_date").annotate(
        **{field: Sum(field) for field in fields}).order_by("local_date")}
    days = _days(first, last)
    return {field: [_plain(rows.get(day, {}).get(field) or 0) for day in days] for field in fields}


def _series(queryset, fields, first, last) -> dict[str, Any]:
    labels, data = downsample(days=_days(first, last), series=_daily(queryset, fields, first, last))
    return {"labels": labels, "datasets": data, "bucket_days": max(1, math.ceil(((last - first).days + 1)
                                                                                  / MAX_POINTS))}


def _in(model, company: Company, first: dt.date, last: dt.date):
    return model.objects.using(DB).filter(company_id=company.pk, local_date__gte=first, local_date__lte=last)


def _cached(key_parts: tuple, build) -> dict:
    key = "reports:" + ":".join(str(part) for part in key_parts)
    found = cache.get(key)
    if found is None:
        found = build()
        cache.set(key, found, CACHE_SECONDS)
    return found


def _key(card: str, company: Company, period: str, *extra: Any, today: dt.date | None = None) -> tuple:
    as_of = data_as_of(company=company)
    return (card, company.pk, period, today or local_today(company), as_of.timestamp() if as_of else "never", *extra)


# --- cards ----------------------------------------------------------------------------------------------------

def card(*, company: Company, card: str, period: str = DEFAULT_PERIOD, today: dt.date | None = None) -> dict:
    """One card's numbers for `period`, compared with the period before; cached (see the module doc)."""
    builders = {ENGAGEMENT: _engagement, AI: _ai, LEADS: _leads, WORKERS: _workers, OPERATIONS: _operations}
    if card not in builders:
        raise ValidationError({"card": f"One of {', '.join(CARDS)}."})
    first, last = period_days(company=company, period=period, today=today)
    if card == OPERATIONS:  # live, not a rollup: never cached longer than a few seconds
        return _operations(company, first, last) | {"card": card, "period": period}

    def build() -> dict:
        result = builders[card](company, first, last)
        as_of = data_as_of(company=company)
        return {"card": card, "period": period, "first": first.isoformat(), "last": last.isoformat(),
                "data_as_of": as_of.isoformat() if as_of else None, **result}

    result = _cached(_key(card, company, period, today=today), build)
    if period == "today" and card in LIVE and last == local_today(company):
        result = _with_live(company, card, copy.deepcopy(result), last)
    return result


# --- live today -------------------------------------------------------------------------------------------------

LIVE_SECONDS = 10
# The cards whose today numbers add the raw rows stamped since the watermark: the aggregation that reads them (the
# refresh's own, so the definitions are the same) and the totals they add to.
LIVE = {
    ENGAGEMENT: (aggregate.engagement_rows, ENGAGEMENT_METRICS),
    AI: (aggregate.ai_rows, ("replies", "fallbacks", "safety_rejections", "sessions", "tokens")),
    LEADS: (aggregate.lead_rows, ("new", "won", "lost")),
}


def live_today(*, company: Company, card: str, today: dt.date) -> dict:
    """The card's numbers of the rows stamped today since the rollups' watermark (read up to now), cached
    LIVE_SECONDS under the watermark and the time slot: {"read_at", "since", "totals"}."""
    since = data_as_of(company=company)

    def build() -> dict:
        read_at = timezone.now()
        rows = LIVE[card][0](company=company, first=today, last=today, since=since, until=read_at)
        totals: dict[str, Any] = defaultdict(int)
        for row in rows:
            if card == AI:
                kind = {"ok": "replies", "rejected": "safety_rejections"}.get(row.outcome, "fallbacks")
                totals[kind] += row.sessions
                totals["sessions"] += row.sessions
                totals["tokens"] += row.tokens_in + row.tokens_out
            else:
                for metric in LIVE[card][1]:
                    totals[metric] += getattr(row, metric)
        return {"read_at": read_at.isoformat(), "since": since.isoformat() if since else None,
                "totals": {metric: _plain(totals[metric]) for metric in LIVE[card][1]}}

    slot = int(time.time()) // LIVE_SECONDS
    return _cached(("live", card, company.pk, today, since.timestamp() if since else "never", slot), build)


def _with_live(company: Company, card: str, result: dict, today: dt.date) -> dict:
    """Today's card: the rollup's numbers plus the live rows since its watermark; "data as of" is when those were
    read. The per-campaign/template/source tables and the average latency stay the rollup's."""
    live = live_today(company=company, card=card, today=today)
    for metric, extra in live["totals"].items():
        total = result["totals"][metric]
        total["value"] = round(total["value"] + extra, 2) if isinstance(extra, float) else total["value"] + extra
        total["change"] = (round(100 * (total["value"] - total["previous"]) / total["previous"], 1)
                           if total["previous"] else None)
        series = result["series"]["datasets"]
        if series.get(metric):
            series[metric][-1] = round(series[metric][-1] + extra, 2)
    value = {metric: total["value"] for metric, total in result["totals"].items()}
    if card == ENGAGEMENT:
        result["funnel"] = [{"step": step["step"], "value": value[step["step"]]} for step in result["funnel"]]
        result["rates"] = _engagement_rates(value)
    elif card == LEADS:
        result["win_rate"] = _rate(value["won"], value["won"] + value["lost"])
    result["data_as_of"], result["rollup_as_of"] = live["read_at"], result["data_as_of"]
    return result


def _compare(current: dict, previous: dict) -> dict:
    return {name: {"value": value, "previous": previous.get(name), "change": (
        round(100 * (value - previous[name]) / previous[name], 1) if previous.get(name) and value is not None
        else None)}
        for name, value in current.items()}


def _engagement(company: Company, first: dt.date, last: dt.date) -> dict:
    rows = _in(EngagementDaily, company, first, last)
    totals = _sum(rows, ENGAGEMENT_METRICS)
    previous = _sum(_in(EngagementDaily, company, *previous_days(first, last)), ENGAGEMENT_METRICS)
    by_campaign = list(rows.filter(campaign_id__gt=0).values("campaign_id").annotate(
        sent=Sum("sent"), booked=Sum("booked"), revenue=Sum("revenue")).order_by("-booked", "campaign_id")[:20])
    by_template = list(rows.filter(template_version_id__gt=0).values("template_version_id").annotate(
        sent=Sum("sent"), booked=Sum("booked"), revenue=Sum("revenue")).order_by("-booked", "template_version_id")[:20])
    for row in by_campaign + by_template:
        row["revenue"] = _plain(row["revenue"] or 0)
    names = dict(Campaign.objects.using(DB).filter(company_id=company.pk, pk__in=[
        row["campaign_id"] for row in by_campaign]).values_list("pk", "name"))
    for row in by_campaign:
        row["name"] = names.get(row["campaign_id"], f"#{row['campaign_id']}")
    labels = template_version_labels(company=company, ids=[row["template_version_id"] for row in by_template], using=DB)
    for row in by_template:
        row["name"] = labels.get(row["template_version_id"], f"#{row['template_version_id']}")
    return {
        "totals": _compare(totals, previous),
        "funnel": [{"step": step, "value": totals[step]} for step in ("sent", "delivered", "opened", "clicked",
                                                                      "booked")],
        "rates": _engagement_rates(totals),
        "series": _series(rows, ("sent", "delivered", "opened", "clicked", "booked"), first, last),
        "by_campaign": by_campaign,
        "by_template_version": by_template,
    }


def _engagement_rates(totals: dict) -> dict:
    return {"delivered": _rate(totals["delivered"], totals["sent"]),
            "opened": _rate(totals["opened"], totals["delivered"]),
            "clicked": _rate(totals["clicked"], totals["opened"]),
            "booked": _rate(totals["booked"], totals["clicked"])}


def _ai(company: Company, first: dt.date, last: dt.date) -> dict:
    rows = _in(AIDaily, company, first, last)
    fields = ("sessions", "latency_ms_sum", "latency_count", "tokens_in", "tokens_out")

    def summary(queryset) -> dict:
        by_outcome = {row["outcome"]: row["n"] for row in queryset.values("outcome").annotate(n=Sum("sessions"))}
        sums = _sum(queryset, fields)
        return {
            "replies": by_outcome.get("ok", 0),
            "fallbacks": by_outcome.get("error", 0) + by_outcome.get("fallback", 0),
            "safety_rejections": by_outcome.get("rejected", 0),
            "sessions": sums["sessions"],
            "avg_latency_ms": round(sums["latency_ms_sum"] / sums["latency_count"]) if sums["latency_count"] else None,
            "tokens": sums["tokens_in"] + sums["tokens_out"],
        }

    current = summary(rows)
    previous = summary(_in(AIDaily, company, *previous_days(first, last)))

    def reasons(outcomes: tuple[str, ...]) -> list[dict]:
        return list(rows.filter(outcome__in=outcomes).values("reason").annotate(count=Sum("sessions"))
                    .order_by("-count", "reason")[:15])

    daily = rows.values("local_date", "outcome").annotate(n=Sum("sessions"))
    per_day: dict[str, dict[dt.date, int]] = defaultdict(lambda: defaultdict(int))
    for row in daily:
        name = {"ok": "replies", "rejected": "safety_rejections"}.get(row["outcome"], "fallbacks")
        per_day[name][row["local_date"]] += row["n"]
    days = _days(first, last)
    labels, datasets = downsample(days=days, series={
        name: [per_day[name].get(day, 0) for day in days] for name in ("replies", "fallbacks", "safety_rejections")})
    return {"totals": _compare(current, previous), "fallback_reasons": reasons(("error", "fallback")),
            "rejection_reasons": reasons(("rejected",)), "series": {"labels": labels, "datasets": datasets}}


def _leads(company: Company, first: dt.date, last: dt.date) -> dict:
    rows = _in(LeadDaily, company, first, last)
    totals = _sum(rows, ("new", "won", "lost"))
    previous = _sum(_in(LeadDaily, company, *previous_days(first, last)), ("new", "won", "lost"))
    by_source = list(rows.values("source").annotate(new=Sum("new"), won=Sum("won"), lost=Sum("lost"))
                     .order_by("-new", "source")[:20])
    stages = list(LeadStageCount.objects.using(DB).filter(company_id=company.pk).order_by(
        "pipeline_name", "stage_order").values("pipeline_name", "stage_name", "kind", "leads"))
    return {"totals": _compare(totals, previous), "by_source": by_source, "stages": stages,
            "time_in_stage": time_in_stage(company=company, first=first, last=last),
            "win_rate": _rate(totals["won"], totals["won"] + totals["lost"]),
            "series": _series(rows, ("new", "won", "lost"), first, last)}


def percentile(histogram: dict[int, int], q: float) -> int | None:
    """The nearest-rank q-th quantile (0 < q <= 1) of values given as {value: how many}: the smallest value with at
    least ceil(q * n) values at or below it."""
    n = sum(histogram.values())
    if not n:
        return None
    rank, seen = math.ceil(q * n), 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return value
    return None


def time_in_stage(*, company: Company, first: dt.date, last: dt.date) -> list[dict]:
    """Per stage, the stays that ended in the period (leads moved out of it): how many, and the median and p90 of
    their local days in the stage; in pipeline and stage order (stages since deleted last, named by id)."""
    histograms: dict[int, dict[int, int]] = defaultdict(dict)
    for row in (_in(LeadStageTimeDaily, company, first, last).values("stage_id", "days")
                .annotate(n=Sum("stays")).order_by()):
        histograms[row["stage_id"]][row["days"]] = row["n"]
    names = {row["stage_id"]: row for row in LeadStageCount.objects.using(DB).filter(
        company_id=company.pk, stage_id__in=list(histograms)).values("stage_id", "pipeline_name", "stage_name",
                                                                     "stage_order")}
    rows = []
    for stage_id, histogram in histograms.items():
        named = names.get(stage_id, {"pipeline_name": "", "stage_name": f"#{stage_id}", "stage_order": 10_000})
        rows.append({"stage_id": stage_id, "pipeline_name": named["pipeline_name"], "stage_name": named["stage_name"],
                     "order": named["stage_order"], "stays": sum(histogram.values()),
                     "median_days": percentile(histogram, 0.5), "p90_days": percentile(histogram, 0.9)})
    rows.sort(key=lambda row: (row["pipeline_name"] == "", row["pipeline_name"], row["order"], row["stage_id"]))
    for row in rows:
        del row["order"]
    return rows


def _burnout_open(company: Company) -> int | None:
    """The burnout alerts' card slot: `reports.burnout.selectors.open_alert_count(company)` when that module
    exists (built beside this one), else None (the slot shows nothing)."""
    try:
        module = importlib.import_module("reports.burnout.selectors")
    except ImportError:
        return None
    return module.open_alert_count(company)


def _workers(company: Company, first: dt.date, last: dt.date) -> dict:
    rows = _in(WorkerDaily, company, first, last)
    totals = _sum(rows, WORKER_METRICS)
    previous = _sum(_in(WorkerDaily, company, *previous_days(first, last)), WORKER_METRICS)

    def on_time_rate(values: dict) -> float | None:
        return _rate(values["on_time"], values["on_time"] + values["late"])

    days = _days(first, last)
    daily = _daily(rows, ("on_time", "late"), first, last)
    labels, sampled = downsample(days=days, series=daily)
    rate = [_rate(on, on + late) for on, late in zip(sampled["on_time"], sampled["late"], strict=True)]
    by_zone = list(rows.values("zone").annotate(on_time=Sum("on_time"), late=Sum("late")).order_by("-late", "zone")[:20])
    for row in by_zone:
        row["on_time_rate"] = on_time_rate(row)
    split = {row["coached"]: row for row in rows.values("coached").annotate(on_time=Sum("on_time"),
                                                                             late=Sum("late"))}
    current = {**totals, "on_time_rate": on_time_rate(totals),
               "on_time_rate_coached": on_time_rate(split[True]) if True in split else None,
               "on_time_rate_not_coached": on_time_rate(split[False]) if False in split else None}
    before = {**previous, "on_time_rate": on_time_rate(previous)}
    return {"totals": _compare(current, before), "late_by_zone": by_zone,
            "series": {"labels": labels, "datasets": {"on_time_rate": rate, **sampled}},
            "burnout_alerts_open": _burnout_open(company)}


def _operations(company: Company, first: dt.date, last: dt.date) -> dict:
    def build() -> dict:
        stats = queue_stats(company=company)
        failures = list(_in(EngagementDaily, company, first, last).filter(failed__gt=0).values("channel").annotate(
            failed=Sum("failed"), sent=Sum("sent")).order_by("-failed", "channel"))
        for row in failures:
            row["failure_rate"] = _rate(row["failed"], row["sent"])
        oldest_dead = (Job.objects.filter(company_id=company.pk, status=Job.Status.DEAD)
                       .order_by("updated_at").values_list("updated_at", flat=True).first())
        return {"first": first.isoformat(), "last": last.isoformat(), "data_as_of": timezone.now().isoformat(),
                "queue": {"queued": stats["queued"], "processing": stats["processing"],
                          "oldest_queued_age_seconds": stats["oldest_queued_age_seconds"],
                          "dead_letters": stats["dlq"], "oldest_dead_letter_at": (
                              oldest_dead.isoformat() if oldest_dead else None)},
                "delivery_failures": failures}

    return _cached(("operations", company.pk, first, last, int(time.time()) // 10), build)


# --- breakdowns -----------------------------------------------------------------------------------------------

def breakdown(*, company: Company, card: str, dimension: str, period: str = DEFAULT_PERIOD,
              today: dt.date | None = None) -> dict:
    """The card's metrics by one segment dimension for the period (one row per segment value, biggest first)."""
    if card not in DIMENSIONS:
        raise ValidationError({"card": f"Breakdowns exist for {', '.join(DIMENSIONS)}."})
    if dimension not in DIMENSIONS[card]:
        raise ValidationError({"dimension": f"One of {', '.join(DIMENSIONS[card])} for {card}."})
    first, last = period_days(company=company, period=period, today=today)

    def build() -> dict:
        rows = list(breakdown_rows(company=company, card=card, dimension=dimension, first=first, last=last))
        as_of = data_as_of(company=company)
        return {"card": card, "dimension": dimension, "period": period, "first": first.isoformat(),
                "last": last.isoformat(), "data_as_of": as_of.isoformat() if as_of else None, "rows": rows}

    return _cached(_key(f"breakdown-{card}", company, period, dimension, today=today), build)


def breakdown_rows(*, company: Company, card: str, dimension: str, first: dt.date, last: dt.date,
                   by_day: bool = False) -> Iterator[dict]:
    """Rows of a breakdown (by_day: one per local day and segment value, for the CSV)."""
    model, metrics = (EngagementDaily, ENGAGEMENT_METRICS) if card == ENGAGEMENT else (WorkerDaily, WORKER_METRICS)
    column = DIMENSIONS[card][dimension]
    group = ("local_date", column) if by_day else (column,)
    order = ("local_date", column) if by_day else (f"-{metrics[0]}", column)
    queryset = (_in(model, company, first, last).values(*group).annotate(**{m: Sum(m) for m in metrics})
                .order_by(*order))
    labels = {}
    if dimension == "template_version":  # "<template name> v<N>": the names in one query, not one per row
        labels = template_version_labels(company=company, using=DB, ids=_in(model, company, first, last).filter(
            template_version_id__gt=0).values_list(column, flat=True).order_by().distinct())
    for row in queryset.iterator(chunk_size=2000) if by_day else queryset:
        value = row.pop(column)
        out = {"segment": labels.get(value) or _segment_label(dimension, value)}
        if by_day:
            out = {"local_date": row.pop("local_date").isoformat(), **out}
        out.update({metric: _plain(row[metric] or 0) for metric in metrics})
        if card == ENGAGEMENT:
            out["booked_rate"] = _rate(out["booked"], out["sent"])
        else:
            out["on_time_rate"] = _rate(out["on_time"], out["on_time"] + out["late"])
        yield out


def _segment_label(dimension: str, value: Any) -> str:
    if dimension == "coached":
        return "coached" if value else "not coached"
    if dimension == "template_version":
        return f"#{value}" if value else "none"  # a version since deleted
    if dimension == "campaign":
        return str(value) if value else "none"
    if dimension == "cohort":
        return value if value in COHORT_NAMES else (value or "none")
    return value or "none"
