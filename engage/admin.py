"""engage's admin. Shared by the engage engineers: add your model admins below (or in a module imported here)."""

from django.contrib import admin

from crm.tenancy.admin import TenantScopedAdmin
from engage.ai_admin import AISessionAdmin, LeadAdmin  # noqa: F401  (AI, templates, sequences, lead conversation)
from engage.campaign_admin import CampaignAdmin, CampaignRecipientAdmin, CampaignRunAdmin  # noqa: F401
from engage.jobs_admin import JobAdmin, MessageAdmin  # noqa: F401  (job ledger with replay/cancel, messages)
from engage.models import ShortLink
from engage.policy_admin import CampaignPresetInline, EngagementPolicyAdmin  # noqa: F401


@admin.register(ShortLink)
class ShortLinkAdmin(TenantScopedAdmin):
    """The short links SMS and WhatsApp reminders carried: where each leads, for which message, until when."""

    company_field = "company"
    list_display = ["code", "company", "correlation_id", "expires_at", "created_at"]
    list_filter = ["company"]
    list_select_related = ["company"]
    search_fields = ["=code", "=correlation_id"]
    ordering = ["-created_at", "-id"]
    readonly_fields = ["company", "code", "target_url", "correlation_id", "expires_at", "created_at"]

    def has_add_permission(self, request):
        return False  # made by the sends

    def has_change_permission(self, request, obj=None):
        return False
