"""Experiments' reads: the results (one GROUP BY over the assignments, statistics in engage.experiments.statistics),
the uplift over time, the plain-language verdict, and the pre-launch plan (minimum detectable effect, days)."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from django.db.models import Count, F, FloatField, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from engage.experiments import statistics
from engage.experiments.models import (
    Experiment,
    ExperimentAssignment,
    ExperimentDailySums,
    ExperimentPhase,
    ExperimentVariant,
    Metric,
)
from engage.messaging.models import Message

# How a rate reads in a sentence: "+2.1 bookings per 100 reminders".
# The verdict is written in the active language (the console's staff member's); the API asks for English.
VERDICT_NOUNS = {
    Metric.BOOKING_7D: (gettext_noop("bookings"), gettext_noop("per 100 reminders"), 100),
    Metric.REPLY_24H: (gettext_noop("replies"), gettext_noop("per 100 messages"), 100),
    Metric.ON_TIME_28D: (gettext_noop("points of on-time rate"), "", 100),
    Metric.OPT_OUT: (gettext_noop("opt-outs"), gettext_noop("per 100 messages"), 100),
    Metric.SAFETY_REJECTION: (gettext_noop("safety rejections"), gettext_noop("per 100 units"), 100),
}


def experiments_for(*, company: Any) -> QuerySet[Experiment]:
    return Experiment.objects.filter(company=company).select_related("campaign").prefetch_related("variants")


def _phase_for_results(experiment: Experiment, phase_number: int | None) -> ExperimentPhase | None:
    phases = experiment.phases.order_by("-number")
    if phase_number is not None:
        return phases.filter(number=phase_number).first()
    return phases.first()


SUM_FIELDS = ("units", "measured", "total", "total_squares", "pre_total", "pre_squares", "cross", "opted_out",
              "safety", "safety_squares")


def _rollup_sums(*, phase: ExperimentPhase) -> list[dict[str, Any]]:
    """The refresh's rollup of the phase (engage.experiments.models.ExperimentDailySums)."""
    return list(
        ExperimentDailySums.objects.filter(phase=phase).values("variant_id", "day", *SUM_FIELDS).order_by("day", "variant_id")
    )


def phase_daily_sums(*, phase: ExperimentPhase) -> list[dict[str, Any]]:
    """Per variant and day of exposure: units, and the sums the statistics need (one GROUP BY over the phase's
    assignments: what the refresh rolls up)."""
    outcome = F("outcome_value")
    pre = Coalesce("pre_value", 0.0, output_field=FloatField())
    return list(
        ExperimentAssignment.objects.filter(phase=phase)
        .annotate(day=TruncDate("exposed_at"))
        .values("variant_id", "day")
        .annotate(
            units=Count("id"),
            measured=Count("outcome_value"),
            total=Coalesce(Sum(outcome), 0.0, output_field=FloatField()),
            total_squares=Coalesce(Sum(outcome * outcome), 0.0, output_field=FloatField()),
            pre_total=Coalesce(Sum(pre, filter=Q(outcome_value__isnull=False)), 0.0, output_field=FloatField()),
            pre_squares=Coalesce(Sum(pre * pre, filter=Q(outcome_value__isnull=False)), 0.0, output_field=FloatField()),
            cross=Coalesce(Sum(pre * outcome), 0.0, output_field=FloatField()),
            opted_out=Count("id", filter=Q(opted_out=True)),
            safety=Coalesce(Sum("safety_rejections"), 0),
            safety_squares=Coalesce(Sum(F("safety_rejections") * F("safety_rejections")), 0),
        )
        .order_by("day", "variant_id")
    )


def _verdict(*, metric: str, variant: str, comparison: statistics.Comparison) -> str:
    noun, per, scale = VERDICT_NOUNS[metric]
    uplift, low, high = (float(value) * scale for value in (comparison.uplift, comparison.uplift_low, comparison.uplift_high))
    text = gettext("%(variant)s: %(uplift)s %(unit)s (95%% CI %(low)s to %(high)s)") % {
        "variant": variant, "uplift": f"{uplift:+.1f}", "low": f"{low:+.1f}", "high": f"{high:+.1f}",
        "unit": gettext(noun) + (" " + gettext(per) if per else ""),
    }
    if comparison.uplift_low > 0:
        return gettext("%(comparison)s: better than control.") % {"comparison": text}
    if comparison.uplift_high < 0:
        return gettext("%(comparison)s: worse than control.") % {"comparison": text}
    return gettext("%(comparison)s: no difference shown yet.") % {"comparison": text}


def _number(value: Any) -> float | None:
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else round(value, 6)


def _comparison_dict(comparison: statistics.Comparison) -> dict[str, Any]:
    return {
        "control_mean": _number(comparison.control_mean),
        "variant_mean": _number(comparison.variant_mean),
        "uplift": _number(comparison.uplift),
        "uplift_low": _number(comparison.uplift_low),
        "uplift_high": _number(comparison.uplift_high),
        "relative_uplift": _number(comparison.relative),
        "relative_low": _number(comparison.relative_low),
        "relative_high": _number(comparison.relative_high),
        "is_significant": bool(comparison.is_significant),
        "is_cuped": comparison.is_cuped,
    }


def experiment_results(*, experiment: Experiment, phase_number: int | None = None) -> dict[str, Any]:
    """The experiment's results for a phase (the latest by default): per variant counts and rates, each variant
    against control (always-valid interval, CUPED where a pre-period exists), the sample-ratio check (results
    hidden below p = 0.001), guardrail breaches, the uplift over time and the verdict in one sentence."""
    phase = _phase_for_results(experiment, phase_number)
    variants = {variant.pk: variant for variant in experiment.variants.all()}
    control = next((v for v in variants.values() if v.kind == ExperimentVariant.Kind.CONTROL), None)
    answer: dict[str, Any] = {
        "experiment_id": experiment.pk, "name": experiment.name, "status": experiment.status,
        "primary_metric": experiment.primary_metric, "phase": phase.number if phase else None,
        "outcomes_refreshed_at": experiment.outcomes_refreshed_at, "variants": [], "comparisons": [],
        "timeline": [], "srm": None, "is_hidden": False, "verdict": "", "guardrail_breaches": [],
    }
    if phase is None or control is None:
        answer["verdict"] = "Not started: no results yet."
        return answer
    # The rollup once the outcomes were refreshed (what the hourly job leaves); before that, straight from
    # the assignments (a new experiment has few).
    rows = _rollup_sums(phase=phase) if experiment.outcomes_refreshed_at else phase_daily_sums(phase=phase)
    weights = {int(variant_id): weight for variant_id, weight in phase.weights.items()}
    fields = SUM_FIELDS
    days = sorted({row["day"] for row in rows})
    cumulative: dict[int, dict[str, float]] = {variant_id: dict.fromkeys(fields, 0.0) for variant_id in weights}
    by_day: dict[date, dict[int, dict[str, Any]]] = defaultdict(dict)
    for row in rows:
        by_day[row["day"]][row["variant_id"]] = row
    use_cuped = experiment.use_cuped
    tuning = experiment.tuning_units
    timeline = []
    for day in days:
        for variant_id, row in by_day[day].items():
            for name in fields:
                cumulative.setdefault(variant_id, dict.fromkeys(fields, 0.0))[name] += float(row[name] or 0)
        control_sums = _sums(cumulative[control.pk])
        point: dict[str, Any] = {"day": day.isoformat()}
        for variant_id in weights:
            if variant_id == control.pk:
                continue
            comparison = statistics.compare(
                control_sums, _sums(cumulative[variant_id]), use_cuped=use_cuped and _has_pre(cumulative),
                tuning_units=tuning,
            )
            point[str(variant_id)] = {
                "uplift": _number(comparison.uplift), "low": _number(comparison.uplift_low),
                "high": _number(comparison.uplift_high),
            }
        timeline.append(point)
    ordered = sorted(weights)
    counts = [int(cumulative[variant_id]["units"]) for variant_id in ordered]
    p_value = statistics.sample_ratio_p_value(counts, [weights[variant_id] for variant_id in ordered])
    is_mismatch = p_value < statistics.SRM_P_THRESHOLD
    answer["srm"] = {
        "p_value": round(p_value, 8), "is_mismatch": is_mismatch, "counts": dict(zip(map(str, ordered), counts, strict=True)),
        "expected_shares": {str(v): weights[v] / max(sum(weights.values()), 1) for v in ordered},
    }
    for variant_id in ordered:
        sums = cumulative[variant_id]
        variant = variants.get(variant_id)
        answer["variants"].append({
            "id": variant_id, "name": variant.name if variant else str(variant_id),
            "kind": variant.kind if variant else "", "weight": weights[variant_id], "units": int(sums["units"]),
            "measured": int(sums["measured"]), "total": sums["total"],
            "rate": _number(sums["total"] / sums["measured"]) if sums["measured"] else None,
            "opted_out": int(sums["opted_out"]), "safety_rejections": int(sums["safety"]),
        })
    if is_mismatch:
        answer["is_hidden"] = True
        answer["verdict"] = gettext(
            "Results hidden: the split does not match the weights (sample-ratio mismatch, p = %(p_value)s). "
            "Something assigns or records one variant more than another; fix it before reading any uplift."
        ) % {"p_value": f"{p_value:.2g}"}
        return answer
    verdicts = []
    for variant_id in ordered:
        if variant_id == control.pk:
            continue
        variant_name = variants[variant_id].name if variant_id in variants else str(variant_id)
        comparison = statistics.compare(
            _sums(cumulative[control.pk]), _sums(cumulative[variant_id]),
            use_cuped=use_cuped and _has_pre(cumulative), tuning_units=tuning,
        )
        entry = {"variant_id": variant_id, "variant": variant_name, **_comparison_dict(comparison), "guardrails": {}}
        for guardrail in experiment.guardrails:
            guard = statistics.compare(
                _guardrail_sums(cumulative[control.pk], guardrail), _guardrail_sums(cumulative[variant_id], guardrail),
                tuning_units=tuning,
            )
            is_breached = statistics.guardrail_breached(guard, higher_is_worse=True)
            entry["guardrails"][guardrail] = {**_comparison_dict(guard), "is_breached": is_breached}
            if is_breached:
                answer["guardrail_breaches"].append({"variant": variant_name, "guardrail": guardrail})
        entry["verdict"] = _verdict(metric=experiment.primary_metric, variant=variant_name, comparison=comparison)
        verdicts.append(entry["verdict"])
        answer["comparisons"].append(entry)
    answer["timeline"] = timeline
    breaches = [gettext("Warning: %(variant)s breaches the %(guardrail)s.") % {
        "variant": b["variant"], "guardrail": str(Metric(b["guardrail"]).label).lower()} for b in answer["guardrail_breaches"]]
    answer["verdict"] = " ".join(verdicts + breaches)
    return answer


def _has_pre(cumulative: dict[int, dict[str, float]]) -> bool:
    return any(sums["pre_squares"] > 0 for sums in cumulative.values())


def _sums(values: dict[str, float]) -> statistics.Sums:
    return statistics.Sums(
        n=values["measured"], total=values["total"], total_squares=values["total_squares"],
        pre_total=values["pre_total"], pre_squares=values["pre_squares"], cross=values["cross"],
    )


def _guardrail_sums(values: dict[str, float], guardrail: str) -> statistics.Sums:
    if guardrail == Metric.OPT_OUT:
        return statistics.Sums(n=values["units"], total=values["opted_out"], total_squares=values["opted_out"])
    return statistics.Sums(n=values["units"], total=values["safety"], total_squares=values["safety_squares"])


def experiment_plan(*, experiment: Experiment, lookback_days: int = 28) -> dict[str, Any]:
    """Before launch: today's volume (distinct people messaged a day by the experiment's agent over the last four
    weeks), the minimum detectable effect after 7, 14 and 28 days, and the days to detect a 10% relative uplift."""

    since = timezone.now() - timedelta(days=lookback_days)
    variants = list(experiment.variants.all())
    total_weight = sum(v.weight for v in variants) or 1
    control = next((v for v in variants if v.kind == ExperimentVariant.Kind.CONTROL), None)
    control_share = (control.weight if control else total_weight / 2) / total_weight
    messages = Message.objects.filter(
        company_id=experiment.company_id, direction=Message.Direction.OUTBOUND, created_at__gte=since,
        agent_type={"campaign": "smartengage", "coaching": "coachnova", "ai_replies": "sales"}[experiment.applies_to],
    )
    daily_units = messages.values("contact_id").distinct().count() / lookback_days
    baseline, is_measured = _baseline_rate(experiment=experiment, since=since)
    variance = statistics.bernoulli_variance(baseline) if experiment.primary_metric != Metric.ON_TIME_28D else 0.05
    plan: dict[str, Any] = {
        "daily_units": round(daily_units, 1), "baseline": round(baseline, 4), "is_baseline_measured": is_measured, "control_share": round(control_share, 3),
        "minimum_detectable_effect": {},
    }
    for days in (7, 14, 28):
        units = daily_units * days * control_share
        mde = statistics.minimum_detectable_effect(
            baseline_mean=baseline, baseline_variance=variance, units_per_arm=units, tuning_units=experiment.tuning_units
        )
        plan["minimum_detectable_effect"][days] = None if math.isinf(mde) else round(mde, 4)
    target = max(baseline * 0.10, 0.005)
    plan["target_effect"] = round(target, 4)
    plan["days_to_target"] = statistics.days_to_detect(
        effect=target, baseline_mean=baseline, baseline_variance=variance, daily_units=daily_units,
        arm_share=control_share, tuning_units=experiment.tuning_units,
    )
    return plan


def _baseline_rate(*, experiment: Experiment, since: Any) -> tuple[float, bool]:
    """The primary metric's rate in control since `since` (measured: True), or an assumed 10% before any data."""
    measured = ExperimentAssignment.objects.filter(
        phase__experiment=experiment, variant__kind=ExperimentVariant.Kind.CONTROL, exposed_at__gte=since,
        outcome_value__isnull=False,
    ).aggregate(units=Count("id"), total=Sum("outcome_value"))
    if measured["units"]:
        return float(measured["total"] or 0) / measured["units"], True
    return 0.10, False
