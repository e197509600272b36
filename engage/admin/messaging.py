"""Admin of every inbound and outbound message with its delivery history."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html_join
from django.utils.text import Truncator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.tenancy.admin import TenantScopedAdmin
from engage.messaging.models import Message, MessageAttachment


class MessageAttachmentInline(admin.TabularInline):
    """The files a customer sent with the message (shown, with a player, on the lead's page)."""

    model = MessageAttachment
    fields = ["position", "media_type", "status", "content_type", "size", "error", "file"]
    readonly_fields = fields
    ordering = ["position"]
    extra = 0
    can_delete = False

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("engage.view_message")  # whoever may see the message sees its files

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Message)
class MessageAdmin(TenantScopedAdmin):
    company_field = "company"
    list_display = ["id", "created_at", "company", "contact", "direction", "channel", "agent_type", "message_type",
                    "status", "body_preview"]
    list_filter = ["direction", "channel", "status", "agent_type", "company"]
    inlines = [MessageAttachmentInline]
    list_select_related = ["company", "contact"]
    search_fields = ["=id", "=provider_message_id", "=correlation_id", "=external_id", "contact__phone"]
    ordering = ["-created_at", "-id"]
    show_full_result_count = False
    readonly_fields = ["company", "contact", "lead", "job", "direction", "channel", "agent_type", "message_type",
                       "subject", "body", "status", "sent_at", "delivered_at", "read_at", "failed_at",
                       "provider_message_id", "provider_response", "error", "correlation_id", "external_id",
                       "created_at", "updated_at", "delivery_history", "channel_number", "media_type", "media_status"]
    fieldsets = [
        (None, {"fields": ["company", "contact", "lead", "job", "direction", "channel", "agent_type",
                           "message_type", "subject", "body", "correlation_id", "external_id", "created_at",
                           "channel_number", "media_type", "media_status"]}),
        ("Delivery", {"fields": ["status", "delivery_history", "sent_at", "delivered_at", "read_at", "failed_at",
                                 "provider_message_id", "error", "provider_response", "updated_at"]}),
    ]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.resolver_match and request.resolver_match.url_name.endswith("changelist"):
            queryset = queryset.defer("provider_response", "error", "subject")
        return queryset

    def has_add_permission(self, request):
        return False  # messages are sent and received by the services, not typed here

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=gettext_lazy("body"))
    def body_preview(self, message):
        return Truncator(message.body).chars(60)

    @admin.display(description=gettext_lazy("history"))
    def delivery_history(self, message):
        steps = [(label, value) for label, value in [
            (_("created"), message.created_at), (_("sent"), message.sent_at), (_("delivered"), message.delivered_at),
            (_("read"), message.read_at), (_("failed"), message.failed_at)] if value]
        return format_html_join(" → ", "{} {}", ((label, f"{value:%Y-%m-%d %H:%M:%S}") for label, value in steps))
