"""Admin of prompt templates and their versions; the template studio opens from a template's row."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.tenancy.admin import TenantScopedAdmin, TenantScopedInline
from engage.prompts.models import PromptTemplate, PromptTemplateVersion
from engage.prompts.rendering import template_variables_check
from engage.prompts.services import template_version_create
from engage.studio.services import template_publish, template_rollback
from engage.studio.views import TemplateStudioMixin
from shokti.admin import validation_error_text


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
    """Templates; their wording is edited, previewed, versioned and published in the studio (engage.studio.views)."""

    change_form_template = "admin/engage/prompttemplate/change_form.html"
    list_display = ["name", "company", "agent_type", "locale", "description", "studio_link", "created_at"]
    list_filter = ["agent_type", "locale", "company"]
    list_select_related = ["company"]
    search_fields = ["name", "description"]
    inlines = [PromptTemplateVersionInline]
    ordering = ["company", "agent_type", "locale", "name"]

    @admin.display(description=gettext_lazy("studio"))
    def studio_link(self, template: PromptTemplate) -> str:
        url = reverse("admin:engage_prompttemplate_studio", args=[template.pk])
        return format_html('<a class="button" href="{}">{}</a>', url, _("Open the studio"))


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
                    try:
                        template_variables_check(agent_type=template.agent_type, body=body)
                    except ValidationError as error:
                        self.add_error("body", validation_error_text(error))
                return cleaned

        return CheckedForm

    def has_publish_permission(self, request) -> bool:
        return request.user.has_perm("engage.publish_prompttemplate")

    @admin.action(description=gettext_lazy("Approve the selected version (archives the approved one)"), permissions=["publish"])
    def approve(self, request, queryset):
        versions = list(queryset[:2])
        if len(versions) != 1:
            self.message_user(request, _("Select exactly one version to approve."), messages.ERROR)
            return
        try:
            # The studio's publish/rollback: the permission's rules and the timeline event.
            is_rollback = versions[0].status == PromptTemplateVersion.Status.ARCHIVED
            version = (template_rollback if is_rollback else template_publish)(version=versions[0], actor=request.user)
        except ValidationError as error:
            self.message_user(request, validation_error_text(error), messages.ERROR)
            return
        self.message_user(request, _("Approved %s.") % version, messages.SUCCESS)
