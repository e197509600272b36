"""The job ledger: a transactional outbox in front of Celery (see docs/jobs.md)."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _


class Job(models.Model):
    """One unit of background work, inserted in the transaction of the data that caused it."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        PROCESSING = "processing", _("Processing")
        COMPLETED = "completed", _("Completed")
        FAILED = "failed", _("Failed (will retry)")
        DEAD = "dead", _("Dead (dead-letter queue)")
        CANCELLED = "cancelled", _("Cancelled (by an operator or its campaign run)")

    # No index of its own: job_company_status starts with it (fewer indexes to write).
    company = models.ForeignKey(
        "crm.Company", on_delete=models.CASCADE, null=True, blank=True, related_name="jobs",
        help_text=_("Empty for system jobs."), db_index=False, verbose_name=_("company"),
    )
    task_name = models.CharField(max_length=64, verbose_name=_("task name"))
    priority = models.PositiveSmallIntegerField(
        default=50, validators=[MinValueValidator(0), MaxValueValidator(100)], help_text=_("0-100, higher runs first."), verbose_name=_("priority")
    )
    payload = models.JSONField(default=dict, blank=True, verbose_name=_("payload"))
    idempotency_key = models.CharField(max_length=200, unique=True, verbose_name=_("idempotency key"))
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED, verbose_name=_("status"))
    attempts = models.PositiveSmallIntegerField(default=0, verbose_name=_("attempts"))
    max_attempts = models.PositiveSmallIntegerField(default=5, validators=[MinValueValidator(1)], verbose_name=_("max attempts"))
    next_run_at = models.DateTimeField(default=now, help_text=_("Not run before this time."), verbose_name=_("next run at"))
    dispatched_at = models.DateTimeField(null=True, blank=True, help_text=_("Last hand-over to Celery."), verbose_name=_("dispatched at"))
    locked_at = models.DateTimeField(null=True, blank=True, verbose_name=_("locked at"))
    locked_by = models.CharField(max_length=200, blank=True, verbose_name=_("locked by"))
    lease_expires_at = models.DateTimeField(
        null=True, blank=True,
        help_text=_("While processing: renewed by the running worker's heartbeat; once past, the job is reclaimed."), verbose_name=_("lease expires at"),
    )
    last_error = models.TextField(blank=True, verbose_name=_("last error"))
    result = models.JSONField(null=True, blank=True, verbose_name=_("result"))
    created_at = models.DateTimeField(default=now, editable=False, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))
    started_at = models.DateTimeField(null=True, blank=True, verbose_name=_("started at"))
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name=_("finished at"))

    class Meta:
        verbose_name = _("job")
        verbose_name_plural = _("jobs")
        ordering = ["-id"]
        indexes = [
            # The relay: due queued/failed rows, oldest first.
            models.Index(
                fields=["next_run_at"], name="job_due", condition=Q(status__in=["queued", "failed"])
            ),
            # Reclaiming processing rows whose worker died.
            models.Index(fields=["locked_at"], name="job_processing_locked", condition=Q(status="processing")),
            # Queue stats and admin filters per company.
            models.Index(fields=["company", "status", "created_at"], name="job_company_status"),
            models.Index(fields=["task_name", "status"], name="job_task_status"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(priority__gte=0, priority__lte=100), name="job_priority_0_100"),
        ]

    def __str__(self) -> str:
        return f"{self.task_name} #{self.pk} ({self.status})"
