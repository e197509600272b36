"""Admin of the engagement policy (imported by engage/admin/__init__.py): one per company, presets inline."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.tenancy.admin import TenantScopedAdmin, TenantScopedInline
from engage.policy.models import CampaignPreset, EngagementPolicy
from engage.policy.services import policy_presets_restore


class CampaignPresetInline(TenantScopedInline):
    model = CampaignPreset
    company_field = "policy__company"
    extra = 0
    fields = ["name", "cadence_days", "window_days", "batch_size", "send_window_start_hour", "send_window_end_hour"]


@admin.register(EngagementPolicy)
class EngagementPolicyAdmin(TenantScopedAdmin):
    list_display = [
        "company",
        "customer_daily_limit",
        "customer_weekly_limit",
        "customer_min_hours_between",
        "worker_weekly_limit",
        "worker_min_hours_between",
        "is_smartengage_enabled",
        "is_coachnova_enabled",
        "is_ai_generation_enabled",
        "attribution_window_hours",
        "updated_at",
    ]
    list_filter = ["is_smartengage_enabled", "is_coachnova_enabled", "is_ai_generation_enabled"]
    search_fields = ["company__name", "company__slug"]
    list_select_related = ["company"]
    autocomplete_fields = ["company"]
    ordering = ["company__name"]
    readonly_fields = ["updated_at"]
    actions = ["restore_default_presets"]
    fieldsets = [
        (None, {"fields": ["company", "default_preset", "attribution_window_hours", "updated_at"]}),
        (
            gettext_lazy("Frequency caps (calendar days and weeks in the contact's time zone)"),
            {
                "fields": [
                    ("customer_daily_limit", "customer_weekly_limit", "customer_min_hours_between"),
                    ("worker_daily_limit", "worker_weekly_limit", "worker_min_hours_between"),
                ]
            },
        ),
        (
            gettext_lazy("Feature flags"),
            {
                "fields": [
                    "is_smartengage_enabled",
                    "is_coachnova_enabled",
                    "is_ai_generation_enabled",
                    "is_safety_filter_enabled",
                    "is_deeplink_enabled",
                ]
            },
        ),
    ]

    inlines = [CampaignPresetInline]

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        if not change:  # a new policy starts with the seed's presets (besides any added inline)
            policy_presets_restore(company=form.instance.company, policy=form.instance)

    @admin.action(description=gettext_lazy("Restore the missing default campaign presets"))
    def restore_default_presets(self, request, queryset):
        created = sum(policy_presets_restore(company=policy.company) for policy in queryset.select_related("company"))
        self.message_user(request, _("%d preset(s) restored.") % created, messages.SUCCESS)
