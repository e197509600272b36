"""Channels in the operations console: accounts (secrets write-only), callbacks, WhatsApp Web sessions and outbox."""

from __future__ import annotations

import base64

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from unfold.admin import StackedInline, TabularInline

from channels_app import services
from channels_app.models import (
    ChannelAccount,
    ChannelNumber,
    EmailDelivery,
    ProviderCallback,
    WhatsAppWebDelivery,
    WhatsAppWebSession,
)
from channels_app.selectors import NUMBER_SETTING, AmbiguousNumber, channel_account_for_number, webhook_urls_for
from crm.tenancy.admin import TenantScopedAdmin

SECRET_HELP = {
    "password": gettext_lazy("Email: SMTP password."),
    "webhook_signing_key": gettext_lazy("Email: Mailgun's HTTP webhook signing key (verifies its bounce and complaint events)."),
    "auth_token": gettext_lazy("SMS: Twilio auth token (also verifies X-Twilio-Signature)."),
    "access_token": gettext_lazy("WhatsApp Cloud: system user access token."),
    "app_secret": gettext_lazy("WhatsApp Cloud: app secret (verifies X-Hub-Signature-256)."),
    "verify_token": gettext_lazy("WhatsApp Cloud: the verify token you type into Meta's webhook form."),
}


SECRET_LABELS = {
    "password": gettext_lazy("Password"),
    "webhook_signing_key": gettext_lazy("Webhook signing key"),
    "auth_token": gettext_lazy("Auth token"),
    "access_token": gettext_lazy("Access token"),
    "app_secret": gettext_lazy("App secret"),
    "verify_token": gettext_lazy("Verify token"),
}


def secret_field(name: str) -> forms.CharField:
    return forms.CharField(
        label=SECRET_LABELS[name],
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )


class ChannelAccountForm(forms.ModelForm):
    """Secrets are write-only: password inputs that never render the stored value; blank keeps it."""

    clear_secrets = forms.BooleanField(required=False, help_text=gettext_lazy("Forget every stored secret of this account."))
    secret_password = secret_field("password")
    secret_webhook_signing_key = secret_field("webhook_signing_key")
    secret_auth_token = secret_field("auth_token")
    secret_access_token = secret_field("access_token")
    secret_app_secret = secret_field("app_secret")
    secret_verify_token = secret_field("verify_token")

    class Meta:
        model = ChannelAccount
        fields = ["company", "channel", "name", "is_active", "settings"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        stored = set(self.instance.secrets) if self.instance.pk else set()
        for name, help_text in SECRET_HELP.items():
            state = "Set; leave blank to keep it." if name in stored else "Not set."
            self.fields[f"secret_{name}"].help_text = f"{help_text} {state}"

    def clean_settings(self):
        value = self.cleaned_data.get("settings") or {}
        if not isinstance(value, dict):
            raise forms.ValidationError(_('Settings are a JSON object, e.g. {"from_number": "+15005550006"}.'))
        leaked = set(value) & set(SECRET_HELP)
        if leaked:
            raise forms.ValidationError(_("Put %(fields)s in the secret fields below, not in settings.") % {"fields": ", ".join(sorted(leaked))})
        return value

    def secrets_given(self) -> dict[str, str]:
        return {name: self.cleaned_data.get(f"secret_{name}", "") for name in SECRET_HELP}


class WhatsAppWebSessionInline(StackedInline):
    model = WhatsAppWebSession
    can_delete = False
    extra = 0
    max_num = 0
    fields = ["state", "last_error", "last_checked_at", "last_sent_at", "qr_code"]
    readonly_fields = fields

    @admin.display(description=gettext_lazy("QR code to scan"))
    def qr_code(self, session: WhatsAppWebSession):
        return qr_image(session)


def qr_image(session: WhatsAppWebSession):
    if session.state != WhatsAppWebSession.State.LOGIN_REQUIRED or not session.qr_screenshot_png:
        return "-"
    encoded = base64.b64encode(bytes(session.qr_screenshot_png)).decode()
    return format_html(
        '<img src="data:image/png;base64,{}" alt="{}" style="max-width: 480px; border: 1px solid #ccc;"><p>{}</p>',
        encoded, _("WhatsApp Web QR code"),
        _("Open WhatsApp on the company phone, Linked devices, Link a device, and scan. The next send retries."),
    )


class ChannelNumberForm(forms.ModelForm):
    class Meta:
        model = ChannelNumber
        fields = ["number", "label"]

    def clean_number(self):
        number = (self.cleaned_data.get("number") or "").strip()
        account = self.instance.account if self.instance.account_id else getattr(self, "parent_account", None)
        if account is not None and number:
            try:
                owner = channel_account_for_number(channel=account.channel, number=number)
            except AmbiguousNumber:
                raise forms.ValidationError(_("Two accounts already claim this number.")) from None
            if owner is not None and owner.pk != account.pk:
                raise forms.ValidationError(_("This number belongs to another account (%(company)s).") % {"company": owner.company})
            taken = ChannelNumber.objects.filter(channel=account.channel, number=number).exclude(pk=self.instance.pk)
            if taken.exists():
                raise forms.ValidationError(_("This number is already registered."))
        return number


class ChannelNumberFormSet(forms.BaseInlineFormSet):
    def _construct_form(self, i, **kwargs):
        form = super()._construct_form(i, **kwargs)
        form.parent_account = self.instance
        return form


class ChannelNumberInline(TabularInline):
    """The account's further numbers: webhooks for them are filed under this account's company."""

    model = ChannelNumber
    form = ChannelNumberForm
    formset = ChannelNumberFormSet
    extra = 0
    fields = ["number", "label", "created_at"]
    readonly_fields = ["created_at"]


@admin.register(ChannelAccount)
class ChannelAccountAdmin(TenantScopedAdmin):
    form = ChannelAccountForm
    list_display = ["name", "company", "channel", "is_active", "secrets_status", "updated_at"]
    list_filter = ["channel", "is_active", "company"]
    list_select_related = ["company"]
    search_fields = ["name", "company__name"]
    autocomplete_fields = ["company"]
    ordering = ["company", "channel", "name"]
    readonly_fields = ["webhook_urls", "secrets_status", "created_at", "updated_at"]
    actions = ["rotate_webhook_token"]

    def get_fieldsets(self, request, obj=None):
        return [
            (None, {"fields": ["company", "channel", "name", "is_active", "settings"]}),
            (gettext_lazy("Secrets (write-only)"), {"fields": ["clear_secrets", *[f"secret_{name}" for name in SECRET_HELP]]}),
            ("Webhooks", {"fields": ["webhook_urls", "secrets_status", "created_at", "updated_at"]}),
        ]

    def get_inlines(self, request, obj):
        if obj is not None and obj.channel == "whatsapp_web":
            return [WhatsAppWebSessionInline]
        if obj is not None and obj.channel in NUMBER_SETTING:
            return [ChannelNumberInline]
        return []

    def save_formset(self, request, form, formset, change):
        if formset.model is ChannelNumber:
            for number in formset.save(commit=False):
                number.company_id, number.channel = form.instance.company_id, form.instance.channel
                number.save()
            for number in formset.deleted_objects:
                number.delete()
            return
        super().save_formset(request, form, formset, change)

    @admin.display(description=gettext_lazy("Secrets set"))
    def secrets_status(self, account: ChannelAccount) -> str:
        return ", ".join(account.secret_names_set) or "-"

    @admin.display(description=gettext_lazy("Webhook URLs to paste into the provider"))
    def webhook_urls(self, account: ChannelAccount):
        if account.pk is None:
            return _("Shown after saving.")
        urls = webhook_urls_for(account=account)
        if not urls:
            return _("This channel needs no webhook.")
        return format_html_join("", "<p><strong>{}</strong><br><code>{}</code></p>", urls.items())

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if form.cleaned_data.get("clear_secrets"):
            services.channel_account_secrets_clear(account=obj)
        services.channel_account_secrets_update(account=obj, secrets=form.secrets_given())

    @admin.action(description=gettext_lazy("Rotate the webhook token (the old webhook URLs stop working)"))
    def rotate_webhook_token(self, request, queryset):
        count = 0
        for account in queryset:
            services.channel_account_webhook_token_rotate(account=account)
            count += 1
        self.message_user(request, _("Rotated the webhook token of %d account(s); paste the new URLs.") % count, messages.SUCCESS)


@admin.register(ProviderCallback)
class ProviderCallbackAdmin(TenantScopedAdmin):
    list_display = ["received_at", "company", "channel", "provider_message_id", "status", "error"]
    list_filter = ["channel", "status", "company"]
    list_select_related = ["company"]
    search_fields = ["=provider_message_id"]
    date_hierarchy = "received_at"
    ordering = ["-received_at"]
    readonly_fields = ["company", "account", "channel", "provider_message_id", "status", "error", "raw", "received_at"]
    fields = readonly_fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(WhatsAppWebSession)
class WhatsAppWebSessionAdmin(TenantScopedAdmin):
    company_field = "account__company"
    list_display = ["account", "state", "last_checked_at", "last_sent_at", "last_error"]
    list_filter = ["state"]
    list_select_related = ["account__company"]
    search_fields = ["account__name", "account__company__name"]
    ordering = ["account"]
    fields = ["account", "state", "last_error", "last_checked_at", "last_sent_at", "qr_code"]
    readonly_fields = fields

    @admin.display(description=gettext_lazy("QR code to scan"))
    def qr_code(self, session: WhatsAppWebSession):
        return qr_image(session)

    def has_add_permission(self, request):
        return False


@admin.register(WhatsAppWebDelivery)
class WhatsAppWebDeliveryAdmin(TenantScopedAdmin):
    """The WhatsApp Web outbox, read-only: sends write it, the task and the relay move it on."""

    list_display = ["created_at", "company", "account", "to_phone", "status", "attempts", "dispatched_at", "last_error"]
    list_filter = ["status", "company"]
    list_select_related = ["company", "account"]
    search_fields = ["=provider_message_id", "=to_phone"]
    date_hierarchy = "created_at"
    ordering = ["-created_at"]
    fields = [
        "company", "account", "provider_message_id", "to_phone", "body", "status", "attempts", "last_error",
        "dispatched_at", "claimed_at", "created_at", "updated_at",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        # The message text is only shown on the row's page.
        return super().get_queryset(request).defer("body")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(EmailDelivery)
class EmailDeliveryAdmin(TenantScopedAdmin):
    """What came back from each email: first open and click (prefetchers flagged), bounces, complaints."""

    list_display = ["created_at", "company", "to_email", "message_id", "opened_at", "clicked_at", "bounce_type",
                    "complained_at"]
    list_filter = ["bounce_type", ("complained_at", admin.EmptyFieldListFilter), "company"]
    list_select_related = ["company"]
    search_fields = ["=to_email", "=provider_message_id", "=message_id"]
    date_hierarchy = "created_at"
    ordering = ["-created_at"]
    fields = [
        "company", "account", "message_id", "contact", "to_email", "provider_message_id", "agent_type", "links",
        "opened_at", "open_is_prefetch", "clicked_at", "clicked_url", "click_is_prefetch", "bounced_at",
        "bounce_type", "bounce_detail", "complained_at", "created_at",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).defer("links")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
