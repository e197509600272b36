"""The rollup tables. Every row is one company's local day (the company's time zone, Asia/Dhaka by default) and
one combination of segment values; "none" segments are stored as 0 / "" (never NULL, so the unique keys hold on
every database). Rows are derived: the refresh deletes a day's rows and writes them again."""

from __future__ import annotations

from django.db import models
from django.utils.timezone import now

COHORT_NONE = "never"


class RollupRow(models.Model):
    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{type(self).__name__} {self.company_id} {getattr(self, 'local_date', '')}"


class EngagementDaily(RollupRow):
    """Outbound customer engagement (SmartEngage, sales follow-ups: every agent but CoachNova) on one local day."""

    company = models.ForeignKey("crm.Company", on_delete=models.CASCADE, related_name="+", db_index=False)
    local_date = models.DateField()
    channel = models.CharField(max_length=20, default="")
    template_version_id = models.BigIntegerField(default=0, help_text="0: no template version.")
    campaign_id = models.BigIntegerField(default=0, help_text="0: not a campaign's message.")
    service_category = models.CharField(max_length=100, default="", help_text="The campaign's service's category.")
    cohort = models.CharField(max_length=10, default="", help_text="Days since the customer's last booking, bucketed.")
    sent = models.PositiveIntegerField(default=0)
    delivered = models.PositiveIntegerField(default=0)
    opened = models.PositiveIntegerField(default=0)
    clicked = models.PositiveIntegerField(default=0)
    booked = models.PositiveIntegerField(default=0)
    revenue = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    opt_outs = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0, help_text="Delivery failures.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "local_date", "channel", "template_version_id", "campaign_id", "service_category",
                        "cohort"], name="reports_engagement_daily_key"),
        ]


class AIDaily(RollupRow):
    """Model calls (AISession rows) on one local day, by agent, outcome and reason."""

    company = models.ForeignKey("crm.Company", on_delete=models.CASCADE, related_name="+", db_index=False)
    local_date = models.DateField()
    agent_type = models.CharField(max_length=20, default="")
    outcome = models.CharField(max_length=10, help_text="ok, error, fallback, rejected")
    reason = models.CharField(max_length=100, default="", help_text="The safety code or the fallback's reason.")
    sessions = models.PositiveIntegerField(default=0)
    latency_ms_sum = models.BigIntegerField(default=0)
    latency_count = models.PositiveIntegerField(default=0, help_text="Sessions with a model call (latency > 0).")
    tokens_in = models.BigIntegerField(default=0)
    tokens_out = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "local_date", "agent_type", "outcome", "reason"],
                                    name="reports_ai_daily_key"),
        ]


class LeadDaily(RollupRow):
    """Leads created, won and lost on one local day, by source and channel."""

    company = models.ForeignKey("crm.Company", on_delete=models.CASCADE, related_name="+", db_index=False)
    local_date = models.DateField()
    source = models.CharField(max_length=100, default="")
    channel = models.CharField(max_length=20, default="")
    new = models.PositiveIntegerField(default=0)
    won = models.PositiveIntegerField(default=0)
    lost = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "local_date", "source", "channel"], name="reports_lead_daily_key"),
        ]


class LeadStageCount(RollupRow):
    """The pipeline now: how many leads sit in each stage (a snapshot written by every refresh)."""

    company = models.ForeignKey("crm.Company", on_delete=models.CASCADE, related_name="+", db_index=False)
    stage_id = models.BigIntegerField()
    pipeline_name = models.CharField(max_length=100)
    stage_name = models.CharField(max_length=100)
    stage_order = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=10)
    leads = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["company", "stage_id"], name="reports_lead_stage_key")]


class LeadStageTimeDaily(RollupRow):
    """Time in stage: how many leads left a stage on one local day after how many local days in it (a histogram,
    so the median and p90 of any period are exact sums of days). A stay starts when the lead was created or moved
    into the stage and ends with the `stage.changed` event that moved it out; days are counted between the two
    local dates in the company's time zone (0: left on the day it came in)."""

    company = models.ForeignKey("crm.Company", on_delete=models.CASCADE, related_name="+", db_index=False)
    local_date = models.DateField(help_text="The local day the lead left the stage.")
    stage_id = models.BigIntegerField()
    days = models.PositiveIntegerField(help_text="Local days the lead spent in the stage.")
    stays = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "local_date", "stage_id", "days"],
                                    name="reports_lead_stage_time_key"),
        ]


class WorkerDaily(RollupRow):
    """Bookings' punctuality (coaching's BookingPunctuality) on one scheduled local day, by zone, service category
    and whether the worker had been coached (a CoachNova recipient row with status coached, made before the
    booking's time); excused bookings are counted apart and not in on_time/late."""

    company = models.ForeignKey("crm.Company", on_delete=models.CASCADE, related_name="+", db_index=False)
    local_date = models.DateField()
    zone = models.CharField(max_length=100, default="")
    service_category = models.CharField(max_length=100, default="")
    coached = models.BooleanField(default=False, help_text="The worker had been coached by CoachNova before the booking.")
    on_time = models.PositiveIntegerField(default=0)
    late = models.PositiveIntegerField(default=0, help_text="Late arrivals, no-shows and worker cancellations.")
    excused = models.PositiveIntegerField(default=0)
    late_minutes = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "local_date", "zone", "service_category", "coached"],
                                    name="reports_worker_daily_key"),
        ]


class RollupWatermark(RollupRow):
    """How far a company's rollups are done: the next refresh starts at `through_date` minus the late-event window."""

    company = models.OneToOneField("crm.Company", on_delete=models.CASCADE, primary_key=True, related_name="+")
    through_date = models.DateField(help_text="The last local day refreshed.")
    # The rollups hold every row stamped before refreshed_at; the live "today" numbers add the rows since.
    refreshed_at = models.DateTimeField(default=now, help_text="Data as of: when the last refresh read the rows.")
    duration_ms = models.PositiveIntegerField(default=0)
