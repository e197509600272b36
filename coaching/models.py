"""CoachNova's models: per-booking punctuality, per-worker rolling stats, the company's settings, runs and their
recipients (who was coached, who was held out, who was skipped and why, and what they answered)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.timezone import now

from crm.models import Booking, Channel, Company, Worker


class CoachingSettings(models.Model):
    """One company's CoachNova rules, edited in the admin (defaults from the issue: 3 arrivals over 10 minutes
    late in 14 days, 10% holdout, re-coaching after 6 weeks)."""

    company = models.OneToOneField(Company, on_delete=models.CASCADE, related_name="coaching_settings")
    grace_minutes = models.PositiveSmallIntegerField(
        default=10, help_text="An arrival more than this many minutes after the scheduled time is late."
    )
    pattern_late_count = models.PositiveSmallIntegerField(
        default=3, help_text="Coach a worker late (or absent) this many times or more in the window; never fewer than 2."
    )
    pattern_window_days = models.PositiveSmallIntegerField(default=14, help_text="The window of the pattern, in days.")
    holdout_percent = models.PositiveSmallIntegerField(
        default=10, help_text="Share of eligible workers held out of each run (no message), to measure the impact."
    )
    recoach_after_days = models.PositiveSmallIntegerField(
        default=42, help_text="A coached worker is coached again at the earliest this many days later."
    )
    channel = models.CharField(
        max_length=20, choices=Channel.choices, default=Channel.SMS,
        help_text="The channel coaching goes out on, unless the worker's own is set.",
    )
    quiet_start_hour = models.PositiveSmallIntegerField(default=21, help_text="Local hour quiet hours start (0-23).")
    quiet_end_hour = models.PositiveSmallIntegerField(default=9, help_text="Local hour quiet hours end (0-23).")
    is_voice_enabled = models.BooleanField(
        default=False, help_text="Also send the approved text as speech (COACHNOVA_TTS_* settings); text on failure."
    )
    punctuality_refreshed_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="The daily refresh's watermark (bookings changed since)."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "CoachNova settings"
        verbose_name_plural = "CoachNova settings"
        constraints = [
            models.CheckConstraint(condition=Q(pattern_late_count__gte=2), name="coaching_pattern_at_least_two"),
            models.CheckConstraint(condition=Q(holdout_percent__lte=50), name="coaching_holdout_at_most_half"),
            models.CheckConstraint(condition=Q(quiet_start_hour__lte=23, quiet_end_hour__lte=23),
                                   name="coaching_quiet_hours_in_day"),
        ]

    def __str__(self) -> str:
        return f"CoachNova settings of {self.company}"


class BookingPunctuality(models.Model):
    """How one booking went for its worker: on time, late (minutes), no-show or cancelled by the worker.

    A derived row, written a million at a time by the backfill: it carries no database foreign key (the row-by-row
    checks cost more than the insert itself; even the excusing user's, empty on nearly every row, queued an RI
    trigger for each); Django's CASCADE still deletes it with its booking or worker (and sets the user to null),
    and a reclassification rewrites it from the booking."""

    class Outcome(models.TextChoices):
        ON_TIME = "on_time", "On time"
        LATE = "late", "Late"
        NO_SHOW = "no_show", "No-show"
        CANCELLED_BY_WORKER = "cancelled_by_worker", "Cancelled by the worker"

    booking = models.OneToOneField(Booking, on_delete=models.CASCADE, primary_key=True, related_name="punctuality",
                                   db_constraint=False)
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+", db_index=False,
                                db_constraint=False)
    worker = models.ForeignKey(Worker, on_delete=models.CASCADE, related_name="booking_punctuality", db_index=False,
                               db_constraint=False)
    scheduled_at = models.DateTimeField()
    local_date = models.DateField(help_text="The scheduled day in the company's time zone.")
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    minutes_late = models.IntegerField(default=0, help_text="Minutes after the scheduled time (0 when early).")
    is_excused = models.BooleanField(default=False, help_text="A manager accepted the worker's reason: not counted.")
    excused_reason = models.CharField(max_length=200, blank=True, default="")
    excused_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False,
        db_constraint=False,
    )
    excused_at = models.DateTimeField(null=True, blank=True)
    computed_at = models.DateTimeField(default=now)

    class Meta:
        verbose_name_plural = "booking punctuality"
        indexes = [
            models.Index(fields=["worker", "local_date"], name="punct_worker_date"),
            models.Index(fields=["company", "local_date"], name="punct_company_date"),
            # A run's candidates' late bookings (ids, order, pattern key) read from the index alone: an entry for
            # each late booking not excused only (a few in a hundred), not one for every booking.
            models.Index(fields=["worker", "local_date"], include=["booking", "scheduled_at", "company"],
                         condition=Q(outcome__in=["late", "no_show", "cancelled_by_worker"], is_excused=False),
                         name="punct_worker_late"),
            # Only the excused rows (a user's deletion finds them); not one entry per booking.
            models.Index(fields=["excused_by"], condition=Q(excused_by__isnull=False), name="punct_excused_by"),
        ]

    def __str__(self) -> str:
        return f"booking {self.booking_id}: {self.get_outcome_display()}"

    @property
    def is_punctual(self) -> bool:
        return self.outcome == self.Outcome.ON_TIME


class WorkerPunctuality(models.Model):
    """A worker's rolling punctuality, 14 and 28 days to `as_of` (company-local days), refreshed incrementally."""

    worker = models.OneToOneField(Worker, on_delete=models.CASCADE, primary_key=True, related_name="punctuality")
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+", db_index=False)
    as_of = models.DateField(help_text="The last local day counted.")
    bookings_14 = models.PositiveIntegerField(default=0)
    on_time_14 = models.PositiveIntegerField(default=0)
    late_14 = models.PositiveIntegerField(default=0, help_text="Late arrivals, no-shows and worker cancellations.")
    late_minutes_14 = models.PositiveIntegerField(default=0)
    late_arrivals_14 = models.PositiveIntegerField(default=0)
    bookings_28 = models.PositiveIntegerField(default=0)
    on_time_28 = models.PositiveIntegerField(default=0)
    late_28 = models.PositiveIntegerField(default=0)
    late_minutes_28 = models.PositiveIntegerField(default=0)
    late_arrivals_28 = models.PositiveIntegerField(default=0)
    excused_14 = models.PositiveIntegerField(
        default=0, help_text="Late bookings (late, no-show, worker cancellation) a manager excused: not counted above."
    )
    excused_28 = models.PositiveIntegerField(default=0)
    on_time_rate_14 = models.FloatField(null=True, blank=True)
    on_time_rate_28 = models.FloatField(null=True, blank=True)
    trend = models.FloatField(
        null=True, blank=True,
        help_text="On-time rate of the last 14 days minus that of the 14 before (positive: improving).",
    )
    channel = models.CharField(
        max_length=20, choices=Channel.choices, blank=True, default="",
        help_text="The channel coaching reaches this worker on (blank: the company's).",
    )
    updated_at = models.DateTimeField(default=now)

    class Meta:
        verbose_name_plural = "worker punctuality"
        indexes = [models.Index(fields=["company", "-late_14"], name="wpunct_company_late")]

    def __str__(self) -> str:
        return f"{self.worker_id}: {self.on_time_rate_14}"

    @property
    def average_minutes_late_14(self) -> float | None:
        return round(self.late_minutes_14 / self.late_arrivals_14, 1) if self.late_arrivals_14 else None

    @property
    def average_minutes_late_28(self) -> float | None:
        return round(self.late_minutes_28 / self.late_arrivals_28, 1) if self.late_arrivals_28 else None


class CoachingRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"
        FAILED = "failed", "Failed"

    ACTIVE = (Status.QUEUED, Status.RUNNING, Status.PAUSED)

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="coaching_runs")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    is_dry_run = models.BooleanField(default=False)
    trigger = models.CharField(max_length=20, default="manual", help_text="manual, beat, api, demo")
    rules = models.JSONField(default=dict, blank=True, help_text="The settings the run selected with.")
    as_of = models.DateField(help_text="The local day the pattern window ends.")
    counts = models.JSONField(default=dict, blank=True)
    impact = models.JSONField(default=dict, blank=True, help_text="The last impact computed (see coaching.impact).")
    is_seeded = models.BooleanField(default=False, help_text="Demo data: the outcomes were written by seed_demo.")
    error = models.TextField(blank=True, default="")
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["company", "-created_at"], name="crun_company_created")]
        constraints = [
            models.UniqueConstraint(
                fields=["company"], condition=Q(status__in=["queued", "running", "paused"]),
                name="coaching_one_active_run_per_company",
            ),
        ]

    def __str__(self) -> str:
        return f"CoachNova run {self.pk} ({self.status}{', dry' if self.is_dry_run else ''})"


class CoachingRecipient(models.Model):
    """One worker in one run: coached, held out or skipped (and why); the message, the reply, the outcome."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        COACHED = "coached", "Coached"
        WOULD_COACH = "would_coach", "Would coach (dry run)"
        HOLDOUT = "holdout", "Holdout"
        SKIPPED = "skipped", "Skipped"
        FAILED = "failed", "Failed"

    class Reason(models.TextChoices):
        ON_TIME = "on_time", "On time"
        PATTERN_NOT_MET = "pattern_not_met", "Pattern not met"
        CAPPED = "capped", "Capped"
        NO_CONSENT = "no_consent", "No consent"
        BURNOUT = "burnout", "Under a burnout alert"
        HOLDOUT = "holdout", "Holdout"
        EXCUSED = "excused", "Excused (the late bookings were excused)"
        ALREADY_COACHED = "already_coached", "Already coached for this pattern"
        RECENTLY_COACHED = "recently_coached", "Coached recently"
        INACTIVE = "inactive", "Inactive"
        NO_ADDRESS = "no_address", "No address on the channel"
        NOT_SENDABLE = "not_sendable", "No text passed the safety filter"

    class ReplyReason(models.TextChoices):
        TRAFFIC = "traffic", "Traffic"
        CUSTOMER_MOVED = "customer_moved", "Customer moved the time"
        SCHEDULE_TIGHT = "schedule_tight", "Schedule too tight"
        OTHER = "other", "Other"

    # A selection writes a row for every worker (100k in one transaction): no database foreign keys (their checks
    # at commit cost as much as the insert, even those of the message and the accepting user, empty on a skip row:
    # an RI trigger fires for every row; Django's collector still cascades deletes and sets the message and the
    # user to null, as for the punctuality rows), and a skip row has two index entries: its id and (run, worker),
    # both appended at the end. No index is led by the worker but the coached rows' partial one (an entry at a
    # random place for each of 100k rows cost as much as the rest of the row): a worker's other rows are found
    # through the company's runs (coaching.selectors.worker_coaching).
    run = models.ForeignKey(CoachingRun, on_delete=models.CASCADE, related_name="recipients", db_index=False,
                            db_constraint=False)
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+", db_index=False,
                                db_constraint=False)
    worker = models.ForeignKey(Worker, on_delete=models.CASCADE, related_name="coaching", db_index=False,
                               db_constraint=False)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    reason = models.CharField(max_length=20, choices=Reason.choices, blank=True, default="")
    detail = models.CharField(max_length=200, blank=True, default="")
    pattern_key = models.CharField(max_length=64, blank=True, default="", help_text="Hash of the bookings behind it.")
    booking_ids = models.JSONField(default=list, blank=True)
    holdout_bucket = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="0-99 from a hash of run and worker; below the run's holdout % = holdout."
    )
    channel = models.CharField(max_length=20, blank=True, default="")
    text = models.TextField(blank=True, default="")
    ai_outcome = models.CharField(max_length=30, blank=True, default="")
    message = models.ForeignKey(
        "engage.Message", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False,
        db_constraint=False,
    )
    voice_status = models.CharField(max_length=200, blank=True, default="", help_text="sent, off, or why not")
    audio = models.FileField(upload_to="coaching/audio/", blank=True)
    reply_text = models.TextField(blank=True, default="")
    reply_reason = models.CharField(max_length=20, choices=ReplyReason.choices, blank=True, default="")
    replied_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False,
        db_constraint=False,
    )
    on_time_before = models.FloatField(null=True, blank=True, help_text="On-time rate, 28 days before the run.")
    on_time_after = models.FloatField(null=True, blank=True, help_text="On-time rate, 28 days after the run.")
    created_at = models.DateTimeField(default=now)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            # set only on the coached and accepted rows: the skip rows add no entry
            models.Index(fields=["message"], condition=Q(message__isnull=False), name="crecip_message"),
            models.Index(fields=["accepted_by"], condition=Q(accepted_by__isnull=False), name="crecip_accepted_by"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["run", "worker"], name="coaching_one_row_per_worker_per_run"),
            models.UniqueConstraint(
                fields=["worker", "pattern_key"], condition=Q(status="coached"),
                name="coaching_never_twice_for_one_pattern",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.worker_id} in run {self.run_id}: {self.status}"
