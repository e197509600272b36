"""Burnout thresholds per company and the alerts they open (docs/burnout.md)."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _


class BurnoutSettings(models.Model):
    """A company's burnout thresholds, edited in the admin; a company without a row uses the defaults."""

    company = models.OneToOneField("crm.Company", on_delete=models.CASCADE, related_name="burnout_settings")
    watch_hours_7d = models.PositiveSmallIntegerField(
        "watch at hours in 7 days", default=48,
        help_text="Hours on jobs in the last 7 local days that open a watch (Bangladesh's Labour Act: 48 h).")
    alert_hours_7d = models.PositiveSmallIntegerField(
        "alert at hours in 7 days", default=55,
        help_text="Hours on jobs in the last 7 local days that open an alert (WHO/ILO: 55 h or more a week).")
    max_days_without_break = models.PositiveSmallIntegerField(
        "days in a row without a day off", default=7, validators=[MinValueValidator(2)],
        help_text="A watch when the worker has had jobs on this many local days in a row or more.")
    late_night_hour = models.PositiveSmallIntegerField(
        "late night from (hour)", default=22, validators=[MaxValueValidator(23)],
        help_text="A job with any part between this local hour and 05:00 counts as late-night.")
    late_night_jobs = models.PositiveSmallIntegerField(
        "late-night jobs in 7 days", default=2, validators=[MinValueValidator(1)],
        help_text="A watch at this many late-night jobs in the last 7 local days.")
    back_to_back_gap_minutes = models.PositiveSmallIntegerField(
        "back-to-back gap (minutes)", default=30,
        help_text="Two jobs with less than this between the end of one and the start of the next are back to back.")
    back_to_back_pairs = models.PositiveSmallIntegerField(
        "back-to-back pairs in 7 days", default=3, validators=[MinValueValidator(1)],
        help_text="A watch at this many back-to-back pairs in the last 7 local days.")
    trend_min_count = models.PositiveSmallIntegerField(
        "trend minimum count", default=3, validators=[MinValueValidator(1)],
        help_text="Cancellations, ratings or late arrivals a worker needs in the last 14 days before a trend counts.")
    rating_drop = models.DecimalField(
        "rating drop", max_digits=3, decimal_places=2, default=0.5, validators=[MinValueValidator(0.01)],
        help_text="A watch when the average rating of the last 14 days is this much below the 14 days before.")
    late_grace_minutes = models.PositiveSmallIntegerField(
        "late after (minutes)", default=10, help_text="An arrival this many minutes after the scheduled time is late.")
    alert_at_signals = models.PositiveSmallIntegerField(
        "alert at signals", default=3, validators=[MinValueValidator(1)],
        help_text="A watch becomes an alert when this many signals hold at once (55 h alone is always an alert).")
    is_enabled = models.BooleanField(default=True, help_text="Off: no new alerts for this company.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "burnout settings"
        verbose_name_plural = "burnout settings"

    def __str__(self) -> str:
        return f"Burnout thresholds of {self.company}"


class BurnoutAlert(models.Model):
    """One worker's alert: opened by the evaluation, then acknowledged, acted on and resolved by a manager."""

    class Level(models.TextChoices):
        WATCH = "watch", _("Watch")
        ALERT = "alert", _("Alert")

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        ACKNOWLEDGED = "acknowledged", _("Acknowledged")
        ACTED = "acted", _("Acted on")
        RESOLVED = "resolved", _("Resolved")

    class Action(models.TextChoices):
        FEWER_JOBS = "fewer_jobs", _("Fewer jobs assigned")
        DAY_OFF = "day_off", _("Day off given")
        SHIFT_CHANGE = "shift_change", _("No more late-night jobs")
        CONVERSATION = "conversation", _("Talked with the worker")
        OTHER = "other", _("Other")

    class Outcome(models.TextChoices):
        RECOVERED = "recovered", _("Workload back to normal")
        ONGOING_SUPPORT = "ongoing_support", _("Ongoing support agreed")
        FALSE_ALARM = "false_alarm", _("Not overworked (false alarm)")
        LEFT = "left", _("Worker left")

    company = models.ForeignKey("crm.Company", on_delete=models.CASCADE, related_name="burnout_alerts",
                                db_index=False)
    worker = models.ForeignKey("crm.Worker", on_delete=models.CASCADE, related_name="burnout_alerts")
    level = models.CharField(max_length=10, choices=Level.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    summary = models.CharField(max_length=500, help_text="The alert in numbers, as the managers read it.")
    signals = models.JSONField(default=list, help_text="Each rule that held: code, level, numbers, sentence.")
    metrics = models.JSONField(default=dict, help_text="Every number the rules computed at the last evaluation.")
    zone = models.CharField(max_length=100, blank=True, help_text="The worker's main zone (most jobs, 28 days).")
    service_category = models.CharField(max_length=100, blank=True,
                                        help_text="The worker's main service category (most jobs, 28 days).")
    opened_at = models.DateTimeField(default=now)
    evaluated_at = models.DateTimeField(default=now)
    cleared_at = models.DateTimeField(null=True, blank=True,
                                      help_text="When the numbers last fell under every threshold (still open).")
    notified_at = models.DateTimeField(null=True, blank=True)
    notified_level = models.CharField(max_length=10, blank=True,
                                      help_text="The level the managers were last emailed about (watch, then alert).")
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                        related_name="+")
    acted_at = models.DateTimeField(null=True, blank=True)
    acted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                 related_name="+")
    action = models.CharField(max_length=20, choices=Action.choices, blank=True)
    action_note = models.TextField(blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                    related_name="+")
    outcome = models.CharField(max_length=20, choices=Outcome.choices, blank=True)
    outcome_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-opened_at"]
        indexes = [models.Index(fields=["company", "status", "zone"], name="burnout_company_status_zone")]
        constraints = [
            # One alert per worker that is not resolved: the evaluation's INSERT relies on it (no check-then-act).
            models.UniqueConstraint(fields=["worker"], condition=~Q(status="resolved"),
                                    name="burnout_one_open_alert_per_worker"),
        ]

    def __str__(self) -> str:
        return f"{self.get_level_display()}: {self.worker} ({self.get_status_display()})"

    @property
    def is_open(self) -> bool:
        return self.status != self.Status.RESOLVED

    @property
    def explanation(self) -> str:
        """The alert in numbers in the reader's language (the stored English summary for signals without numbers)."""
        from reports.burnout.rules import explanation

        return explanation(self.signals or []) or self.summary

    @property
    def signal_lines(self) -> list[dict]:
        """Each signal's level and sentence in the reader's language."""
        from reports.burnout.rules import LEVEL_LABELS, signal_text

        return [{"level": LEVEL_LABELS.get(signal.get("level"), signal.get("level", "")), "text": signal_text(signal)}
                for signal in self.signals or [] if isinstance(signal, dict)]
