"""Per-company engagement policy: frequency caps, feature flags, attribution window, campaign presets.

Edited in the admin; read through `engage.policy.services.policy_for(company=...)`, which caches a snapshot
and is invalidated whenever a policy or preset is saved or deleted, so a change holds from the next send.
"""

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _


def _default_attribution_window_hours() -> int:
    return settings.ATTRIBUTION_WINDOW_HOURS


class EngagementPolicy(models.Model):
    """One per company (created with defaults on first use)."""

    company = models.OneToOneField("crm.Company", on_delete=models.CASCADE, related_name="engagement_policy", verbose_name=_("company"))
    # Frequency caps. Days and weeks are calendar days/weeks (Monday first) in the contact's time zone.
    customer_daily_limit = models.PositiveSmallIntegerField(default=1, verbose_name=_("customer daily limit"))
    customer_weekly_limit = models.PositiveSmallIntegerField(default=2, verbose_name=_("customer weekly limit"))
    customer_min_hours_between = models.PositiveSmallIntegerField(default=24, verbose_name=_("customer min hours between"))
    worker_daily_limit = models.PositiveSmallIntegerField(default=1, verbose_name=_("worker daily limit"))
    worker_weekly_limit = models.PositiveSmallIntegerField(default=1, verbose_name=_("worker weekly limit"))
    worker_min_hours_between = models.PositiveSmallIntegerField(default=72, verbose_name=_("worker min hours between"))
    # Feature flags.
    is_smartengage_enabled = models.BooleanField(_("SmartEngage enabled"), default=True)
    is_coachnova_enabled = models.BooleanField(_("CoachNova enabled"), default=True)
    is_ai_generation_enabled = models.BooleanField(
        _("AI generation enabled"), default=True, help_text=_("Off: send the approved fallback texts.")
    )
    is_safety_filter_enabled = models.BooleanField(_("safety filter enabled"), default=True)
    is_deeplink_enabled = models.BooleanField(_("deep links enabled"), default=True)
    attribution_window_hours = models.PositiveSmallIntegerField(
        default=_default_attribution_window_hours,
        validators=[MinValueValidator(1), MaxValueValidator(24 * 60)],
        help_text=_("A booking this many hours after a click on a message is that message's conversion."), verbose_name=_("attribution window hours"),
    )
    default_preset = models.CharField(max_length=40, default="default", verbose_name=_("default preset"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("engagement policy")
        verbose_name_plural = _("engagement policies")

    def __str__(self) -> str:
        return f"Engagement policy of {self.company}"

    def save(self, *args, **kwargs) -> None:
        super().save(*args, **kwargs)
        _invalidate(self.company_id)

    def delete(self, *args, **kwargs):
        company_id = self.company_id
        result = super().delete(*args, **kwargs)
        _invalidate(company_id)
        return result

    def clean(self) -> None:
        if self.customer_daily_limit > self.customer_weekly_limit:
            raise ValidationError({"customer_daily_limit": _("The daily cap cannot exceed the weekly cap.")})
        if self.worker_daily_limit > self.worker_weekly_limit:
            raise ValidationError({"worker_daily_limit": _("The daily cap cannot exceed the weekly cap.")})


class CampaignPreset(models.Model):
    """Named campaign settings: cadence, batch size, send window (local hours, start inclusive, end exclusive)."""

    DEFAULTS = (
        # name, cadence_days, batch_size, window start hour, window end hour
        ("default", 21, 100, 9, 18),
        ("aggressive", 14, 200, 8, 20),
        ("gentle", 28, 50, 10, 17),
        ("weekend", 21, 150, 10, 16),
    )

    policy = models.ForeignKey(EngagementPolicy, on_delete=models.CASCADE, related_name="presets", verbose_name=_("policy"))
    name = models.CharField(max_length=40, verbose_name=_("name"))
    cadence_days = models.PositiveSmallIntegerField(validators=[MinValueValidator(1)], verbose_name=_("cadence days"))
    window_days = models.PositiveSmallIntegerField(
        default=7,
        validators=[MinValueValidator(1)],
        help_text=_("Customers whose last booking is between cadence_days and cadence_days + window_days old."), verbose_name=_("window days"),
    )
    batch_size = models.PositiveIntegerField(validators=[MinValueValidator(1), MaxValueValidator(10000)], verbose_name=_("batch size"))
    send_window_start_hour = models.PositiveSmallIntegerField(validators=[MaxValueValidator(23)], verbose_name=_("send window start hour"))
    send_window_end_hour = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(24)], verbose_name=_("send window end hour"))
    created_at = models.DateTimeField(default=now, editable=False, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("campaign preset")
        verbose_name_plural = _("campaign presets")
        ordering = ["policy", "name"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "name"], name="campaign_preset_unique_name_per_policy"),
            models.CheckConstraint(
                condition=models.Q(send_window_start_hour__lt=models.F("send_window_end_hour")),
                name="campaign_preset_window_start_before_end",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.cadence_days} d, {self.batch_size}, {self.send_window})"

    def save(self, *args, **kwargs) -> None:
        super().save(*args, **kwargs)
        _invalidate(self.policy.company_id)

    def delete(self, *args, **kwargs):
        company_id = self.policy.company_id
        result = super().delete(*args, **kwargs)
        _invalidate(company_id)
        return result

    @property
    def send_window(self) -> str:
        return f"{self.send_window_start_hour}-{self.send_window_end_hour}"

    def clean(self) -> None:
        start, end = self.send_window_start_hour, self.send_window_end_hour
        if start is not None and end is not None and start >= end:
            raise ValidationError({"send_window_end_hour": _("The send window must end after it starts.")})


def policy_cache_key(company_id: int) -> str:
    """The cache key of a company's policy snapshot (engage.policy.services.policy_for)."""
    return f"engage:policy:v1:{company_id}"


def policy_cache_invalidate(*, company_id: int) -> None:
    cache.delete(policy_cache_key(company_id))


def _invalidate(company_id: int) -> None:
    policy_cache_invalidate(company_id=company_id)
    # Also after commit: a reader between our write and the commit may have cached the old row.
    transaction.on_commit(lambda: policy_cache_invalidate(company_id=company_id))
