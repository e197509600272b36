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

    company = models.OneToOneField("crm.Company", on_delete=models.CASCADE, related_name="burnout_settings", verbose_name=_("company"))
    watch_hours_7d = models.PositiveSmallIntegerField(
        _("watch at hours in 7 days"), default=48,
        help_text=_("Hours on jobs in the last 7 local days that open a watch (Bangladesh's Labour Act: 48 h)."))
    alert_hours_7d = models.PositiveSmallIntegerField(
        _("alert at hours in 7 days"), default=55,
        help_text=_("Hours on jobs in the last 7 local days that open an alert (WHO/ILO: 55 h or more a week)."))
    max_days_without_break = models.PositiveSmallIntegerField(
        _("days in a row without a day off"), default=7, validators=[MinValueValidator(2)],
        help_text=_("A watch when the worker has had jobs on this many local days in a row or more."))
    late_night_hour = models.PositiveSmallIntegerField(
        _("late night from (hour)"), default=22, validators=[MaxValueValidator(23)],
        help_text=_("A job with any part between this local hour and 05:00 counts as late-night."))
    late_night_jobs = models.PositiveSmallIntegerField(
        _("late-night jobs in 7 days"), default=2, validators=[MinValueValidator(1)],
        help_text=_("A watch at this many late-night jobs in the last 7 local days."))
    back_to_back_gap_minutes = models.PositiveSmallIntegerField(
        _("back-to-back gap (minutes)"), default=30,
        help_text=_("Two jobs with less than this between the end of one and the start of the next are back to back."))
    back_to_back_pairs = models.PositiveSmallIntegerField(
        _("back-to-back pairs in 7 days"), default=3, validators=[MinValueValidator(1)],
        help_text=_("A watch at this many back-to-back pairs in the last 7 local days."))
    trend_min_count = models.PositiveSmallIntegerField(
        _("trend minimum count"), default=3, validators=[MinValueValidator(1)],
        help_text=_("Cancellations, ratings or late arrivals a worker needs in the last 14 days before a trend counts."))
    rating_drop = models.DecimalField(
        _("rating drop"), max_digits=3, decimal_places=2, default=0.5, validators=[MinValueValidator(0.01)],
        help_text=_("A watch when the average rating of the last 14 days is this much below the 14 days before."))
    late_grace_minutes = models.PositiveSmallIntegerField(
        _("late after (minutes)"), default=10, help_text=_("An arrival this many minutes after the scheduled time is late."))
    alert_at_signals = models.PositiveSmallIntegerField(
        _("alert at signals"), default=3, validators=[MinValueValidator(1)],
        help_text=_("A watch becomes an alert when this many signals hold at once (55 h alone is always an alert)."))
    is_enabled = models.BooleanField(default=True, help_text=_("Off: no new alerts for this company."), verbose_name=_("is enabled"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("burnout settings")
        verbose_name_plural = _("burnout settings")

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
                                db_index=False, verbose_name=_("company"))
    worker = models.ForeignKey("crm.Worker", on_delete=models.CASCADE, related_name="burnout_alerts", verbose_name=_("worker"))
    level = models.CharField(max_length=10, choices=Level.choices, verbose_name=_("level"))
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN, verbose_name=_("status"))
    summary = models.CharField(max_length=500, help_text=_("The alert in numbers, as the managers read it."), verbose_name=_("summary"))
    signals = models.JSONField(default=list, help_text=_("Each rule that held: code, level, numbers, sentence."), verbose_name=_("signals"))
    metrics = models.JSONField(default=dict, help_text=_("Every number the rules computed at the last evaluation."), verbose_name=_("metrics"))
    zone = models.CharField(max_length=100, blank=True, help_text=_("The worker's main zone (most jobs, 28 days)."), verbose_name=_("zone"))
    service_category = models.CharField(max_length=100, blank=True,
                                        help_text=_("The worker's main service category (most jobs, 28 days)."), verbose_name=_("service category"))
    opened_at = models.DateTimeField(default=now, verbose_name=_("opened at"))
    evaluated_at = models.DateTimeField(default=now, verbose_name=_("evaluated at"))
    cleared_at = models.DateTimeField(null=True, blank=True,
                                      help_text=_("When the numbers last fell under every threshold (still open)."), verbose_name=_("cleared at"))
    notified_at = models.DateTimeField(null=True, blank=True, verbose_name=_("notified at"))
    notified_level = models.CharField(max_length=10, blank=True,
                                      help_text=_("The level the managers were last emailed about (watch, then alert)."), verbose_name=_("notified level"))
    acknowledged_at = models.DateTimeField(null=True, blank=True, verbose_name=_("acknowledged at"))
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                        related_name="+", verbose_name=_("acknowledged by"))
    acted_at = models.DateTimeField(null=True, blank=True, verbose_name=_("acted at"))
    acted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                 related_name="+", verbose_name=_("acted by"))
    action = models.CharField(max_length=20, choices=Action.choices, blank=True, verbose_name=_("action"))
    action_note = models.TextField(blank=True, verbose_name=_("action note"))
    resolved_at = models.DateTimeField(null=True, blank=True, verbose_name=_("resolved at"))
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                    related_name="+", verbose_name=_("resolved by"))
    outcome = models.CharField(max_length=20, choices=Outcome.choices, blank=True, verbose_name=_("outcome"))
    outcome_note = models.TextField(blank=True, verbose_name=_("outcome note"))

    class Meta:
        verbose_name = _("burnout alert")
        verbose_name_plural = _("burnout alerts")
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
