"""CoachNova's models: per-booking punctuality, per-worker rolling stats, the company's settings, runs and their
recipients (who was coached, who was held out, who was skipped and why, and what they answered)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from crm.models import Booking, Channel, Company, Worker


class CoachingSettings(models.Model):
    """One company's CoachNova rules, edited in the admin (defaults from the issue: 3 arrivals over 10 minutes
    late in 14 days, 10% holdout, re-coaching after 6 weeks)."""

    company = models.OneToOneField(Company, on_delete=models.CASCADE, related_name="coaching_settings", verbose_name=_("company"))
    grace_minutes = models.PositiveSmallIntegerField(
        default=10, help_text=_("An arrival more than this many minutes after the scheduled time is late."), verbose_name=_("grace minutes")
    )
    pattern_late_count = models.PositiveSmallIntegerField(
        default=3, help_text=_("Coach a worker late (or absent) this many times or more in the window; never fewer than 2."), verbose_name=_("pattern late count")
    )
    pattern_window_days = models.PositiveSmallIntegerField(default=14, help_text=_("The window of the pattern, in days."), verbose_name=_("pattern window days"))
    holdout_percent = models.PositiveSmallIntegerField(
        default=10, help_text=_("Share of eligible workers held out of each run (no message), to measure the impact."), verbose_name=_("holdout percent")
    )
    recoach_after_days = models.PositiveSmallIntegerField(
        default=42, help_text=_("A coached worker is coached again at the earliest this many days later."), verbose_name=_("recoach after days")
    )
    channel = models.CharField(
        max_length=20, choices=Channel.choices, default=Channel.SMS,
        help_text=_("The channel coaching goes out on, unless the worker's own is set."), verbose_name=_("channel"),
    )
    quiet_start_hour = models.PositiveSmallIntegerField(default=21, help_text=_("Local hour quiet hours start (0-23)."), verbose_name=_("quiet start hour"))
    quiet_end_hour = models.PositiveSmallIntegerField(default=9, help_text=_("Local hour quiet hours end (0-23)."), verbose_name=_("quiet end hour"))
    is_voice_enabled = models.BooleanField(
        default=False, help_text=_("Also send the approved text as speech (COACHNOVA_TTS_* settings); text on failure."), verbose_name=_("is voice enabled")
    )
    punctuality_refreshed_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text=_("The daily refresh's watermark (bookings changed since)."), verbose_name=_("punctuality refreshed at")
    )
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("CoachNova settings")
        verbose_name_plural = _("CoachNova settings")
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
        ON_TIME = "on_time", _("On time")
        LATE = "late", _("Late")
        NO_SHOW = "no_show", _("No-show")
        CANCELLED_BY_WORKER = "cancelled_by_worker", _("Cancelled by the worker")

    booking = models.OneToOneField(Booking, on_delete=models.CASCADE, primary_key=True, related_name="punctuality",
                                   db_constraint=False, verbose_name=_("booking"))
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+", db_index=False,
                                db_constraint=False, verbose_name=_("company"))
    worker = models.ForeignKey(Worker, on_delete=models.CASCADE, related_name="booking_punctuality", db_index=False,
                               db_constraint=False, verbose_name=_("worker"))
    scheduled_at = models.DateTimeField(verbose_name=_("scheduled at"))
    local_date = models.DateField(help_text=_("The scheduled day in the company's time zone."), verbose_name=_("local date"))
    outcome = models.CharField(max_length=20, choices=Outcome.choices, verbose_name=_("outcome"))
    minutes_late = models.IntegerField(default=0, help_text=_("Minutes after the scheduled time (0 when early)."), verbose_name=_("minutes late"))
    is_excused = models.BooleanField(default=False, help_text=_("A manager accepted the worker's reason: not counted."), verbose_name=_("is excused"))
    excused_reason = models.CharField(max_length=200, blank=True, default="", verbose_name=_("excused reason"))
    excused_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False,
        db_constraint=False, verbose_name=_("excused by")
    )
    excused_at = models.DateTimeField(null=True, blank=True, verbose_name=_("excused at"))
    computed_at = models.DateTimeField(default=now, verbose_name=_("computed at"))

    class Meta:
        verbose_name = _("booking punctuality")
        verbose_name_plural = _("booking punctuality")
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

    worker = models.OneToOneField(Worker, on_delete=models.CASCADE, primary_key=True, related_name="punctuality", verbose_name=_("worker"))
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+", db_index=False, verbose_name=_("company"))
    as_of = models.DateField(help_text=_("The last local day counted."), verbose_name=_("as of"))
    bookings_14 = models.PositiveIntegerField(default=0, verbose_name=_("bookings 14"))
    on_time_14 = models.PositiveIntegerField(default=0, verbose_name=_("on time 14"))
    late_14 = models.PositiveIntegerField(default=0, help_text=_("Late arrivals, no-shows and worker cancellations."), verbose_name=_("late 14"))
    late_minutes_14 = models.PositiveIntegerField(default=0, verbose_name=_("late minutes 14"))
    late_arrivals_14 = models.PositiveIntegerField(default=0, verbose_name=_("late arrivals 14"))
    bookings_28 = models.PositiveIntegerField(default=0, verbose_name=_("bookings 28"))
    on_time_28 = models.PositiveIntegerField(default=0, verbose_name=_("on time 28"))
    late_28 = models.PositiveIntegerField(default=0, verbose_name=_("late 28"))
    late_minutes_28 = models.PositiveIntegerField(default=0, verbose_name=_("late minutes 28"))
    late_arrivals_28 = models.PositiveIntegerField(default=0, verbose_name=_("late arrivals 28"))
    excused_14 = models.PositiveIntegerField(
        default=0, help_text=_("Late bookings (late, no-show, worker cancellation) a manager excused: not counted above."), verbose_name=_("excused 14")
    )
    excused_28 = models.PositiveIntegerField(default=0, verbose_name=_("excused 28"))
    on_time_rate_14 = models.FloatField(null=True, blank=True, verbose_name=_("on time rate 14"))
    on_time_rate_28 = models.FloatField(null=True, blank=True, verbose_name=_("on time rate 28"))
    trend = models.FloatField(
        null=True, blank=True,
        help_text=_("On-time rate of the last 14 days minus that of the 14 before (positive: improving)."), verbose_name=_("trend"),
    )
    channel = models.CharField(
        max_length=20, choices=Channel.choices, blank=True, default="",
        help_text=_("The channel coaching reaches this worker on (blank: the company's)."), verbose_name=_("channel"),
    )
    updated_at = models.DateTimeField(default=now, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("worker punctuality")
        verbose_name_plural = _("worker punctuality")
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
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        PAUSED = "paused", _("Paused")
        COMPLETED = "completed", _("Completed")
        CANCELLED = "cancelled", _("Cancelled")
        FAILED = "failed", _("Failed")

    ACTIVE = (Status.QUEUED, Status.RUNNING, Status.PAUSED)

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="coaching_runs", verbose_name=_("company"))
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED, verbose_name=_("status"))
    is_dry_run = models.BooleanField(default=False, verbose_name=_("is dry run"))
    trigger = models.CharField(max_length=20, default="manual", help_text=_("manual, beat, api, demo"), verbose_name=_("trigger"))
    rules = models.JSONField(default=dict, blank=True, help_text=_("The settings the run selected with."), verbose_name=_("rules"))
    as_of = models.DateField(help_text=_("The local day the pattern window ends."), verbose_name=_("as of"))
    counts = models.JSONField(default=dict, blank=True, verbose_name=_("counts"))
    impact = models.JSONField(default=dict, blank=True, help_text=_("The last impact computed (see coaching.impact)."), verbose_name=_("impact"))
    is_seeded = models.BooleanField(default=False, help_text=_("Demo data: the outcomes were written by seed_demo."), verbose_name=_("is seeded"))
    error = models.TextField(blank=True, default="", verbose_name=_("error"))
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("triggered by")
    )
    created_at = models.DateTimeField(default=now, verbose_name=_("created at"))
    started_at = models.DateTimeField(null=True, blank=True, verbose_name=_("started at"))
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name=_("finished at"))

    class Meta:
        verbose_name = _("coaching run")
        verbose_name_plural = _("coaching runs")
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
        PENDING = "pending", _("Pending")
        COACHED = "coached", _("Coached")
        WOULD_COACH = "would_coach", _("Would coach (dry run)")
        HOLDOUT = "holdout", _("Holdout")
        SKIPPED = "skipped", _("Skipped")
        FAILED = "failed", _("Failed")

    class Reason(models.TextChoices):
        ON_TIME = "on_time", _("On time")
        PATTERN_NOT_MET = "pattern_not_met", _("Pattern not met")
        CAPPED = "capped", _("Capped")
        NO_CONSENT = "no_consent", _("No consent")
        BURNOUT = "burnout", _("Under a burnout alert")
        HOLDOUT = "holdout", _("Holdout")
        EXCUSED = "excused", _("Excused (the late bookings were excused)")
        ALREADY_COACHED = "already_coached", _("Already coached for this pattern")
        RECENTLY_COACHED = "recently_coached", _("Coached recently")
        INACTIVE = "inactive", _("Inactive")
        NO_ADDRESS = "no_address", _("No address on the channel")
        NOT_SENDABLE = "not_sendable", _("No text passed the safety filter")

    class ReplyReason(models.TextChoices):
        TRAFFIC = "traffic", _("Traffic")
        CUSTOMER_MOVED = "customer_moved", _("Customer moved the time")
        SCHEDULE_TIGHT = "schedule_tight", _("Schedule too tight")
        OTHER = "other", _("Other")

    # A selection writes a row for every worker (100k in one transaction): no database foreign keys (their checks
    # at commit cost as much as the insert, even those of the message and the accepting user, empty on a skip row:
    # an RI trigger fires for every row; Django's collector still cascades deletes and sets the message and the
    # user to null, as for the punctuality rows), and a skip row has two index entries: its id and (run, worker),
    # both appended at the end. No index is led by the worker but the coached rows' partial one (an entry at a
    # random place for each of 100k rows cost as much as the rest of the row): a worker's other rows are found
    # through the company's runs (coaching.selectors.worker_coaching).
    run = models.ForeignKey(CoachingRun, on_delete=models.CASCADE, related_name="recipients", db_index=False,
                            db_constraint=False, verbose_name=_("run"))
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+", db_index=False,
                                db_constraint=False, verbose_name=_("company"))
    worker = models.ForeignKey(Worker, on_delete=models.CASCADE, related_name="coaching", db_index=False,
                               db_constraint=False, verbose_name=_("worker"))
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING, verbose_name=_("status"))
    reason = models.CharField(max_length=20, choices=Reason.choices, blank=True, default="", verbose_name=_("reason"))
    detail = models.CharField(max_length=200, blank=True, default="", verbose_name=_("detail"))
    pattern_key = models.CharField(max_length=64, blank=True, default="", help_text=_("Hash of the bookings behind it."), verbose_name=_("pattern key"))
    booking_ids = models.JSONField(default=list, blank=True, verbose_name=_("booking ids"))
    holdout_bucket = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text=_("0-99 from a hash of run and worker; below the run's holdout % = holdout."), verbose_name=_("holdout bucket")
    )
    channel = models.CharField(max_length=20, blank=True, default="", verbose_name=_("channel"))
    text = models.TextField(blank=True, default="", verbose_name=_("text"))
    ai_outcome = models.CharField(max_length=30, blank=True, default="", verbose_name=_("ai outcome"))
    message = models.ForeignKey(
        "engage.Message", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False,
        db_constraint=False, verbose_name=_("message")
    )
    voice_status = models.CharField(max_length=200, blank=True, default="", help_text=_("sent, off, or why not"), verbose_name=_("voice status"))
    audio = models.FileField(upload_to="coaching/audio/", blank=True, verbose_name=_("audio"))
    reply_text = models.TextField(blank=True, default="", verbose_name=_("reply text"))
    reply_reason = models.CharField(max_length=20, choices=ReplyReason.choices, blank=True, default="", verbose_name=_("reply reason"))
    replied_at = models.DateTimeField(null=True, blank=True, verbose_name=_("replied at"))
    accepted_at = models.DateTimeField(null=True, blank=True, verbose_name=_("accepted at"))
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False,
        db_constraint=False, verbose_name=_("accepted by")
    )
    on_time_before = models.FloatField(null=True, blank=True, help_text=_("On-time rate, 28 days before the run."), verbose_name=_("on time before"))
    on_time_after = models.FloatField(null=True, blank=True, help_text=_("On-time rate, 28 days after the run."), verbose_name=_("on time after"))
    created_at = models.DateTimeField(default=now, verbose_name=_("created at"))
    processed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("processed at"))

    class Meta:
        verbose_name = _("coaching recipient")
        verbose_name_plural = _("coaching recipients")
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
