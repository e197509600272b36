"""The operations console for the CRM graph. Every admin here is tenant-scoped (see crm/tenancy/admin.py)."""

from __future__ import annotations

import uuid

from axes.models import AccessAttempt
from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import ValidationError
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from crm.feed.admin import FeedImportExportMixin
from crm.feed.services import booking_create, booking_update
from crm.lockouts import lockouts_clear
from crm.models import (
    ApiKey,
    Booking,
    Company,
    Contact,
    Customer,
    Event,
    Lead,
    Membership,
    Pipeline,
    Service,
    Stage,
    User,
    Worker,
)
from crm.services import (
    api_key_create,
    api_key_revoke,
    company_webhook_secret_set,
    contact_merge,
    lead_move_to_stage,
    phone_normalize,
)
from crm.tenancy.admin import TenantScopedAdmin, TenantScopedInline
from crm.timeline import events_readable
from shokti.admin import BaseAdmin, action_form_response, validation_error_text

# How much of a contact's history its page shows (newest first).
CONTACT_PANEL_LIMIT = 20
CONTACT_TIMELINE_LIMIT = 50

# Each move is its own transaction and event: keep one request's work bounded.
MOVE_TO_STAGE_LIMIT = 1000

# The event types the timeline filter offers: a fixed list, so the filter never scans the table.
EVENT_TYPES = [
    "lead.created",
    "stage.changed",
    "message.received",
    "message.sent",
    "notification_opened",
    "message_clicked",
    "deeplink_followed",
    "booking_created",
    "opt_out",
    "opt_in",
    "contact.merged",
]


@admin.register(User)
class UserAdmin(TenantScopedAdmin, DjangoUserAdmin):
    company_field = "memberships__company"
    ordering = ["email"]
    list_display = ["email", "full_name", "is_staff", "is_active", "last_login"]
    list_filter = ["is_staff", "is_superuser", "is_active", "groups"]
    search_fields = ["email", "full_name"]
    filter_horizontal = []  # the two-box selector is ~1100 px wide: wider than the page beside the sidebar
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        (gettext_lazy("Profile"), {"fields": ("full_name",)}),
        # People get their permissions from their team's group (Operations, Marketing): per-person permissions
        # were ~600 names in two side-by-side boxes that made the page 1424 px wide at 1280.
        (gettext_lazy("Permissions"), {"fields": ("is_active", "is_staff", "is_superuser", "groups")}),
        (gettext_lazy("Dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


class CompanyForm(forms.ModelForm):
    """The webhook secret is write-only: never rendered back, replaced by typing a new one or generating one."""

    webhook_url = forms.URLField(
        label=gettext_lazy("Webhook URL"), required=False, max_length=200, assume_scheme="https",
        help_text=gettext_lazy("Where leads, stage moves, inbound messages, opt-outs, completed bookings and customer "
                               "changes are POSTed as signed events."),
    )
    new_webhook_secret = forms.CharField(
        label=gettext_lazy("New webhook secret"),
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=gettext_lazy("Leave blank to keep the current secret. Receivers check each delivery's "
                               "X-Shokti-Signature with it. At least 16 characters."),
    )
    generate_webhook_secret = forms.BooleanField(
        label=gettext_lazy("Generate a new webhook secret"),
        required=False,
        help_text=gettext_lazy("A random secret replaces the current one; it is shown once, after saving."),
    )

    class Meta:
        model = Company
        fields = ["name", "slug", "default_region", "timezone", "is_active", "webhook_url"]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("new_webhook_secret") and cleaned.get("generate_webhook_secret"):
            self.add_error("generate_webhook_secret", _("Type a secret or generate one, not both."))
        elif 0 < len(cleaned.get("new_webhook_secret") or "") < 16:
            self.add_error("new_webhook_secret", _("At least 16 characters."))
        return cleaned


@admin.register(Company)
class CompanyAdmin(TenantScopedAdmin):
    company_field = ""
    form = CompanyForm
    list_display = ["name", "slug", "default_region", "timezone", "is_active", "webhook_url", "has_webhook_secret",
                    "created_at"]
    list_filter = ["is_active", "default_region"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    fieldsets = (
        (None, {"fields": ("name", "slug", "default_region", "timezone", "is_active", "created_at")}),
        (gettext_lazy("Email sender"), {
            "description": gettext_lazy("Printed in every email; marketing email is not sent without a postal address."),
            "fields": ("postal_address", "is_email_open_tracking_enabled"),
        }),
        (gettext_lazy("Outbound webhook"), {
            "description": gettext_lazy("Leads, stage moves, inbound messages, opt-outs, completed bookings and "
                                        "customer changes are POSTed to this URL, signed with HMAC-SHA256 of the "
                                        "timestamp and body."),
            "fields": ("webhook_url", "webhook_secret_state", "new_webhook_secret", "generate_webhook_secret"),
        }),
    )
    readonly_fields = ["created_at", "webhook_secret_state"]
    ordering = ["name"]

    @admin.display(boolean=True, description=gettext_lazy("webhook secret"))
    def has_webhook_secret(self, company: Company) -> bool:
        return bool(company.webhook_secret)

    @admin.display(description=gettext_lazy("Webhook secret"))
    def webhook_secret_state(self, company: Company) -> str:
        return _("Set (hidden)") if company.webhook_secret else _("Not set")

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        typed = form.cleaned_data.get("new_webhook_secret")
        if typed:
            company_webhook_secret_set(company=obj, secret=typed)
            self.message_user(request, _("The webhook secret of “%s” was replaced.") % obj, messages.SUCCESS)
        elif form.cleaned_data.get("generate_webhook_secret") or (obj.webhook_url and not obj.webhook_secret):
            # A URL without a secret would make every delivery fail: one is generated then too.
            secret = company_webhook_secret_set(company=obj)
            self.message_user(
                request,
                _("New webhook secret of “%(company)s”. Copy it now, it will not be shown again: %(secret)s")
                % {"company": obj, "secret": secret},
                messages.WARNING,
            )


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin):
    list_display = ["user", "company", "role", "created_at"]
    list_filter = ["role", "company"]
    list_select_related = ["user", "company"]
    search_fields = ["user__email", "user__full_name", "company__name"]
    autocomplete_fields = ["user"]
    readonly_fields = ["created_at"]
    ordering = ["-id"]


class ApiKeyForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ["company", "name"]


@admin.register(ApiKey)
class ApiKeyAdmin(TenantScopedAdmin):
    form = ApiKeyForm
    list_display = ["name", "company", "prefix", "is_active", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter), "company"]
    list_select_related = ["company"]
    search_fields = ["name", "=prefix"]
    actions = ["revoke"]
    ordering = ["-id"]

    @admin.display(boolean=True, description=gettext_lazy("active"))
    def is_active(self, api_key: ApiKey) -> bool:
        return api_key.is_active

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["company", "name"]
        return ["company", "name", "prefix", "created_at", "last_used_at", "revoked_at"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["company", "prefix", "created_at", "last_used_at", "revoked_at"]

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        created, raw_key = api_key_create(company=obj.company, name=obj.name)
        # The admin goes on with `obj` (log entry, redirect): make it the row the service created.
        obj.pk = created.pk
        obj.refresh_from_db()
        self.message_user(
            request,
            _("API key “%(name)s” created. Copy it now, it will not be shown again: %(key)s")
            % {"name": created.name, "key": raw_key},
            messages.WARNING,
        )

    @admin.action(description=gettext_lazy("Revoke selected API keys"), permissions=["change"])
    def revoke(self, request, queryset):
        revoked = 0
        for api_key in queryset.filter(revoked_at__isnull=True):
            api_key_revoke(api_key=api_key)
            revoked += 1
        self.message_user(request, ngettext("Revoked %d API key.", "Revoked %d API keys.", revoked) % revoked)


# --- Contacts -------------------------------------------------------------------------------


class ContactForm(forms.ModelForm):
    class Meta:
        model = Contact
        fields = [
            "company",
            "name",
            "phone",
            "email",
            "locale",
            "timezone",
            "is_email_consented",
            "is_sms_consented",
            "is_whatsapp_consented",
        ]

    def clean(self):
        cleaned = super().clean()
        phone, company = cleaned.get("phone"), cleaned.get("company")
        if phone and company is not None:
            try:
                cleaned["phone"] = phone_normalize(phone=phone, region=company.default_region)
            except ValidationError as error:
                self.add_error("phone", error.message_dict["phone"])
        if cleaned.get("email"):
            cleaned["email"] = cleaned["email"].strip().lower()
        return cleaned


class MergeForm(forms.Form):
    keep = forms.ChoiceField(widget=forms.RadioSelect, label=gettext_lazy("Keep"))

    def __init__(self, *args, contacts, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["keep"].choices = [(str(contact.pk), str(contact.pk)) for contact in contacts]


@admin.register(Contact)
class ContactAdmin(FeedImportExportMixin, TenantScopedAdmin):
    feed_kind = "contacts"
    form = ContactForm
    list_display = [
        "name",
        "phone",
        "email",
        "company",
        "locale",
        "is_email_consented",
        "is_sms_consented",
        "is_whatsapp_consented",
        "created_at",
    ]
    list_filter = ["is_email_consented", "is_sms_consented", "is_whatsapp_consented", "company"]
    list_select_related = ["company"]
    search_fields = ["name", "phone", "email"]
    readonly_fields = ["user", "consent_updated_at", "created_at", "updated_at"]
    ordering = ["-id"]
    change_form_template = "admin/crm/contact/change_form.html"
    actions = ["merge_contacts"]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.pk:
            context.update(_contact_panels(obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.action(description=gettext_lazy("Merge the two selected contacts…"), permissions=["change"])
    def merge_contacts(self, request, queryset):
        contacts = list(queryset.select_related("company").order_by("pk")[:3])
        if len(contacts) != 2:
            self.message_user(request, _("Select exactly two contacts to merge."), messages.ERROR)
            return None
        if contacts[0].company_id != contacts[1].company_id:
            self.message_user(request, _("Only contacts of the same company can be merged."), messages.ERROR)
            return None
        form = MergeForm(request.POST if "apply" in request.POST else None, contacts=contacts)
        if form.is_bound and form.is_valid():
            keep = next(contact for contact in contacts if str(contact.pk) == form.cleaned_data["keep"])
            merge = next(contact for contact in contacts if contact.pk != keep.pk)
            try:
                contact_merge(keep=keep, merge=merge, actor=request.user)
            except ValidationError as error:
                self.message_user(request, validation_error_text(error), messages.ERROR)
                return None
            self.message_user(request, _("Merged contact #%(merged)d into %(keep)s (#%(keep_id)d).")
                              % {"merged": merge.pk, "keep": keep, "keep_id": keep.pk}, messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": _("Merge two contacts"),
            "opts": self.opts,
            "contacts": contacts,
            "form": form,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/crm/contact/merge.html", context)


def _contact_panels(contact: Contact) -> dict:
    """The contact's leads, bookings and timeline, newest first and bounded."""
    return {
        "contact_leads": list(
            contact.leads.select_related("pipeline", "stage", "owner").order_by("-id")[:CONTACT_PANEL_LIMIT]
        ),
        "contact_bookings": list(
            Booking.objects.filter(customer__contact=contact)
            .select_related("service", "worker__contact")
            .order_by("-scheduled_at", "-id")[:CONTACT_PANEL_LIMIT]
        ),
        "contact_events": events_readable(list(
            contact.events.select_related("actor", "target_type").order_by("-occurred_at", "-id")[:CONTACT_TIMELINE_LIMIT]
        )),
        "contact_panel_limit": CONTACT_PANEL_LIMIT,
        "contact_timeline_limit": CONTACT_TIMELINE_LIMIT,
    }


# --- Pipelines and leads --------------------------------------------------------------------


class StageInline(TenantScopedInline):
    model = Stage
    company_field = "pipeline__company"
    fields = ["order", "name", "kind"]
    ordering = ["order"]
    extra = 0


@admin.register(Pipeline)
class PipelineAdmin(TenantScopedAdmin):
    list_display = ["name", "company", "is_default", "created_at"]
    list_filter = ["is_default", "company"]
    list_select_related = ["company"]
    search_fields = ["name", "company__name"]
    readonly_fields = ["created_at"]
    inlines = [StageInline]
    ordering = ["company", "name"]


@admin.register(Stage)
class StageAdmin(TenantScopedAdmin):
    company_field = "pipeline__company"
    list_display = ["name", "pipeline", "order", "kind"]
    list_filter = ["kind", "pipeline"]
    list_select_related = ["pipeline", "pipeline__company"]
    search_fields = ["name", "pipeline__name"]
    autocomplete_fields = ["pipeline"]
    ordering = ["pipeline", "order"]


class LeadForm(forms.ModelForm):
    class Meta:
        model = Lead
        fields = "__all__"  # noqa: DJ007  (the ModelAdmin's fieldsets decide what is shown)

    def clean(self):
        cleaned = super().clean()
        stage, pipeline = cleaned.get("stage"), cleaned.get("pipeline")
        if stage is not None and pipeline is not None and stage.pipeline_id != pipeline.pk:
            self.add_error("stage", _("This stage belongs to another pipeline."))
        return cleaned


class MoveToStageForm(forms.Form):
    stage = forms.ModelChoiceField(label=gettext_lazy("Stage"), queryset=Stage.objects.none(), empty_label=None)

    def __init__(self, *args, stages, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["stage"].queryset = stages


class AdSourceFilter(admin.SimpleListFilter):
    """Leads that started from a click-to-WhatsApp ad (source `ad`; the ad's id, headline and URL on the lead)."""

    title = gettext_lazy("came from")
    parameter_name = "came_from"

    def lookups(self, request, model_admin):
        return [("ad", _("A click-to-WhatsApp ad")), ("other", _("Anything else"))]

    def queryset(self, request, queryset):
        if self.value() == "ad":
            return queryset.filter(source="ad")
        if self.value() == "other":
            return queryset.exclude(source="ad")
        return queryset


class LeadAdmin(FeedImportExportMixin, TenantScopedAdmin):
    """The lead list and page. Registered by the app that owns conversations (engage.admin.conversations), which
    extends it with the thread and hand-off; `lead_stage_move` is the hook its stage moves go through."""

    feed_kind = "leads"
    form = LeadForm
    list_display = ["id", "contact", "company", "pipeline", "stage", "status", "channel", "source", "score", "owner",
                    "created_at"]
    list_display_links = ["id", "contact"]
    list_filter = ["status", "channel", AdSourceFilter, "stage", "pipeline", "company"]
    list_select_related = ["contact", "company", "pipeline__company", "stage__pipeline", "owner"]
    search_fields = ["contact__name", "contact__phone", "contact__email", "source", "=ad_source_id"]
    autocomplete_fields = ["contact", "pipeline"]
    actions = ["move_to_stage"]
    ordering = ["-id"]

    def get_readonly_fields(self, request, obj=None):
        # The ad is what Meta said when the lead wrote in: a record, not something to edit.
        fields = ["created_at", "updated_at", "ad_source_id", "ad_headline", "ad_url", "ad_click_id", "ad_referral"]
        if obj is not None:
            # A stage change goes through the "move to stage" action, which records it.
            fields += ["stage", "status"]
        return fields

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "owner":
            kwargs["queryset"] = User.objects.filter(is_staff=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def lead_stage_move(self, *, lead, stage, actor) -> None:
        # engage's admin overrides this with its service that also applies sequence rules.
        lead_move_to_stage(lead=lead, stage=stage, actor=actor, source="admin")

    @admin.action(description=gettext_lazy("Move selected leads to a stage…"), permissions=["change"])
    def move_to_stage(self, request, queryset):
        leads = list(queryset.select_related("contact", "pipeline", "stage")[: MOVE_TO_STAGE_LIMIT + 1])
        if len(leads) > MOVE_TO_STAGE_LIMIT:
            self.message_user(
                request, _("Select at most %d leads to move at once.") % MOVE_TO_STAGE_LIMIT, messages.ERROR
            )
            return None
        stages = (
            Stage.objects.filter(pipeline_id__in={lead.pipeline_id for lead in leads})
            .select_related("pipeline")
            .order_by("pipeline__name", "order")
        )
        form = MoveToStageForm(request.POST if "apply" in request.POST else None, stages=stages)
        if form.is_bound and form.is_valid():
            stage = form.cleaned_data["stage"]
            moved = unchanged = other_pipeline = 0
            for lead in leads:
                if lead.pipeline_id != stage.pipeline_id:
                    other_pipeline += 1
                elif lead.stage_id == stage.pk:
                    unchanged += 1
                else:
                    self.lead_stage_move(lead=lead, stage=stage, actor=request.user)
                    moved += 1
            report = ngettext("Moved %(moved)d lead to %(stage)s.", "Moved %(moved)d leads to %(stage)s.", moved)
            report %= {"moved": moved, "stage": stage}
            if unchanged:
                report += " " + _("%d already there.") % unchanged
            if other_pipeline:
                report += " " + _("%d skipped: in another pipeline.") % other_pipeline
            self.message_user(request, report, messages.SUCCESS if moved else messages.WARNING)
            return None
        return action_form_response(
            self, request, template="admin/crm/lead/move_to_stage.html", title=_("Move leads to a stage"),
            form=form, leads=leads,
        )


# --- Home services --------------------------------------------------------------------------


@admin.register(Service)
class ServiceAdmin(FeedImportExportMixin, TenantScopedAdmin):
    feed_kind = "services"
    list_display = ["name", "name_bn", "external_id", "category", "base_price", "duration_minutes", "is_active",
                    "company"]
    list_filter = ["is_active", "category", "company"]
    list_select_related = ["company"]
    search_fields = ["name", "name_bn", "category", "=external_id"]
    ordering = ["company", "name"]


@admin.register(Customer)
class CustomerAdmin(FeedImportExportMixin, TenantScopedAdmin):
    feed_kind = "customers"
    list_display = ["contact", "external_id", "company", "is_active", "last_booking_at", "created_at"]
    list_filter = ["is_active", "company"]
    list_select_related = ["contact", "company"]
    search_fields = ["contact__name", "contact__phone", "contact__email", "=external_id"]
    autocomplete_fields = ["contact", "typical_services"]
    readonly_fields = ["last_booking_at", "created_at"]
    ordering = ["-id"]


@admin.register(Worker)
class WorkerAdmin(FeedImportExportMixin, TenantScopedAdmin):
    feed_kind = "workers"
    list_display = ["contact", "external_id", "company", "is_active", "ratings_avg", "created_at"]
    list_filter = ["is_active", "company"]
    list_select_related = ["contact", "company"]
    search_fields = ["contact__name", "contact__phone", "contact__email", "=external_id"]
    autocomplete_fields = ["contact"]
    readonly_fields = ["created_at"]
    ordering = ["-id"]


@admin.register(Booking)
class BookingAdmin(FeedImportExportMixin, TenantScopedAdmin):
    feed_kind = "bookings"
    list_display = ["id", "scheduled_at", "external_id", "customer", "worker", "service", "status", "rating", "price",
                    "zone", "company"]
    list_display_links = ["id", "scheduled_at"]
    list_filter = ["status", ("scheduled_at", admin.DateFieldListFilter), "cancelled_by", "service", "company"]
    list_select_related = ["customer__contact", "worker__contact", "service", "company"]
    search_fields = ["customer__contact__name", "customer__contact__phone", "=external_id"]
    autocomplete_fields = ["customer", "worker", "service"]
    readonly_fields = ["created_at"]
    date_hierarchy = "scheduled_at"
    # Matches the (company, -scheduled_at) index.
    ordering = ["-scheduled_at"]

    def save_model(self, request, obj, form, change):
        if change:
            # Through the service: a booking saved as completed moves its customer's last booking and
            # records `booking.completed`, as the API and imports do.
            changes = {
                f"{name}_id" if name in ("customer", "worker", "service") else name: getattr(
                    obj, f"{name}_id" if name in ("customer", "worker", "service") else name
                )
                for name in form.changed_data
            }
            if changes:
                booking_update(booking=obj, changes=changes, actor=request.user, source="admin")
            return
        # A new booking goes through the service: it records `booking_created` (the campaign funnel counts it).
        created = booking_create(
            company=obj.company, customer=obj.customer, service=obj.service, scheduled_at=obj.scheduled_at,
            worker=obj.worker, status=obj.status, price=obj.price, arrived_at=obj.arrived_at,
            finished_at=obj.finished_at, rating=obj.rating, actor=request.user, source="admin",
        )
        # The admin goes on with `obj` (log entry, redirect): make it the row the service created.
        obj.pk = created.pk
        obj.refresh_from_db()


# --- Timeline -----------------------------------------------------------------------------


class EventTypeFilter(admin.SimpleListFilter):
    title = gettext_lazy("type")
    parameter_name = "type"

    def lookups(self, request, model_admin):
        return [(event_type, event_type) for event_type in EVENT_TYPES]

    def queryset(self, request, queryset):
        return queryset.filter(type=self.value()) if self.value() else queryset


@admin.register(Event)
class EventAdmin(TenantScopedAdmin):
    """The audit trail: read-only for everyone."""

    list_display = ["occurred_at", "type", "contact", "target_type", "target_id", "source", "company"]
    list_filter = [EventTypeFilter, ("occurred_at", admin.DateFieldListFilter), "company"]
    list_select_related = ["contact", "target_type", "company"]
    search_fields = ["=type", "=source"]
    search_help_text = gettext_lazy("An event type, a source, or a correlation id.")
    date_hierarchy = "occurred_at"
    # Matches the (company, -occurred_at) index.
    ordering = ["-occurred_at", "-id"]
    fields = ["company", "type", "occurred_at", "contact", "target_type", "target_id", "source", "actor",
              "correlation_id", "payload"]

    def get_search_results(self, request, queryset, search_term):
        try:
            correlation_id = uuid.UUID(search_term.strip())
        except ValueError:
            return super().get_search_results(request, queryset, search_term)
        # A correlation id: one indexed lookup instead of a text match.
        return queryset.filter(correlation_id=correlation_id), False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- Login lockouts (django-axes; crm/lockouts.py) ---------------------------------------------------
# Failed logins are not a company's rows: only superusers see and clear them.


class LockoutStatusFilter(admin.SimpleListFilter):
    title = gettext_lazy("status")
    parameter_name = "locked"

    def lookups(self, request, model_admin):
        return [("yes", _("Locked now")), ("no", _("Not locked"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(_locked_q())
        if self.value() == "no":
            return queryset.exclude(_locked_q())
        return queryset


def _locked_q():
    """Attempts whose account or address has reached the failure limit within the lockout period."""
    from django.conf import settings
    from django.db.models import OuterRef, Q, Subquery, Sum
    from django.utils import timezone

    recent = AccessAttempt.objects.filter(attempt_time__gte=timezone.now() - settings.AXES_COOLOFF_TIME)

    def total(field: str):
        return Subquery(
            recent.filter(**{field: OuterRef(field)}).order_by().values(field)
            .annotate(total=Sum("failures_since_start")).values("total")[:1]
        )

    limit = settings.AXES_FAILURE_LIMIT
    return Q(pk__in=AccessAttempt.objects.alias(by_user=total("username"), by_ip=total("ip_address")).filter(
        Q(by_user__gte=limit) | Q(by_ip__gte=limit)
    ).values("pk"))


@admin.register(AccessAttempt)
class LoginLockoutAdmin(BaseAdmin):
    """System → Login lockouts: failed logins per account and address, and an action to unlock them."""

    list_display = ["username", "ip_address", "failures_since_start", "attempt_time", "path_info", "user_agent"]
    list_filter = [LockoutStatusFilter, "path_info"]
    search_fields = ["username", "ip_address"]
    ordering = ["-attempt_time"]
    actions = ["unlock"]
    fields = ["username", "ip_address", "failures_since_start", "attempt_time", "path_info", "user_agent", "http_accept"]
    readonly_fields = fields

    def has_module_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # unlocking is the action below, which clears the whole account and address

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def get_actions(self, request):
        # Django offers actions only to those with a matching permission; this one is superusers'.
        actions = super().get_actions(request)
        return actions if request.user.is_superuser else {}

    @admin.action(description=gettext_lazy("Unlock the selected accounts and addresses"))
    def unlock(self, request, queryset):
        removed = lockouts_clear(attempts=list(queryset.only("username", "ip_address")))
        self.message_user(
            request,
            ngettext("Unlocked: %d failed-login record cleared.", "Unlocked: %d failed-login records cleared.", removed)
            % removed,
            messages.SUCCESS,
        )
