"""Experiments' writes: start, stop, a change of weights (a new phase), assignment at first exposure, and the
outcome snapshot the results read."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Avg, Case, Count, Exists, F, FloatField, OuterRef, Q, Subquery, Value, When
from django.db.models.functions import Cast, Coalesce
from django.db.models.signals import post_delete, post_save
from django.utils import timezone
from django.utils.translation import gettext_noop

from crm.models import Booking, Customer, Event, Lead, Worker
from engage.experiments.models import (
    Experiment,
    ExperimentAssignment,
    ExperimentDailySums,
    ExperimentPhase,
    ExperimentSettings,
    ExperimentVariant,
    Metric,
    Unit,
)
from engage.experiments.selectors import phase_daily_sums
from engage.ledger.services import job_enqueue
from engage.messaging.models import Message

BUCKETS = 10000
HOLDOUT = "holdout"  # what assignments_for answers for a unit in the company's holdout


def unit_bucket(*, salt: str, experiment_id: int | str, unit_id: int) -> int:
    """sha256(f"{salt}:{experiment}:{unit}") mod 10000: the same on every process, machine and restart."""
    digest = hashlib.sha256(f"{salt}:{experiment_id}:{unit_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def experiment_settings_for(*, company: Any) -> ExperimentSettings:
    settings, _ = ExperimentSettings.objects.get_or_create(company=company)
    return settings


def holdout_contains(*, settings: ExperimentSettings, unit: str, unit_id: int) -> bool:
    """The company-wide holdout: the same units for every experiment (its own salt, not an experiment's)."""
    if not settings.is_holdout_enabled:
        return False
    bucket = unit_bucket(salt=settings.holdout_salt, experiment_id=f"holdout:{unit}", unit_id=unit_id)
    return bucket < int(Decimal(settings.holdout_percent) * BUCKETS / 100)


def variant_for_bucket(*, bucket: int, weights: list[tuple[int, int]]) -> int | None:
    """The variant id whose share of the 10,000 buckets holds `bucket` (weights in variant id order)."""
    total = sum(weight for _, weight in weights)
    if total <= 0:
        return None
    edge = 0
    for variant_id, weight in weights:
        edge += weight
        if bucket * total < edge * BUCKETS:
            return variant_id
    return None


def _phase_weights(phase: ExperimentPhase) -> list[tuple[int, int]]:
    return sorted((int(variant_id), int(weight)) for variant_id, weight in phase.weights.items())


def experiment_phase_current(*, experiment: Experiment) -> ExperimentPhase | None:
    return experiment.phases.filter(ended_at__isnull=True).order_by("-number").first()


def experiment_update(*, experiment: Experiment, **fields: Any) -> Experiment:
    """Change a draft experiment's setup; a running or stopped one refuses (ValidationError), changing nothing."""
    with transaction.atomic():
        locked = Experiment.objects.select_for_update().get(pk=experiment.pk)
        if locked.status != Experiment.Status.DRAFT:
            raise ValidationError(gettext_noop("A %(status)s experiment cannot be edited."), params={"status": locked.status})
        for name, value in fields.items():
            setattr(locked, name, value)
        locked.full_clean()
        locked.save()
    return locked


def _variants_check(variants: list[ExperimentVariant]) -> None:
    if len(variants) < 2:
        raise ValidationError(gettext_noop("An experiment needs a control and at least one variant."))
    if sum(1 for variant in variants if variant.kind == ExperimentVariant.Kind.CONTROL) != 1:
        raise ValidationError(gettext_noop("An experiment needs exactly one control."))
    if sum(variant.weight for variant in variants) <= 0:
        raise ValidationError(gettext_noop("At least one variant needs a weight."))


def experiment_start(*, experiment: Experiment) -> Experiment:
    """Draft → running: checks the setup and opens phase 1."""
    with transaction.atomic():
        locked = Experiment.objects.select_for_update().get(pk=experiment.pk)
        if locked.status != Experiment.Status.DRAFT:
            raise ValidationError(gettext_noop("Only a draft experiment starts (this one is %(status)s)."),
                                  params={"status": locked.status})
        locked.full_clean()
        variants = list(locked.variants.all())
        _variants_check(variants)
        for variant in variants:
            variant.full_clean()
        if locked.campaign_id and Experiment.objects.filter(
            campaign_id=locked.campaign_id, status=Experiment.Status.RUNNING
        ).exists():
            raise ValidationError({"campaign": gettext_noop("Another experiment is running on this campaign.")})
        now = timezone.now()
        ExperimentPhase.objects.create(
            experiment=locked, number=1, weights={str(v.pk): v.weight for v in variants}, started_at=now
        )
        locked.status, locked.started_at = Experiment.Status.RUNNING, now
        locked.save(update_fields=["status", "started_at", "updated_at"])
    return locked


def experiment_stop(*, experiment: Experiment) -> Experiment:
    """Running → stopped: no new assignments; the results stay readable."""
    with transaction.atomic():
        locked = Experiment.objects.select_for_update().get(pk=experiment.pk)
        if locked.status != Experiment.Status.RUNNING:
            raise ValidationError(gettext_noop("Only a running experiment stops (this one is %(status)s)."),
                                  params={"status": locked.status})
        now = timezone.now()
        locked.status, locked.stopped_at = Experiment.Status.STOPPED, now
        locked.save(update_fields=["status", "stopped_at", "updated_at"])
    return locked


def experiment_weights_change(*, experiment: Experiment, weights: dict[int, int]) -> ExperimentPhase:
    """New weights for a running experiment: the current phase ends and a new one starts with fresh assignments."""
    with transaction.atomic():
        locked = Experiment.objects.select_for_update().get(pk=experiment.pk)
        if locked.status != Experiment.Status.RUNNING:
            raise ValidationError(gettext_noop(
                "Weights change through a new phase only while running; edit a draft directly."))
        variants = {variant.pk: variant for variant in locked.variants.all()}
        if set(weights) != set(variants) or any(not isinstance(w, int) or w < 0 for w in weights.values()):
            raise ValidationError({"weights": gettext_noop(
                "A whole, non-negative weight for each variant of the experiment.")})
        for variant_id, weight in weights.items():
            variants[variant_id].weight = weight
        _variants_check(list(variants.values()))
        current = experiment_phase_current(experiment=locked)
        now = timezone.now()
        number = 1
        if current is not None:
            current.ended_at = now
            current.save(update_fields=["ended_at"])
            number = current.number + 1
        ExperimentVariant.objects.bulk_update(list(variants.values()), ["weight"])
        return ExperimentPhase.objects.create(
            experiment=locked, number=number, weights={str(k): v for k, v in weights.items()}, started_at=now
        )


def experiment_running_for_campaign(*, campaign_id: int) -> Experiment | None:
    return Experiment.objects.filter(campaign_id=campaign_id, status=Experiment.Status.RUNNING).first()


def _holdout_settings(experiment: Experiment) -> ExperimentSettings | None:
    """The company's holdout settings, or None where the holdout does not apply: AI replies answer a
    question the lead asked (withholding the answer is no "no engagement"); their control is the current prompt."""
    if experiment.applies_to == Experiment.AppliesTo.AI_REPLIES:
        return None
    return experiment_settings_for(company=experiment.company)


def assignments_for(
    *, experiment: Experiment, unit_ids: Iterable[int]
) -> dict[int, ExperimentAssignment | str]:
    """Each unit's assignment in the experiment's current phase, written at its first exposure; HOLDOUT for the
    company's holdout (checked first: no assignment, no engagement from the experiment).

    The variant is a pure function of (phase salt, experiment, unit), and the row is inserted with
    ON CONFLICT DO NOTHING on (phase, unit): concurrent batches and other processes read back the
    same single row, so a unit never sees two variants of a phase.
    """
    # Sorted: concurrent batches insert overlapping units in the same order, so their ON CONFLICT waits
    # cannot deadlock (two multi-row INSERTs taking the same keys in opposite orders would).
    unit_ids = sorted({int(unit_id) for unit_id in unit_ids})
    phase = experiment_phase_current(experiment=experiment)
    if phase is None or experiment.status != Experiment.Status.RUNNING:
        return {}
    settings = _holdout_settings(experiment)
    answer: dict[int, ExperimentAssignment | str] = {}
    candidates = []
    for unit_id in unit_ids:
        if settings is not None and holdout_contains(settings=settings, unit=experiment.unit, unit_id=unit_id):
            answer[unit_id] = HOLDOUT
        else:
            candidates.append(unit_id)
    weights = _phase_weights(phase)
    now = timezone.now()
    rows = []
    for unit_id in candidates:
        bucket = unit_bucket(salt=phase.salt, experiment_id=experiment.pk, unit_id=unit_id)
        variant_id = variant_for_bucket(bucket=bucket, weights=weights)
        if variant_id is not None:
            rows.append(ExperimentAssignment(
                company_id=experiment.company_id, phase=phase, variant_id=variant_id, unit_id=unit_id, bucket=bucket,
                exposed_at=now,
            ))
    if rows:
        ExperimentAssignment.objects.bulk_create(rows, ignore_conflicts=True)
        for assignment in ExperimentAssignment.objects.filter(phase=phase, unit_id__in=candidates).select_related(
            "variant"
        ):
            answer[assignment.unit_id] = assignment
    return answer


@dataclass(frozen=True)
class Exposure:
    """What an experiment decides for one unit: kept out (holdout), or its variant (and its stored assignment)."""

    is_holdout: bool
    experiment_id: int
    assignment_id: int | None = None
    variant_id: int | None = None
    variant_kind: str = ""
    template_version: Any = None  # a PromptTemplateVersion (with its template) for template-version variants
    settings: dict | None = None


def experiment_exposures(*, campaign_id: int, unit_ids: Iterable[int], record: bool = True) -> dict[int, Exposure]:
    """The running experiment of a campaign, for a batch of its customers: HOLDOUT members and each other
    unit's variant. `record` writes the assignments (a real run: the exposure); a dry run only previews
    (the same deterministic variants, nothing stored). {} when no experiment runs on the campaign."""
    experiment = experiment_running_for_campaign(campaign_id=campaign_id)
    if experiment is None:
        return {}
    return _exposures(experiment=experiment, unit_ids=unit_ids, record=record)


# Per-process cache of "does this company run an experiment on AI replies?": the reply path asks it on
# every reply, so a company with none pays no statement for experiments ({company id: (expires at,
# monotonic; answer)}). An Experiment saved or deleted in this process clears it at once (the signals
# below, connected in EngageConfig.ready); one started in another process counts within 10 seconds.
REPLY_EXPERIMENT_CACHE_SECONDS = 10.0
_reply_running: dict[int, tuple[float, bool]] = {}
_reply_running_lock = threading.Lock()


def reply_experiment_cache_clear(**kwargs: Any) -> None:
    with _reply_running_lock:
        _reply_running.clear()


def reply_experiment_cache_connect() -> None:
    for signal in (post_save, post_delete):
        signal.connect(
            reply_experiment_cache_clear, sender=Experiment,
            dispatch_uid=f"reply_experiment_cache_clear_{signal is post_save}",
        )


def reply_experiment_running(*, company_id: int) -> bool:
    """Whether the company runs an experiment on AI replies (cached per process, see above)."""
    now = time.monotonic()
    cached = _reply_running.get(company_id)
    if cached is not None and cached[0] > now:
        return cached[1]
    answer = Experiment.objects.filter(
        company_id=company_id, applies_to=Experiment.AppliesTo.AI_REPLIES, status=Experiment.Status.RUNNING
    ).exists()
    with _reply_running_lock:
        _reply_running[company_id] = (now + REPLY_EXPERIMENT_CACHE_SECONDS, answer)
    return answer


def experiment_exposures_for(
    *, company: Any, applies_to: str, unit_ids: Iterable[int], record: bool = True
) -> dict[int, Exposure]:
    """The same for the company's running experiment on CoachNova runs (`coaching`, units: workers) or AI
    replies (`ai_replies`): what other apps read through engage.api. {} when none runs; the oldest running
    one when several do."""
    experiment = (
        Experiment.objects.filter(company=company, applies_to=applies_to, status=Experiment.Status.RUNNING)
        .order_by("started_at", "pk").first()
    )
    if experiment is None:
        return {}
    return _exposures(experiment=experiment, unit_ids=unit_ids, record=record)


def _exposures(*, experiment: Experiment, unit_ids: Iterable[int], record: bool) -> dict[int, Exposure]:
    unit_ids = list(unit_ids)
    variants = {
        variant.pk: variant
        for variant in experiment.variants.select_related("template_version__template")
    }
    answer: dict[int, Exposure] = {}
    if record:
        assigned = assignments_for(experiment=experiment, unit_ids=unit_ids)
        for unit_id, assignment in assigned.items():
            if assignment == HOLDOUT:
                answer[unit_id] = Exposure(is_holdout=True, experiment_id=experiment.pk)
                continue
            variant = variants[assignment.variant_id]
            answer[unit_id] = Exposure(
                is_holdout=False, experiment_id=experiment.pk, assignment_id=assignment.pk, variant_id=variant.pk,
                variant_kind=variant.kind, template_version=variant.template_version, settings=variant.settings,
            )
        return answer
    phase = experiment_phase_current(experiment=experiment)
    if phase is None:
        return {}
    settings = _holdout_settings(experiment)
    weights = _phase_weights(phase)
    for unit_id in unit_ids:
        if settings is not None and holdout_contains(settings=settings, unit=experiment.unit, unit_id=unit_id):
            answer[unit_id] = Exposure(is_holdout=True, experiment_id=experiment.pk)
            continue
        variant_id = variant_for_bucket(
            bucket=unit_bucket(salt=phase.salt, experiment_id=experiment.pk, unit_id=unit_id), weights=weights
        )
        if variant_id is not None:
            variant = variants[variant_id]
            answer[unit_id] = Exposure(
                is_holdout=False, experiment_id=experiment.pk, variant_id=variant_id, variant_kind=variant.kind,
                template_version=variant.template_version, settings=variant.settings,
            )
    return answer


# --- outcomes -----------------------------------------------------------------------------------------------

PRE_PERIOD = timedelta(days=30)
WINDOWS = {
    Metric.BOOKING_7D: timedelta(days=7),
    Metric.ON_TIME_28D: timedelta(days=28),
    Metric.REPLY_24H: timedelta(hours=24),
    Metric.OPT_OUT: timedelta(days=7),
}
ON_TIME_GRACE = timedelta(minutes=10)


def _contact_of(unit: str) -> Subquery:
    model = {Unit.CUSTOMER: Customer, Unit.WORKER: Worker, Unit.LEAD: Lead}[unit]
    # Used inside another subquery (the events, the messages): the assignment row is two levels out.
    return Subquery(model.objects.filter(pk=OuterRef(OuterRef("unit_id"))).values("contact_id")[:1])


def _metric_expressions(*, metric: str, unit: str) -> tuple[Any, Any]:
    """(outcome, pre-period value) of `metric` as expressions over an assignment row (portable SQL)."""
    window = WINDOWS[metric]
    if metric == Metric.BOOKING_7D:
        def booked(start: Any, end: Any) -> Any:
            return Booking.objects.filter(customer_id=OuterRef("unit_id"), created_at__gte=start, created_at__lt=end)

        outcome = Case(
            When(Exists(booked(OuterRef("exposed_at"), OuterRef("exposed_at") + window)), then=Value(1.0)),
            default=Value(0.0), output_field=FloatField(),
        )
        pre = Coalesce(
            Subquery(
                booked(OuterRef("exposed_at") - PRE_PERIOD, OuterRef("exposed_at"))
                .order_by().values("customer_id").annotate(count=Cast(Count("id"), FloatField())).values("count")[:1]
            ),
            Value(0.0), output_field=FloatField(),
        )
        return outcome, pre
    if metric == Metric.ON_TIME_28D:
        def on_time(start: Any, end: Any) -> Any:
            return Subquery(
                Booking.objects.filter(
                    worker_id=OuterRef("unit_id"), scheduled_at__gte=start, scheduled_at__lt=end,
                    arrived_at__isnull=False,
                ).order_by().values("worker_id").annotate(rate=Avg(Case(
                    When(arrived_at__lte=F("scheduled_at") + ON_TIME_GRACE, then=Value(1.0)),
                    default=Value(0.0), output_field=FloatField(),
                ))).values("rate")[:1],
                output_field=FloatField(),
            )

        return (
            on_time(OuterRef("exposed_at"), OuterRef("exposed_at") + window),
            on_time(OuterRef("exposed_at") - PRE_PERIOD, OuterRef("exposed_at")),
        )
    # reply within 24 h: an inbound message from the unit's contact
    contact = _contact_of(unit)

    def replies(start: Any, end: Any) -> Any:
        return Message.objects.filter(
            contact_id=contact, direction=Message.Direction.INBOUND, created_at__gte=start, created_at__lt=end
        )

    outcome = Case(
        When(Exists(replies(OuterRef("exposed_at"), OuterRef("exposed_at") + window)), then=Value(1.0)),
        default=Value(0.0), output_field=FloatField(),
    )
    pre = Case(
        When(Exists(replies(OuterRef("exposed_at") - PRE_PERIOD, OuterRef("exposed_at"))), then=Value(1.0)),
        default=Value(0.0), output_field=FloatField(),
    )
    return outcome, pre


def experiment_outcomes_refresh(*, experiment: Experiment) -> int:
    """Recompute the outcome snapshot of every assignment of the experiment (set-based UPDATEs) and the results'
    rollup of each phase (one GROUP BY a phase); the count of assignments."""
    outcome, pre = _metric_expressions(metric=experiment.primary_metric, unit=experiment.unit)
    assignments = ExperimentAssignment.objects.filter(phase__experiment=experiment)
    updates: dict[str, Any] = {"outcome_value": outcome, "pre_value": pre}
    if "opt_out" in experiment.guardrails:
        updates["opted_out"] = Exists(Event.objects.filter(
            contact_id=_contact_of(experiment.unit), type="opt_out", occurred_at__gte=OuterRef("exposed_at"),
            occurred_at__lt=OuterRef("exposed_at") + WINDOWS[Metric.OPT_OUT],
        ))
    if "safety_rejection" in experiment.guardrails:
        # The AI sessions of the unit's messages the safety filter rejected (engage.ai's AISession, reached
        # through the message: experiments sit beside engage.ai in the layers and do not import it).
        updates["safety_rejections"] = Coalesce(Subquery(
            Message.objects.filter(experiment_assignment=OuterRef("pk"), ai_sessions__outcome="rejected")
            .order_by().values("experiment_assignment").annotate(count=Count("ai_sessions")).values("count")[:1]
        ), Value(0))
    with transaction.atomic():
        updated = assignments.update(**updates)
        for phase in experiment.phases.all():
            ExperimentDailySums.objects.filter(phase=phase).delete()
            ExperimentDailySums.objects.bulk_create(
                [ExperimentDailySums(phase=phase, **row) for row in phase_daily_sums(phase=phase)]
            )
        Experiment.objects.filter(pk=experiment.pk).update(outcomes_refreshed_at=timezone.now())
    experiment.outcomes_refreshed_at = timezone.now()
    return updated


def experiment_outcomes_refresh_queue(*, experiment: Experiment) -> Any:
    """Queue the refresh of one experiment's outcomes (one job an experiment and hour: a second ask is the same job)."""
    hour = timezone.now().strftime("%Y%m%d%H")
    with transaction.atomic():
        return job_enqueue(
            company=experiment.company, task_name="experiment_outcomes_refresh",
            payload={"experiment_id": experiment.pk},
            idempotency_key=f"experiment_outcomes_refresh:{experiment.pk}:{hour}",
        )


def experiments_outcomes_refresh_queue() -> int:
    """Queue the refresh of every running experiment and of those stopped in the last 28 days (their
    last units' windows are still closing)."""
    recent = timezone.now() - timedelta(days=28)
    experiments = Experiment.objects.filter(
        Q(status=Experiment.Status.RUNNING) | Q(status=Experiment.Status.STOPPED, stopped_at__gte=recent)
    ).select_related("company")
    count = 0
    for experiment in experiments:
        experiment_outcomes_refresh_queue(experiment=experiment)
        count += 1
    return count
