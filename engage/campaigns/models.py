"""SmartEngage campaigns: what to send (Campaign), each execution (CampaignRun), and each person (CampaignRecipient).

A recipient row is the intent to send, written (with its ledger job and queued message) before any
provider is called. It is unique per campaign, customer and cycle (the customer's last completed
booking when the intent was written), so a crashed and restarted run, a second run the same day, or
a "retry failed" never reminds anybody twice for the same lapse. Skipped and dry-run rows are exempt:
they sent nothing, so they hold no place in the cycle (a customer capped today is tried again tomorrow).
A run works in time slices (one ledger job each); `cursor` is where the next slice, or a retry, goes on.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from crm.models import Channel


class Campaign(models.Model):
    class Type(models.TextChoices):
        SMARTENGAGE = "smartengage", _("SmartEngage reminders")

    company = models.ForeignKey("crm.Company", on_delete=models.CASCADE, related_name="campaigns", verbose_name=_("company"))
    name = models.CharField(max_length=120, verbose_name=_("name"))
    type = models.CharField(max_length=20, choices=Type.choices, default=Type.SMARTENGAGE, verbose_name=_("type"))
    preset = models.CharField(
        max_length=40, default="default", help_text=_("Name of a campaign preset of the company's engagement policy."), verbose_name=_("preset")
    )
    channel = models.CharField(max_length=20, choices=Channel.choices, default=Channel.EMAIL, verbose_name=_("channel"))
    service = models.ForeignKey(
        "crm.Service", on_delete=models.SET_NULL, null=True, blank=True, related_name="campaigns",
        help_text=_("Empty: each customer's last booked service."), verbose_name=_("service"),
    )
    promo_code = models.CharField(max_length=40, blank=True, verbose_name=_("promo code"))
    link_ttl_hours = models.PositiveSmallIntegerField(default=48, help_text=_("Validity of the booking links."), verbose_name=_("link ttl hours"))
    is_paused = models.BooleanField(default=False, help_text=_("A paused campaign is skipped by the daily beat run."), verbose_name=_("is paused"))
    created_at = models.DateTimeField(default=now, editable=False, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        ordering = ["company", "name"]
        constraints = [models.UniqueConstraint(fields=["company", "name"], name="campaign_unique_name_per_company")]
        permissions = [
            ("bypass_frequency_caps", "Can send SmartEngage messages past the frequency caps"),
        ]

    def __str__(self) -> str:
        return self.name


class CampaignRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        COMPLETED = "completed", _("Completed")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")
        LOCKED = "locked", _("Not run: another run held the lock")
        DISABLED = "disabled", _("Not run: SmartEngage is switched off")

    class Trigger(models.TextChoices):
        BEAT = "beat", _("Daily schedule")
        ADMIN = "admin", _("Admin")
        API = "api", _("Internal API")

    ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)
    FINISHED_STATUSES = (Status.COMPLETED, Status.FAILED, Status.CANCELLED, Status.LOCKED, Status.DISABLED)

    company = models.ForeignKey("crm.Company", on_delete=models.CASCADE, related_name="campaign_runs", verbose_name=_("company"))
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="runs", verbose_name=_("campaign"))
    preset = models.JSONField(default=dict, blank=True, help_text=_("The preset as it was when the run was queued."), verbose_name=_("preset"))
    promo_code = models.CharField(max_length=40, blank=True, verbose_name=_("promo code"))
    is_dry_run = models.BooleanField(_("dry run"), default=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, verbose_name=_("status"))
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.ADMIN, verbose_name=_("trigger"))
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("triggered by")
    )
    total_eligible = models.PositiveIntegerField(default=0, verbose_name=_("total eligible"))
    sent = models.PositiveIntegerField(default=0, verbose_name=_("sent"))
    failed = models.PositiveIntegerField(default=0, verbose_name=_("failed"))
    skipped = models.PositiveIntegerField(default=0, verbose_name=_("skipped"))
    rendered = models.PositiveIntegerField(default=0, help_text=_("Dry run: messages rendered and not sent."), verbose_name=_("rendered"))
    correlation_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False, verbose_name=_("correlation id"))
    job = models.ForeignKey(
        "engage.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        help_text=_("The ledger job of the run's current slice."), verbose_name=_("job"),
    )
    cursor = models.PositiveBigIntegerField(
        default=0, help_text=_("Keyset cursor: the last customer id the run is done with (a slice or a retry resumes after it)."), verbose_name=_("cursor")
    )
    slices = models.PositiveIntegerField(default=1, help_text=_("Time slices (ledger jobs) the run has used so far."), verbose_name=_("slices"))
    error = models.TextField(blank=True, verbose_name=_("error"))
    created_at = models.DateTimeField(default=now, editable=False, verbose_name=_("created at"))
    started_at = models.DateTimeField(null=True, blank=True, verbose_name=_("started at"))
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name=_("finished at"))

    class Meta:
        verbose_name = _("campaign run")
        verbose_name_plural = _("campaign runs")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["campaign", "-created_at"], name="campaignrun_campaign_created"),
            models.Index(fields=["company", "-created_at"], name="campaignrun_company_created"),
        ]
        constraints = [
            # One queued or running run per campaign: the second trigger is recorded as locked.
            models.UniqueConstraint(
                fields=["campaign"], condition=Q(status__in=["queued", "running"]), name="campaignrun_one_active"
            ),
            # The key the recipients' composite foreign key refers to (see CampaignRecipient).
            models.UniqueConstraint(fields=["id", "campaign", "company"], name="campaignrun_id_campaign_company"),
        ]

    def __str__(self) -> str:
        kind = "dry run" if self.is_dry_run else "run"
        return f"{self.campaign} {kind} #{self.pk} ({self.status})"

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return round((self.finished_at - self.started_at).total_seconds(), 3)


class CampaignRecipient(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending (intent written)")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")
        SKIPPED = "skipped", _("Skipped")
        DRY_RUN = "dry_run", _("Dry run (rendered, not sent)")

    class Reason(models.TextChoices):
        NO_CONSENT = "no_consent", _("No consent")
        NO_ADDRESS = "no_address", _("No address for the channel")
        DAILY_CAP = "daily_cap", _("Daily cap reached")
        WEEKLY_CAP = "weekly_cap", _("Weekly cap reached")
        TOO_SOON = "too_soon", _("Too soon after the last message")
        OUTSIDE_SEND_WINDOW = "outside_send_window", _("Outside the send window")
        SAFETY_REJECTED = "safety_rejected", _("Safety filter rejected the AI text (the fallback went out if it passed)")
        AI_FAILED_FALLBACK = "ai_failed_fallback", _("AI unavailable or failed (fallback sent)")
        ALREADY_REMINDED = "already_reminded", _("Already reminded in this cycle")
        HOLDOUT = "holdout", _("In the company's experiment holdout")

    SKIP_REASONS = (
        Reason.NO_CONSENT, Reason.NO_ADDRESS, Reason.DAILY_CAP, Reason.WEEKLY_CAP, Reason.TOO_SOON,
        Reason.OUTSIDE_SEND_WINDOW, Reason.ALREADY_REMINDED, Reason.HOLDOUT,
    )
    FALLBACK_REASONS = (Reason.SAFETY_REJECTED, Reason.AI_FAILED_FALLBACK)

    # On PostgreSQL one composite foreign key, (run, campaign, company) -> the run's (id, campaign,
    # company), DEFERRABLE INITIALLY DEFERRED (migration 0022), stands for the three: one check a row
    # at COMMIT instead of three, and a recipient's campaign and company must be its run's. Hence no
    # constraint of their own for company and campaign (SQLite keeps its three plain ones).
    company = models.ForeignKey(
        "crm.Company", on_delete=models.CASCADE, related_name="campaign_recipients", db_constraint=False, verbose_name=_("company")
    )
    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="recipients", db_constraint=False, db_index=False, verbose_name=_("campaign")
    )
    run = models.ForeignKey(CampaignRun, on_delete=models.CASCADE, related_name="recipients", db_index=False, verbose_name=_("run"))
    customer = models.ForeignKey("crm.Customer", on_delete=models.CASCADE, related_name="campaign_recipients", verbose_name=_("customer"))
    cycle_started_at = models.DateTimeField(
        help_text=_("The cycle key: the customer's last completed booking when the intent was written."), verbose_name=_("cycle started at")
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, verbose_name=_("status"))
    reason = models.CharField(
        _("skip or fallback reason"), max_length=24, choices=Reason.choices, blank=True,
        help_text=_("Why the recipient was skipped, or why the approved fallback text was sent instead of the AI's."),
    )
    body = models.TextField(blank=True, help_text=_("The rendered message (also kept for dry runs)."), verbose_name=_("body"))
    # Empty on skipped and dry-run rows (most of them): indexed by partial indexes (Meta).
    message = models.ForeignKey(
        "engage.Message", on_delete=models.SET_NULL, null=True, blank=True, related_name="campaign_recipients",
        db_index=False, verbose_name=_("message"),
    )
    job = models.ForeignKey(
        "engage.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False, verbose_name=_("job")
    )
    template_version = models.ForeignKey(
        "engage.PromptTemplateVersion", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        db_index=False, verbose_name=_("template version"),
    )
    correlation_id = models.UUIDField(default=uuid.uuid4, editable=False, verbose_name=_("correlation id"))
    error = models.TextField(blank=True, verbose_name=_("error"))
    created_at = models.DateTimeField(default=now, editable=False, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("campaign recipient")
        verbose_name_plural = _("campaign recipients")
        ordering = ["run", "id"]
        # No index on campaign alone: its lookups (an intent this cycle) use campaignrecipient_once_per_cycle,
        # the funnel's go by message. run alone is run_status's prefix. Every lookup by message, job or
        # template version is by a value (`= x`, `IN (...)`, SET_NULL's too), which a partial index serves.
        indexes = [
            models.Index(fields=["run", "status"], name="campaignrecipient_run_status"),
            models.Index(fields=["correlation_id"], name="campaignrecipient_correlation"),
            models.Index(fields=["message"], condition=Q(message__isnull=False), name="campaignrecipient_message"),
            models.Index(fields=["job"], condition=Q(job__isnull=False), name="campaignrecipient_job"),
            models.Index(
                fields=["template_version"], condition=Q(template_version__isnull=False),
                name="campaignrecipient_template",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "cycle_started_at", "customer"],
                condition=Q(status__in=["pending", "sent", "failed"]),
                name="campaignrecipient_once_per_cycle",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer} in {self.run} ({self.status})"


class ShortLink(models.Model):
    company = models.ForeignKey("crm.Company", on_delete=models.CASCADE, related_name="short_links", verbose_name=_("company"))
    code = models.CharField(max_length=16, unique=True, verbose_name=_("code"))
    target_url = models.TextField(help_text=_("The signed deep link this code redirects to."), verbose_name=_("target url"))
    correlation_id = models.UUIDField(null=True, blank=True, help_text=_("The message that carries the link."), verbose_name=_("correlation id"))
    expires_at = models.DateTimeField(help_text=_("When the signed link expires; the code answers 410 after it."), verbose_name=_("expires at"))
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("short link")
        verbose_name_plural = _("short links")
        indexes = [models.Index(fields=["expires_at"], name="shortlink_expires_at")]

    def __str__(self) -> str:
        return self.code
