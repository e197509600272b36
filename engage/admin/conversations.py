"""Admin of conversations: sequences and enrollments, and the lead page with the conversation and hand-off.

crm's `LeadAdmin` knows nothing of engage (crm never imports engage), so crm leaves Lead unregistered
and this module registers `LeadAdmin`, crm's admin extended with the conversation thread, hand-off
controls, sequence enrollment and stage moves that run the stage's sequence rules."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.admin import LeadAdmin as CrmLeadAdmin
from crm.models import Lead, Stage
from crm.tenancy.admin import TenantScopedAdmin, TenantScopedInline
from engage.admin.console import ConsoleViews, actor_names, ai_state, sender_label
from engage.conversations.context import lead_thread
from engage.conversations.handoff import lead_hand_back, lead_manual_reply, lead_take_over
from engage.conversations.media import lead_attachment_response, lead_media_response
from engage.conversations.models import Enrollment, Sequence, SequenceStep
from engage.conversations.sequences import enrollment_stop, lead_stage_move, sequence_enroll
from shokti.admin import validation_error_text

ENROLL_LIMIT = 500


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

    @admin.action(description=gettext_lazy("Stop the selected enrollments"), permissions=["change"])
    def stop(self, request, queryset):
        stopped = sum(enrollment_stop(enrollment=enrollment, reason=f"stopped by {request.user}")
                      for enrollment in queryset[:ENROLL_LIMIT])
        self.message_user(request, _("Stopped %d enrollment(s).") % stopped, messages.SUCCESS)


class ManualReplyForm(forms.Form):
    body = forms.CharField(label=gettext_lazy("Reply"), widget=forms.Textarea(attrs={"rows": 3, "cols": 80}), max_length=4096)


class EnrollForm(forms.Form):
    sequence = forms.ModelChoiceField(label=gettext_lazy("Sequence"), queryset=Sequence.objects.none(), empty_label=None)

    def __init__(self, *args, sequences, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sequence"].queryset = sequences


class HandoffFilter(admin.SimpleListFilter):
    title = gettext_lazy("hand-off")
    parameter_name = "handoff"

    def lookups(self, request, model_admin):
        return [("requested", _("Asked for a human")), ("paused", _("AI paused")), ("ai", _("AI active"))]

    def queryset(self, request, queryset):
        if self.value() == "requested":
            return queryset.filter(handoff_requested_at__isnull=False)
        if self.value() == "paused":
            return queryset.filter(is_ai_paused=True)
        if self.value() == "ai":
            return queryset.filter(is_ai_paused=False)
        return queryset


@admin.register(Lead)
class LeadAdmin(ConsoleViews, CrmLeadAdmin):
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
            path("<path:object_id>/media/<int:message_id>/", self.admin_site.admin_view(self.media_view),
                 name="{}_{}_media".format(*info)),
            path("<path:object_id>/media/<int:message_id>/<int:position>/",
                 self.admin_site.admin_view(self.media_view), name="{}_{}_attachment".format(*info)),
            *self.console_urls(),
            *super().get_urls(),
        ]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.pk:
            thread = lead_thread(lead=obj)
            names = actor_names(thread)
            for message in thread:
                message.sender_label = sender_label(message, names)
            context.update(
                lead_thread=thread,
                reply_form=ManualReplyForm(),
                can_hand_off=self.has_change_permission(request, obj),
                ai_state=ai_state(obj),
                stages=list(Stage.objects.filter(pipeline_id=obj.pipeline_id).order_by("order", "id")),
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def media_view(self, request, object_id, message_id, position=None):
        """A photo, voice note or file a customer sent on this lead (the lead must be in the user's companies);
        with `position`, that attachment of the message (an MMS may carry several)."""
        lead = self.get_object(request, unquote(object_id))
        if lead is None or not self.has_view_permission(request, lead):
            raise Http404("No lead with this id.")
        if position is not None:
            return lead_attachment_response(lead=lead, message_id=message_id, position=position)
        return lead_media_response(lead=lead, message_id=message_id)

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
            self.message_user(request, _("You have the conversation: the AI is paused for this lead."), messages.SUCCESS)
        elif operation == "hand_back":
            lead_hand_back(lead=lead, actor=request.user)
            self.message_user(request, _("Handed back: the AI answers this lead again."), messages.SUCCESS)
        elif operation == "reply":
            form = ManualReplyForm(request.POST)
            try:
                if not form.is_valid():
                    raise ValidationError(form.errors.get("body") or _("Type a reply."))
                lead_manual_reply(lead=lead, actor=request.user, body=form.cleaned_data["body"])
            except ValidationError as error:
                self.message_user(request, _("Not sent: %s") % validation_error_text(error), messages.ERROR)
            else:
                self.message_user(request, _("Reply queued on %s.") % lead.get_channel_display(), messages.SUCCESS)
        elif operation == "stage":
            stage_id = request.POST.get("stage", "")
            stage = Stage.objects.filter(pk=int(stage_id), pipeline_id=lead.pipeline_id).first() if (
                stage_id.isdigit()) else None
            if stage is None:
                self.message_user(request, _("Not moved: pick a stage of this lead's pipeline."), messages.ERROR)
            elif stage.pk != lead.stage_id:
                self.lead_stage_move(lead=lead, stage=stage, actor=request.user)
                self.message_user(request, _("Moved to %s.") % stage.name, messages.SUCCESS)
        else:
            raise Http404("Unknown hand-off operation.")
        return HttpResponseRedirect(reverse("admin:crm_lead_change", args=[lead.pk]))

    @admin.action(description=gettext_lazy("Enroll in a sequence…"), permissions=["change"])
    def enroll_in_sequence(self, request, queryset):
        leads = list(queryset.select_related("contact", "company", "pipeline")[: ENROLL_LIMIT + 1])
        if len(leads) > ENROLL_LIMIT:
            self.message_user(request, _("Select at most %d leads.") % ENROLL_LIMIT, messages.ERROR)
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
                    _enrollment, created = sequence_enroll(sequence=sequence, lead=lead, actor=request.user, source="admin")
                except ValidationError as error:
                    refused.append(f"{lead.contact}: {validation_error_text(error)}")
                    continue
                enrolled += created
                already += not created
            report = _("Enrolled %(count)d lead(s) in %(sequence)s.") % {"count": enrolled, "sequence": sequence}
            if already:
                report += " " + _("%d already enrolled.") % already
            if refused:
                report += " " + _("%(count)d refused (%(reasons)s).") % {"count": len(refused),
                                                                        "reasons": "; ".join(refused[:5])}
            self.message_user(request, report, messages.SUCCESS if enrolled else messages.WARNING)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": _("Enroll leads in a sequence"),
            "opts": self.opts,
            "leads": leads,
            "form": form,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "select_across": request.POST.get("select_across", "0"),
        }
        return TemplateResponse(request, "admin/engage/lead/enroll_in_sequence.html", context)
