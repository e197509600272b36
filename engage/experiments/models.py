"""Experiments: A/B tests of templates and send policies, with a company-wide holdout.

An Experiment is set up in draft, runs, and stops; while it runs nothing of it may change except its
weights, and a change of weights starts a new ExperimentPhase (fresh assignments: units assigned under the old
weights are not compared with units assigned under the new ones). An ExperimentAssignment is written on a unit's
first exposure in a phase (unique per phase and unit) and the outbound message carries it
(`engage.Message.experiment_assignment`), so every message is attributed to its variant. The outcome
columns of an assignment are a snapshot refreshed by `experiment_outcomes_refresh`, so results are
one GROUP BY over the assignments (see engage.experiments.selectors).
"""

from __future__ import annotations

import secrets

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.text import format_lazy
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop


def new_salt() -> str:
    return secrets.token_hex(8)


class Unit(models.TextChoices):
    CUSTOMER = "customer", _("Customer")
    WORKER = "worker", _("Worker")
    LEAD = "lead", _("Lead")


class Metric(models.TextChoices):
    BOOKING_7D = "booking_7d", _("Booking within 7 days of the message")
    ON_TIME_28D = "on_time_28d", _("On-time rate over the next 28 days")
    REPLY_24H = "reply_24h", _("Reply within 24 hours")
    OPT_OUT = "opt_out", _("Opt-out within 7 days (guardrail)")
    SAFETY_REJECTION = "safety_rejection", _("Safety filter rejections (guardrail)")


PRIMARY_METRICS = (Metric.BOOKING_7D, Metric.ON_TIME_28D, Metric.REPLY_24H)
GUARDRAIL_METRICS = (Metric.OPT_OUT, Metric.SAFETY_REJECTION)
# For a guardrail, more is worse.
METRIC_UNITS = {
    Metric.BOOKING_7D: (Unit.CUSTOMER,),
    Metric.ON_TIME_28D: (Unit.WORKER,),
    Metric.REPLY_24H: (Unit.CUSTOMER, Unit.WORKER, Unit.LEAD),
}


class ExperimentSettings(models.Model):
    """A company's experiment settings: the holdout, a share of every unit kept out of all experiments."""

    company = models.OneToOneField("crm.Company", on_delete=models.CASCADE, related_name="experiment_settings", verbose_name=_("company"))
    is_holdout_enabled = models.BooleanField(
        _("holdout on"), default=False, help_text=_("Keep a share of customers, workers and leads out of every experiment.")
    )
    holdout_percent = models.DecimalField(max_digits=4, decimal_places=2, default=5, help_text=_("0 to 50."), verbose_name=_("holdout percent"))
    holdout_salt = models.CharField(max_length=32, default=new_salt, editable=False, verbose_name=_("holdout salt"))

    class Meta:
        verbose_name = _("experiment settings")
        verbose_name_plural = _("experiment settings")
        constraints = [
            models.CheckConstraint(
                condition=Q(holdout_percent__gte=0, holdout_percent__lte=50), name="experimentsettings_holdout_0_50"
            )
        ]

    def __str__(self) -> str:
        return f"Experiment settings of {self.company_id}"


class Experiment(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        RUNNING = "running", _("Running")
        STOPPED = "stopped", _("Stopped")

    class AppliesTo(models.TextChoices):
        CAMPAIGN = "campaign", _("A SmartEngage campaign")
        COACHING = "coaching", _("CoachNova runs")
        AI_REPLIES = "ai_replies", _("AI replies")

    # Fields a running experiment keeps (status changes go through the services).
    FROZEN_FIELDS = (
        "name", "unit", "applies_to", "campaign_id", "primary_metric", "guardrails", "use_cuped", "tuning_units",
        "hypothesis",
    )

    company = models.ForeignKey("crm.Company", on_delete=models.CASCADE, related_name="experiments", verbose_name=_("company"))
    name = models.CharField(max_length=120, verbose_name=_("name"))
    hypothesis = models.TextField(blank=True, verbose_name=_("hypothesis"))
    unit = models.CharField(max_length=10, choices=Unit.choices, default=Unit.CUSTOMER, verbose_name=_("unit"))
    applies_to = models.CharField(max_length=12, choices=AppliesTo.choices, default=AppliesTo.CAMPAIGN, verbose_name=_("applies to"))
    campaign = models.ForeignKey(
        "engage.Campaign", on_delete=models.PROTECT, null=True, blank=True, related_name="experiments",
        help_text=_("The SmartEngage campaign under test (campaign experiments only)."), verbose_name=_("campaign"),
    )
    primary_metric = models.CharField(
        max_length=20, choices=[(m.value, m.label) for m in PRIMARY_METRICS], default=Metric.BOOKING_7D, verbose_name=_("primary metric")
    )
    guardrails = models.JSONField(
        default=list, blank=True, help_text=format_lazy(_("Any of: {}."), ", ".join(m.value for m in GUARDRAIL_METRICS)), verbose_name=_("guardrails")
    )
    use_cuped = models.BooleanField(
        _("CUPED"), default=True, help_text=_("Reduce variance with each unit's previous 30 days of the same metric.")
    )
    tuning_units = models.PositiveIntegerField(
        default=5000, help_text=_("Units where the always-valid interval is tightest (the planned sample)."), verbose_name=_("tuning units")
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT, verbose_name=_("status"))
    started_at = models.DateTimeField(null=True, blank=True, verbose_name=_("started at"))
    stopped_at = models.DateTimeField(null=True, blank=True, verbose_name=_("stopped at"))
    outcomes_refreshed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("outcomes refreshed at"))
    created_at = models.DateTimeField(default=now, editable=False, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("experiment")
        verbose_name_plural = _("experiments")
        ordering = ["company", "-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["company", "name"], name="experiment_unique_name_per_company"),
            # One running experiment per campaign: a customer gets one reminder, so one test at a time.
            models.UniqueConstraint(
                fields=["campaign"], condition=Q(status="running"), name="experiment_one_running_per_campaign"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, ValidationError | str] = {}
        if self.pk is not None:
            stored = Experiment.objects.filter(pk=self.pk).values("status", *self.FROZEN_FIELDS).first()
            if stored and stored["status"] != Experiment.Status.DRAFT:
                changed = [name for name in self.FROZEN_FIELDS if stored[name] != getattr(self, name)]
                if changed:
                    raise ValidationError(
                        gettext_noop("A %(status)s experiment cannot be edited (%(fields)s); "
                                     "change of weights starts a new phase, anything else needs a new experiment."),
                        params={"status": stored["status"], "fields": ", ".join(changed)},
                    )
        if self.applies_to == Experiment.AppliesTo.CAMPAIGN:
            if self.campaign_id is None:
                errors["campaign"] = gettext_noop("A campaign experiment names its campaign.")
            elif self.campaign.company_id != self.company_id:
                errors["campaign"] = gettext_noop("That campaign is not this company's.")
            if self.unit != Unit.CUSTOMER:
                errors["unit"] = gettext_noop("A campaign reminds customers: its unit is the customer.")
        elif self.campaign_id is not None:
            errors["campaign"] = gettext_noop("Only a campaign experiment names a campaign.")
        if self.applies_to == Experiment.AppliesTo.COACHING and self.unit != Unit.WORKER:
            errors["unit"] = gettext_noop("CoachNova coaches workers: its unit is the worker.")
        if self.applies_to == Experiment.AppliesTo.AI_REPLIES and self.unit != Unit.LEAD:
            errors["unit"] = gettext_noop("AI replies answer leads: its unit is the lead.")
        if self.unit not in METRIC_UNITS.get(self.primary_metric, ()):
            errors["primary_metric"] = ValidationError(gettext_noop("%(metric)s is not measured on a %(unit)s."),
                                                        params={"metric": self.get_primary_metric_display(), "unit": self.unit})
        guardrails = self.guardrails if isinstance(self.guardrails, list) else None
        if guardrails is None or any(value not in GUARDRAIL_METRICS for value in guardrails):
            errors["guardrails"] = ValidationError(gettext_noop("A list of: %(metrics)s."),
                                                  params={"metrics": ", ".join(m.value for m in GUARDRAIL_METRICS)})
        if errors:
            raise ValidationError(errors)


class ExperimentVariant(models.Model):
    class Kind(models.TextChoices):
        CONTROL = "control", _("Control (what runs today)")
        TEMPLATE_VERSION = "template_version", _("A published template version")
        SEND_SETTING = "send_setting", _("A send window or cadence setting")
        SEND_TIME = "send_time", _("Send-time optimisation (each customer's best hour)")

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="variants", verbose_name=_("experiment"))
    name = models.CharField(max_length=60, verbose_name=_("name"))
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.CONTROL, verbose_name=_("kind"))
    weight = models.PositiveIntegerField(default=50, help_text=_("Relative share of the units (0 stops new assignments)."), verbose_name=_("weight"))
    template_version = models.ForeignKey(
        "engage.PromptTemplateVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        help_text=_("The approved reminder version to send (template-version variants; control: pins today's version)."), verbose_name=_("template version"),
    )
    settings = models.JSONField(
        default=dict, blank=True,
        help_text=_('Send-setting variants: {"send_window_start_hour": 9, "send_window_end_hour": 12, "cadence_days": 30}.'), verbose_name=_("settings"),
    )

    class Meta:
        verbose_name = _("experiment variant")
        verbose_name_plural = _("experiment variants")
        ordering = ["experiment", "id"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "name"], name="experimentvariant_unique_name"),
            models.UniqueConstraint(
                fields=["experiment"], condition=Q(kind="control"), name="experimentvariant_one_control"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        experiment = self.experiment
        if experiment.status != Experiment.Status.DRAFT:
            stored = ExperimentVariant.objects.filter(pk=self.pk).values("name", "kind", "template_version_id", "settings").first()
            current = {
                "name": self.name, "kind": self.kind, "template_version_id": self.template_version_id,
                "settings": self.settings,
            }
            if stored != current:
                raise ValidationError(gettext_noop("The variants of a %(status)s experiment cannot be edited."),
                                      params={"status": experiment.status})
        if self.kind == ExperimentVariant.Kind.TEMPLATE_VERSION and self.template_version_id is None:
            raise ValidationError({"template_version": gettext_noop("A template-version variant names its version.")})
        if self.template_version_id is not None:
            # Control may pin today's version too, so publishing the new wording does not change control.
            if self.kind not in (ExperimentVariant.Kind.TEMPLATE_VERSION, ExperimentVariant.Kind.CONTROL):
                raise ValidationError({"template_version": gettext_noop("Only a template-version variant or control names a version.")})
            version = self.template_version
            if version.template.company_id != experiment.company_id:
                raise ValidationError({"template_version": gettext_noop("That template is not this company's.")})
            if version.approved_at is None:  # approved once (a later version's approval archives it: still testable)
                raise ValidationError({"template_version": gettext_noop("Only a published (approved) version can be tested.")})
            if experiment.applies_to == Experiment.AppliesTo.AI_REPLIES and version.template.agent_type != "sales":
                raise ValidationError({"template_version": gettext_noop("An AI-reply arm uses a sales template (the reply's prompt).")})
        if experiment.applies_to == Experiment.AppliesTo.AI_REPLIES and self.kind not in (
            ExperimentVariant.Kind.CONTROL, ExperimentVariant.Kind.TEMPLATE_VERSION
        ):
            # A reply answers when the lead writes: no send window or best hour to test.
            raise ValidationError({"kind": gettext_noop("An AI-reply experiment tests prompts: control or a template version.")})
        if self.kind == ExperimentVariant.Kind.SEND_SETTING:
            allowed = {"send_window_start_hour", "send_window_end_hour", "cadence_days"}
            if not isinstance(self.settings, dict) or not self.settings or set(self.settings) - allowed:
                raise ValidationError({"settings": ValidationError(gettext_noop("Keys among: %(keys)s."), params={"keys": ", ".join(sorted(allowed))})})
            start = self.settings.get("send_window_start_hour", 0)
            end = self.settings.get("send_window_end_hour", 24)
            if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= 24):
                raise ValidationError({"settings": gettext_noop("The send window is 0 <= start < end <= 24 (whole hours).")})


class ExperimentPhase(models.Model):
    """A stretch of an experiment under one set of weights: its assignments are compared with each other only."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="phases", verbose_name=_("experiment"))
    number = models.PositiveIntegerField(verbose_name=_("number"))
    weights = models.JSONField(help_text=_("{variant id: weight} as they were when the phase started."), verbose_name=_("weights"))
    salt = models.CharField(max_length=32, default=new_salt, editable=False, verbose_name=_("salt"))
    started_at = models.DateTimeField(default=now, verbose_name=_("started at"))
    ended_at = models.DateTimeField(null=True, blank=True, verbose_name=_("ended at"))

    class Meta:
        verbose_name = _("experiment phase")
        verbose_name_plural = _("experiment phases")
        ordering = ["experiment", "number"]
        constraints = [models.UniqueConstraint(fields=["experiment", "number"], name="experimentphase_unique_number")]

    def __str__(self) -> str:
        return f"{self.experiment} phase {self.number}"


class ExperimentAssignment(models.Model):
    """A unit's variant in a phase, written at its first exposure; the outcome columns are a refreshed snapshot."""

    company = models.ForeignKey("crm.Company", on_delete=models.CASCADE, related_name="+", db_index=False, verbose_name=_("company"))
    phase = models.ForeignKey(ExperimentPhase, on_delete=models.CASCADE, related_name="assignments", db_index=False, verbose_name=_("phase"))
    variant = models.ForeignKey(ExperimentVariant, on_delete=models.CASCADE, related_name="assignments", db_index=False, verbose_name=_("variant"))
    unit_id = models.BigIntegerField(verbose_name=_("unit id"))
    bucket = models.PositiveSmallIntegerField(help_text=_("sha256(salt:experiment:unit) mod 10000."), verbose_name=_("bucket"))
    exposed_at = models.DateTimeField(default=now, verbose_name=_("exposed at"))
    outcome_value = models.FloatField(null=True, blank=True, help_text=_("The primary metric (empty: nothing to measure)."), verbose_name=_("outcome value"))
    pre_value = models.FloatField(null=True, blank=True, help_text=_("The same metric over the 30 days before exposure."), verbose_name=_("pre value"))
    opted_out = models.BooleanField(default=False, verbose_name=_("opted out"))
    safety_rejections = models.PositiveIntegerField(default=0, verbose_name=_("safety rejections"))

    class Meta:
        verbose_name = _("experiment assignment")
        verbose_name_plural = _("experiment assignments")
        ordering = ["phase", "id"]
        constraints = [models.UniqueConstraint(fields=["phase", "unit_id"], name="experimentassignment_unique_unit")]
        indexes = [models.Index(fields=["variant", "exposed_at"], name="expassignment_variant_exposed")]

    def __str__(self) -> str:
        return f"{self.unit_id} → {self.variant_id} (phase {self.phase_id})"


class ExperimentDailySums(models.Model):
    """The results' rollup: per phase, variant and day of exposure, the sums the statistics need.

    Written by the outcome refresh (one GROUP BY over the phase's assignments, in the background), read by
    the results: a page or an API call reads tens of rows, not a million assignments."""

    phase = models.ForeignKey(ExperimentPhase, on_delete=models.CASCADE, related_name="daily_sums", db_index=False, verbose_name=_("phase"))
    variant = models.ForeignKey(ExperimentVariant, on_delete=models.CASCADE, related_name="+", db_index=False, verbose_name=_("variant"))
    day = models.DateField(verbose_name=_("day"))
    units = models.PositiveIntegerField(verbose_name=_("units"))
    measured = models.PositiveIntegerField(verbose_name=_("measured"))
    total = models.FloatField(verbose_name=_("total"))
    total_squares = models.FloatField(verbose_name=_("total squares"))
    pre_total = models.FloatField(verbose_name=_("pre total"))
    pre_squares = models.FloatField(verbose_name=_("pre squares"))
    cross = models.FloatField(verbose_name=_("cross"))
    opted_out = models.PositiveIntegerField(verbose_name=_("opted out"))
    safety = models.PositiveIntegerField(verbose_name=_("safety"))
    safety_squares = models.PositiveIntegerField(verbose_name=_("safety squares"))

    class Meta:
        verbose_name = _("experiment daily sums")
        verbose_name_plural = _("experiment daily sums")
        constraints = [
            models.UniqueConstraint(fields=["phase", "variant", "day"], name="experimentdailysums_unique_day")
        ]

    def __str__(self) -> str:
        return f"{self.phase_id}/{self.variant_id} {self.day}"
