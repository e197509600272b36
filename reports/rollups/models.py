"""The rollup tables. Every row is one company's local day (the company's time zone, Asia/Dhaka by default) and
one combination of segment values; "none" segments are stored as 0 / "" (never NULL, so the unique keys hold on
every database). Rows are derived: the refresh deletes a day's rows and writes them again."""

from __future__ import annotations

from django.db import models
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

COHORT_NONE = "never"


class RollupRow(models.Model):
    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{type(self).__name__} {self.company_id} {getattr(self, 'local_date', '')}"


class EngagementDaily(RollupRow):
    """Outbound customer engagement (SmartEngage, sales follow-ups: every agent but CoachNova) on one local day."""

    company = models.ForeignKey("crm.Company", on_delete=models.CASCADE, related_name="+", db_index=False, verbose_name=_("company"))
    local_date = models.DateField(verbose_name=_("local date"))
    channel = models.CharField(max_length=20, default="", verbose_name=_("channel"))
    template_version_id = models.BigIntegerField(default=0, help_text=_("0: no template version."), verbose_name=_("template version id"))
    campaign_id = models.BigIntegerField(default=0, help_text=_("0: not a campaign's message."), verbose_name=_("campaign id"))
    service_category = models.CharField(max_length=100, default="", help_text=_("The campaign's service's category."), verbose_name=_("service category"))
    cohort = models.CharField(max_length=10, default="", help_text=_("Days since the customer's last booking, bucketed."), verbose_name=_("cohort"))
    sent = models.PositiveIntegerField(default=0, verbose_name=_("sent"))
    delivered = models.PositiveIntegerField(default=0, verbose_name=_("delivered"))
    opened = models.PositiveIntegerField(default=0, verbose_name=_("opened"))
    clicked = models.PositiveIntegerField(default=0, verbose_name=_("clicked"))
    booked = models.PositiveIntegerField(default=0, verbose_name=_("booked"))
    revenue = models.DecimalField(max_digits=14, decimal_places=2, default=0, verbose_name=_("revenue"))
    opt_outs = models.PositiveIntegerField(default=0, verbose_name=_("opt outs"))
    failed = models.PositiveIntegerField(default=0, help_text=_("Delivery failures."), verbose_name=_("failed"))

    class Meta:
        verbose_name = _("engagement daily")
        verbose_name_plural = _("engagement dailys")
        constraints = [
            models.UniqueConstraint(
                fields=["company", "local_date", "channel", "template_version_id", "campaign_id", "service_category",
                        "cohort"], name="reports_engagement_daily_key"),
        ]


class AIDaily(RollupRow):
    """Model calls (AISession rows) on one local day, by agent, outcome and reason."""

    company = models.ForeignKey("crm.Company", on_delete=models.CASCADE, related_name="+", db_index=False, verbose_name=_("company"))
    local_date = models.DateField(verbose_name=_("local date"))
    agent_type = models.CharField(max_length=20, default="", verbose_name=_("agent type"))
    outcome = models.CharField(max_length=10, help_text=_("ok, error, fallback, rejected"), verbose_name=_("outcome"))
    reason = models.CharField(max_length=100, default="", help_text=_("The safety code or the fallback's reason."), verbose_name=_("reason"))
    sessions = models.PositiveIntegerField(default=0, verbose_name=_("sessions"))
    latency_ms_sum = models.BigIntegerField(default=0, verbose_name=_("latency ms sum"))
    latency_count = models.PositiveIntegerField(default=0, help_text=_("Sessions with a model call (latency > 0)."), verbose_name=_("latency count"))
    tokens_in = models.BigIntegerField(default=0, verbose_name=_("tokens in"))
    tokens_out = models.BigIntegerField(default=0, verbose_name=_("tokens out"))

    class Meta:
        verbose_name = _("ai daily")
        verbose_name_plural = _("ai dailys")
        constraints = [
            models.UniqueConstraint(fields=["company", "local_date", "agent_type", "outcome", "reason"],
                                    name="reports_ai_daily_key"),
        ]


class LeadDaily(RollupRow):
    """Leads created, won and lost on one local day, by source and channel."""

    company = models.ForeignKey("crm.Company", on_delete=models.CASCADE, related_name="+", db_index=False, verbose_name=_("company"))
    local_date = models.DateField(verbose_name=_("local date"))
    source = models.CharField(max_length=100, default="", verbose_name=_("source"))
    channel = models.CharField(max_length=20, default="", verbose_name=_("channel"))
    new = models.PositiveIntegerField(default=0, verbose_name=_("new"))
    won = models.PositiveIntegerField(default=0, verbose_name=_("won"))
    lost = models.PositiveIntegerField(default=0, verbose_name=_("lost"))

    class Meta:
        verbose_name = _("lead daily")
        verbose_name_plural = _("lead dailys")
        constraints = [
            models.UniqueConstraint(fields=["company", "local_date", "source", "channel"], name="reports_lead_daily_key"),
        ]


class LeadStageCount(RollupRow):
    """The pipeline now: how many leads sit in each stage (a snapshot written by every refresh)."""

    company = models.ForeignKey("crm.Company", on_delete=models.CASCADE, related_name="+", db_index=False, verbose_name=_("company"))
    stage_id = models.BigIntegerField(verbose_name=_("stage id"))
    pipeline_name = models.CharField(max_length=100, verbose_name=_("pipeline name"))
    stage_name = models.CharField(max_length=100, verbose_name=_("stage name"))
    stage_order = models.PositiveSmallIntegerField(verbose_name=_("stage order"))
    kind = models.CharField(max_length=10, verbose_name=_("kind"))
    leads = models.PositiveIntegerField(default=0, verbose_name=_("leads"))

    class Meta:
        verbose_name = _("lead stage count")
        verbose_name_plural = _("lead stage counts")
        constraints = [models.UniqueConstraint(fields=["company", "stage_id"], name="reports_lead_stage_key")]


class LeadStageTimeDaily(RollupRow):
    """Time in stage: how many leads left a stage on one local day after how many local days in it (a histogram,
    so the median and p90 of any period are exact sums of days). A stay starts when the lead was created or moved
    into the stage and ends with the `stage.changed` event that moved it out; days are counted between the two
    local dates in the company's time zone (0: left on the day it came in)."""

    company = models.ForeignKey("crm.Company", on_delete=models.CASCADE, related_name="+", db_index=False,
                                verbose_name=_("company"))
    local_date = models.DateField(help_text=_("The local day the lead left the stage."), verbose_name=_("local date"))
    stage_id = models.BigIntegerField(verbose_name=_("stage id"))
    days = models.PositiveIntegerField(help_text=_("Local days the lead spent in the stage."), verbose_name=_("days"))
    stays = models.PositiveIntegerField(default=0, verbose_name=_("stays"))

    class Meta:
        verbose_name = _("lead stage time daily")
        verbose_name_plural = _("lead stage time dailies")
        constraints = [
            models.UniqueConstraint(fields=["company", "local_date", "stage_id", "days"],
                                    name="reports_lead_stage_time_key"),
        ]


class WorkerDaily(RollupRow):
    """Bookings' punctuality (coaching's BookingPunctuality) on one scheduled local day, by zone, service category
    and whether the worker had been coached (a CoachNova recipient row with status coached, made before the
    booking's time); excused bookings are counted apart and not in on_time/late."""

    company = models.ForeignKey("crm.Company", on_delete=models.CASCADE, related_name="+", db_index=False, verbose_name=_("company"))
    local_date = models.DateField(verbose_name=_("local date"))
    zone = models.CharField(max_length=100, default="", verbose_name=_("zone"))
    service_category = models.CharField(max_length=100, default="", verbose_name=_("service category"))
    coached = models.BooleanField(default=False, help_text=_("The worker had been coached by CoachNova before the booking."), verbose_name=_("coached"))
    on_time = models.PositiveIntegerField(default=0, verbose_name=_("on time"))
    late = models.PositiveIntegerField(default=0, help_text=_("Late arrivals, no-shows and worker cancellations."), verbose_name=_("late"))
    excused = models.PositiveIntegerField(default=0, verbose_name=_("excused"))
    late_minutes = models.BigIntegerField(default=0, verbose_name=_("late minutes"))

    class Meta:
        verbose_name = _("worker daily")
        verbose_name_plural = _("worker dailys")
        constraints = [
            models.UniqueConstraint(fields=["company", "local_date", "zone", "service_category", "coached"],
                                    name="reports_worker_daily_key"),
        ]


class RollupWatermark(RollupRow):
    """How far a company's rollups are done: the next refresh starts at `through_date` minus the late-event window."""

    company = models.OneToOneField("crm.Company", on_delete=models.CASCADE, primary_key=True, related_name="+", verbose_name=_("company"))
    through_date = models.DateField(help_text=_("The last local day refreshed."), verbose_name=_("through date"))
    # The rollups hold every row stamped before refreshed_at; the live "today" numbers add the rows since.
    refreshed_at = models.DateTimeField(default=now, help_text=_("Data as of: when the last refresh read the rows."), verbose_name=_("refreshed at"))
    duration_ms = models.PositiveIntegerField(default=0, verbose_name=_("duration ms"))

    class Meta:
        verbose_name = _("rollup watermark")
        verbose_name_plural = _("rollup watermarks")
