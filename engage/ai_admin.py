"""Admin of the AI side of engage: configuration, sessions, knowledge, templates, sequences,
the lead conversation page with hand-off controls, and the contact merge action.

The lead and contact admins extend crm's (engage may import crm, never the reverse) and are
registered in their place, so the CRM console gains the conversation without crm knowing engage.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from crm.admin import ContactAdmin as CrmContactAdmin
from crm.admin import LeadAdmin as CrmLeadAdmin
from crm.models import Contact, Lead
from crm.services import contact_merge
from engage.admin_studio import TemplateStudioMixin
from engage.models import (
    AIConfig,
    AISession,
    BannedPhrase,
    Enrollment,
    FallbackText,
    KnowledgeDoc,
    PromptTemplate,
    PromptTemplateVersion,
    Sequence,
    SequenceStep,
)
from engage.services.conversation import lead_thread
from engage.services.handoff import lead_hand_back, lead_manual_reply, lead_take_over
from engage.services.sequences import enrollment_stop, lead_stage_move, sequence_enroll
from engage.services.templates import template_version_create
from engage.studio import template_publish, template_rollback
from shokti.admin import TenantScopedAdmin, TenantScopedInline, https_formfield

ENROLL_LIMIT = 500


def _validation_text(error: ValidationError) -> str:
    return "; ".join(error.messages)


# --- AI configuration, sessions, knowledge, safety texts ----------------------------------------


class AIConfigForm(forms.ModelForm):
    api_key = forms.CharField(
        required=False, widget=forms.PasswordInput(render_value=False),
        help_text="Write-only. Leave empty to keep the stored key; type a single '-' to remove it.",
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
        ("Endpoint (optional)", {"fields": ["api_base_url", "api_key"]}),
        ("Follow-ups and hand-off", {"fields": ["followup_after_hours", "followup_cadence_hours", "followup_max",
                                                "handoff_keywords"]}),
        ("Safety", {"fields": ["sms_max_segments", "required_link", "allowed_contact_details", "allowed_link_domains",
                               "is_moderation_enabled", "is_tone_judge_enabled", "time_budget_seconds"]}),
    ]

    @admin.display(boolean=True, description="own key")
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


# --- Prompt templates -------------------------------------------------------------------------


class PromptTemplateVersionInline(TenantScopedInline):
    model = PromptTemplateVersion
    company_field = "template__company"
    fields = ["number", "status", "body", "author", "approved_by", "approved_at", "created_at"]
    readonly_fields = fields
    extra = 0
    show_change_link = True
    can_delete = False
    ordering = ["-number"]

    def has_add_permission(self, request, obj=None):
        return False  # new versions are created on the version page, through the service


@admin.register(PromptTemplate)
class PromptTemplateAdmin(TemplateStudioMixin, TenantScopedAdmin):
    """Templates; their wording is edited, previewed, versioned and published in the studio (engage.admin_studio)."""

    change_form_template = "admin/engage/prompttemplate/change_form.html"
    list_display = ["name", "company", "agent_type", "locale", "description", "studio_link", "created_at"]
    list_filter = ["agent_type", "locale", "company"]
    list_select_related = ["company"]
    search_fields = ["name", "description"]
    inlines = [PromptTemplateVersionInline]
    ordering = ["company", "agent_type", "locale", "name"]

    @admin.display(description="studio")
    def studio_link(self, template: PromptTemplate) -> str:
        url = reverse("admin:engage_prompttemplate_studio", args=[template.pk])
        return format_html('<a class="button" href="{}">Open the studio</a>', url)


class PromptTemplateVersionForm(forms.ModelForm):
    class Meta:
        model = PromptTemplateVersion
        fields = ["template", "body"]


@admin.register(PromptTemplateVersion)
class PromptTemplateVersionAdmin(TenantScopedAdmin):
    company_field = "template__company"
    form = PromptTemplateVersionForm
    list_display = ["template", "number", "status", "author", "approved_by", "approved_at", "created_at"]
    list_filter = ["status", "template__agent_type", "template__locale"]
    list_select_related = ["template__company", "author", "approved_by"]
    search_fields = ["template__name", "body"]
    autocomplete_fields = ["template"]
    actions = ["approve"]
    ordering = ["template", "-number"]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:  # a version is immutable: edit = a new version
            return ["template", "number", "body", "status", "author", "approved_by", "approved_at", "created_at"]
        return []

    def get_fields(self, request, obj=None):
        return self.get_readonly_fields(request, obj) if obj is not None else ["template", "body"]

    def save_model(self, request, obj, form, change):
        if change:
            return
        # The form checked the variables; the service numbers the version under a lock.
        created = template_version_create(template=obj.template, body=obj.body, author=request.user)
        obj.pk, obj.number, obj._state.adding = created.pk, created.number, False

    def get_form(self, request, obj=None, **kwargs):
        form_class = super().get_form(request, obj, **kwargs)
        if obj is not None:
            return form_class

        class CheckedForm(form_class):
            def clean(self):
                cleaned = super().clean()
                template, body = cleaned.get("template"), cleaned.get("body")
                if template is not None and body:
                    from engage.ai.templates import template_variables_check

                    try:
                        template_variables_check(agent_type=template.agent_type, body=body)
                    except ValidationError as error:
                        self.add_error("body", _validation_text(error))
                return cleaned

        return CheckedForm

    def has_publish_permission(self, request) -> bool:
        return request.user.has_perm("engage.publish_prompttemplate")

    @admin.action(description="Approve the selected version (archives the approved one)", permissions=["publish"])
    def approve(self, request, queryset):
        versions = list(queryset[:2])
        if len(versions) != 1:
            self.message_user(request, "Select exactly one version to approve.", messages.ERROR)
            return
        try:
            # The studio's publish/rollback: the permission's rules and the timeline event.
            is_rollback = versions[0].status == PromptTemplateVersion.Status.ARCHIVED
            version = (template_rollback if is_rollback else template_publish)(version=versions[0], actor=request.user)
        except ValidationError as error:
            self.message_user(request, _validation_text(error), messages.ERROR)
            return
        self.message_user(request, f"Approved {version}.", messages.SUCCESS)


# --- Sequences ---------------------------------------------------------------------------------


class SequenceStepInline(TenantScopedInline):
    model = SequenceStep
    company_field = "sequence__company"
    fields = ["order", "delay_minutes", "channel", "prompt_template", "fixed_text", "subject"]
    extra = 1
    ordering = ["order"]


@admin.register(Sequence)
class SequenceAdmin(TenantScopedAdmin):
    list_display = ["name", "company", "pipeline", "trigger", "trigger_stage", "is_active", "created_at"]
    list_filter = ["is_active", "trigger", "company"]
    list_select_related = ["company", "pipeline", "trigger_stage__pipeline"]
    search_fields = ["name"]
    autocomplete_fields = ["pipeline", "trigger_stage"]
    inlines = [SequenceStepInline]
    ordering = ["company", "name"]


@admin.register(Enrollment)
class EnrollmentAdmin(TenantScopedAdmin):
    list_display = ["lead", "sequence", "status", "current_step", "next_run_at", "stop_reason", "created_at"]
    list_filter = ["status", "sequence", "company"]
    list_select_related = ["lead__contact", "lead__pipeline", "sequence", "current_step__sequence"]
    search_fields = ["lead__contact__name", "lead__contact__phone", "sequence__name"]
    raw_id_fields = ["lead", "current_step"]
    readonly_fields = ["company", "sequence", "lead", "current_step", "next_run_at", "status", "stop_reason",
                       "enrolled_by", "created_at", "updated_at"]
    actions = ["stop"]
    ordering = ["-id"]

    def has_add_permission(self, request):
        return False  # enroll from the lead list ("Enroll in a sequence…"), which validates

    @admin.action(description="Stop the selected enrollments", permissions=["change"])
    def stop(self, request, queryset):
        stopped = sum(enrollment_stop(enrollment=enrollment, reason=f"stopped by {request.user}")
                      for enrollment in queryset[:ENROLL_LIMIT])
        self.message_user(request, f"Stopped {stopped} enrollment(s).", messages.SUCCESS)


# --- The lead page: conversation, hand-off, sequences ----------------------------------------------


class ManualReplyForm(forms.Form):
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 80}), max_length=4096)


class EnrollForm(forms.Form):
    sequence = forms.ModelChoiceField(queryset=Sequence.objects.none(), empty_label=None)

    def __init__(self, *args, sequences, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sequence"].queryset = sequences


class HandoffFilter(admin.SimpleListFilter):
    title = "hand-off"
    parameter_name = "handoff"

    def lookups(self, request, model_admin):
        return [("requested", "Asked for a human"), ("paused", "AI paused"), ("ai", "AI active")]

    def queryset(self, request, queryset):
        if self.value() == "requested":
            return queryset.filter(handoff_requested_at__isnull=False)
        if self.value() == "paused":
            return queryset.filter(is_ai_paused=True)
        if self.value() == "ai":
            return queryset.filter(is_ai_paused=False)
        return queryset


class LeadAdmin(CrmLeadAdmin):
    change_form_template = "admin/engage/lead/change_form.html"
    list_display = [*CrmLeadAdmin.list_display, "is_ai_paused"]
    list_filter = [HandoffFilter, *CrmLeadAdmin.list_filter]
    actions = [*CrmLeadAdmin.actions, "enroll_in_sequence"]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            # The AI writes the summary; hand-off changes through its buttons, which record events.
            fields += ["summary", "is_ai_paused", "handoff_requested_at"]
        return fields

    def lead_stage_move(self, *, lead, stage, actor) -> None:
        lead_stage_move(lead=lead, stage=stage, actor=actor, source="admin")

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path("<path:object_id>/handoff/<str:operation>/", self.admin_site.admin_view(self.handoff_view),
                 name="{}_{}_handoff".format(*info)),
            *super().get_urls(),
        ]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.pk:
            context.update(
                lead_thread=lead_thread(lead=obj),
                reply_form=ManualReplyForm(),
                can_hand_off=self.has_change_permission(request, obj),
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def handoff_view(self, request, object_id, operation):
        """POST take_over / hand_back / reply for one lead; the lead must be in the user's companies."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        lead = self.get_object(request, unquote(object_id))
        if lead is None:
            raise Http404("No lead with this id.")
        if not self.has_change_permission(request, lead):
            raise PermissionDenied
        if operation == "take_over":
            lead_take_over(lead=lead, actor=request.user)
            self.message_user(request, "You have the conversation: the AI is paused for this lead.", messages.SUCCESS)
        elif operation == "hand_back":
            lead_hand_back(lead=lead, actor=request.user)
            self.message_user(request, "Handed back: the AI answers this lead again.", messages.SUCCESS)
        elif operation == "reply":
            form = ManualReplyForm(request.POST)
            try:
                if not form.is_valid():
                    raise ValidationError(form.errors.get("body") or "Type a reply.")
                lead_manual_reply(lead=lead, actor=request.user, body=form.cleaned_data["body"])
            except ValidationError as error:
                self.message_user(request, f"Not sent: {_validation_text(error)}", messages.ERROR)
            else:
                self.message_user(request, f"Reply queued on {lead.get_channel_display()}.", messages.SUCCESS)
        else:
            raise Http404("Unknown hand-off operation.")
        return HttpResponseRedirect(reverse("admin:crm_lead_change", args=[lead.pk]))

    @admin.action(description="Enroll in a sequence…", permissions=["change"])
    def enroll_in_sequence(self, request, queryset):
        leads = list(queryset.select_related("contact", "company", "pipeline")[: ENROLL_LIMIT + 1])
        if len(leads) > ENROLL_LIMIT:
            self.message_user(request, f"Select at most {ENROLL_LIMIT} leads.", messages.ERROR)
            return None
        sequences = Sequence.objects.filter(
            company_id__in={lead.company_id for lead in leads}, is_active=True
        ).select_related("pipeline").order_by("name")
        form = EnrollForm(request.POST if "apply" in request.POST else None, sequences=sequences)
        if form.is_bound and form.is_valid():
            sequence = form.cleaned_data["sequence"]
            enrolled = already = 0
            refused: list[str] = []
            for lead in leads:
                try:
                    _, created = sequence_enroll(sequence=sequence, lead=lead, actor=request.user, source="admin")
                except ValidationError as error:
                    refused.append(f"{lead.contact}: {_validation_text(error)}")
                    continue
                enrolled += created
                already += not created
            report = f"Enrolled {enrolled} lead(s) in {sequence}."
            if already:
                report += f" {already} already enrolled."
            if refused:
                report += f" {len(refused)} refused ({'; '.join(refused[:5])})."
            self.message_user(request, report, messages.SUCCESS if enrolled else messages.WARNING)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Enroll leads in a sequence",
            "opts": self.opts,
            "leads": leads,
            "form": form,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "select_across": request.POST.get("select_across", "0"),
        }
        return TemplateResponse(request, "admin/engage/lead/enroll_in_sequence.html", context)


# --- Contacts: merge two ---------------------------------------------------------------------------


class MergeForm(forms.Form):
    keep = forms.ChoiceField(widget=forms.RadioSelect, label="Keep")

    def __init__(self, *args, contacts, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["keep"].choices = [(str(contact.pk), str(contact.pk)) for contact in contacts]


class ContactAdmin(CrmContactAdmin):
    actions = [*(CrmContactAdmin.actions or []), "merge_contacts"]

    @admin.action(description="Merge the two selected contacts…", permissions=["change"])
    def merge_contacts(self, request, queryset):
        contacts = list(queryset.select_related("company").order_by("pk")[:3])
        if len(contacts) != 2:
            self.message_user(request, "Select exactly two contacts to merge.", messages.ERROR)
            return None
        if contacts[0].company_id != contacts[1].company_id:
            self.message_user(request, "Only contacts of the same company can be merged.", messages.ERROR)
            return None
        form = MergeForm(request.POST if "apply" in request.POST else None, contacts=contacts)
        if form.is_bound and form.is_valid():
            keep = next(contact for contact in contacts if str(contact.pk) == form.cleaned_data["keep"])
            merge = next(contact for contact in contacts if contact.pk != keep.pk)
            try:
                contact_merge(keep=keep, merge=merge, actor=request.user)
            except ValidationError as error:
                self.message_user(request, _validation_text(error), messages.ERROR)
                return None
            self.message_user(request, f"Merged contact #{merge.pk} into {keep} (#{keep.pk}).", messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Merge two contacts",
            "opts": self.opts,
            "contacts": contacts,
            "form": form,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/engage/contact/merge.html", context)


for _model, _admin_class in ((Lead, LeadAdmin), (Contact, ContactAdmin)):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
    admin.site.register(_model, _admin_class)
