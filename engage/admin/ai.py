"""Admin of the AI: model settings per company, every model call (AI sessions), the knowledge base, banned
phrases and approved fallback texts."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy

from crm.tenancy.admin import TenantScopedAdmin
from engage.ai.models import AIConfig, AISession, BannedPhrase, FallbackText, KnowledgeDoc
from shokti.admin import https_formfield


class AIConfigForm(forms.ModelForm):
    api_key = forms.CharField(
        required=False, widget=forms.PasswordInput(render_value=False),
        label=gettext_lazy("API key"),
        help_text=gettext_lazy("Write-only. Leave empty to keep the stored key; type a single '-' to remove it."),
    )

    class Meta:
        model = AIConfig
        fields = "__all__"  # noqa: DJ007  (the ModelAdmin's fieldsets decide what is shown)
        formfield_callback = https_formfield

    def clean_api_key(self):
        value = self.cleaned_data.get("api_key", "")
        if value == "":
            return self.instance.api_key if self.instance.pk else ""
        return "" if value == "-" else value


@admin.register(AIConfig)
class AIConfigAdmin(TenantScopedAdmin):
    form = AIConfigForm
    list_display = ["company", "model", "temperature", "max_tokens", "is_reply_enabled", "followup_after_hours",
                    "followup_max", "has_own_key", "updated_at"]
    list_filter = ["is_reply_enabled", "model"]
    list_select_related = ["company"]
    search_fields = ["company__name", "model"]
    ordering = ["company__name"]
    fieldsets = [
        (None, {"fields": ["company", "model", "temperature", "max_tokens", "system_prompt", "is_reply_enabled"]}),
        (gettext_lazy("Endpoint (optional)"), {"fields": ["api_base_url", "api_key"]}),
        (gettext_lazy("Follow-ups and hand-off"), {"fields": ["followup_after_hours", "followup_cadence_hours", "followup_max",
                                                "handoff_keywords"]}),
        (gettext_lazy("Safety"), {"fields": ["sms_max_segments", "required_link", "allowed_contact_details", "allowed_link_domains",
                               "is_moderation_enabled", "is_tone_judge_enabled", "time_budget_seconds"]}),
    ]

    @admin.display(boolean=True, description=gettext_lazy("own key"))
    def has_own_key(self, config: AIConfig) -> bool:
        return bool(config.api_key)


@admin.register(AISession)
class AISessionAdmin(TenantScopedAdmin):
    list_display = ["created_at", "company", "agent_type", "purpose", "outcome", "model", "tokens_in", "tokens_out",
                    "latency_ms", "lead"]
    list_filter = ["outcome", "agent_type", "purpose", "company"]
    list_select_related = ["company", "lead__contact", "lead__pipeline"]
    search_fields = ["correlation_id", "lead__contact__phone", "error"]
    raw_id_fields = ["lead", "contact", "message"]
    ordering = ["-created_at", "-id"]
    date_hierarchy = None

    def get_queryset(self, request):
        # The prompt and texts are big: the list never loads them.
        return super().get_queryset(request).defer("prompt_messages", "response_text", "final_text", "safety")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(KnowledgeDoc)
class KnowledgeDocAdmin(TenantScopedAdmin):
    list_display = ["title", "company", "tags", "is_active", "updated_at"]
    list_filter = ["is_active", "company"]
    list_select_related = ["company"]
    search_fields = ["title", "body"]
    exclude = ["search_vector"]
    ordering = ["company", "title"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("body", "search_vector")


@admin.register(BannedPhrase)
class BannedPhraseAdmin(TenantScopedAdmin):
    list_display = ["phrase", "company", "note", "created_at"]
    list_filter = ["company"]
    list_select_related = ["company"]
    search_fields = ["phrase", "note"]
    ordering = ["phrase"]


@admin.register(FallbackText)
class FallbackTextAdmin(TenantScopedAdmin):
    list_display = ["message_type", "locale", "company", "body", "approved_by", "updated_at"]
    list_filter = ["locale", "message_type", "company"]
    list_select_related = ["company", "approved_by"]
    search_fields = ["body", "message_type"]
    readonly_fields = ["approved_by", "updated_at"]
    ordering = ["message_type", "locale"]

    def save_model(self, request, obj, form, change):
        obj.approved_by = request.user  # whoever saves a fallback approves its wording
        super().save_model(request, obj, form, change)
