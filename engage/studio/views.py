"""The template studio: admin views on `PromptTemplate` (staff session + CSRF, JSON in and out).

`TemplateStudioMixin` adds the studio page and its endpoints to the PromptTemplate admin:

    <id>/studio/                 the page (editor, variables, preview, history, diff, publish)
    <id>/studio/preview/         POST {body, subject_id, sample_output} -> rendered text, verdicts
    <id>/studio/sample/          POST {body, subject_id, channel} -> a model sample (or the fallback)
    <id>/studio/save/            POST {body} -> a new draft version
    <id>/studio/publish/         POST {version} -> the draft is approved
    <id>/studio/rollback/        POST {version} -> an earlier published version is approved again
    <id>/studio/subjects/?q=     GET the company's customers / leads / workers to preview with
    <id>/studio/diff/?from=&to=  GET a side-by-side diff table of two versions

Every object is looked up through the tenant-scoped queryset (another company's template is a
404); editing and previewing need `engage.add_prompttemplateversion`, publishing and rollback
`engage.publish_prompttemplate` (403 otherwise). The views only parse and shape: the work is in
`engage.studio.services`.
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin.utils import unquote
from django.core.exceptions import RequestDataTooBig, ValidationError
from django.http import Http404, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _
from rest_framework.exceptions import APIException

from engage.prompts.models import PromptTemplate
from engage.studio import services as studio
from shokti.api.parsers import json_loads

EDIT_PERMISSION = "engage.add_prompttemplateversion"
PUBLISH_PERMISSION = "engage.publish_prompttemplate"


def json_error(status: int, code: str, message: str, fields: dict | None = None, **extra: Any) -> JsonResponse:
    """The project's one error shape: {"error": {"code", "message", "fields"}} (plus extras such as line)."""
    return JsonResponse({"error": {"code": code, "message": message, "fields": fields or {}, **extra}}, status=status)


def _translated(item: ValidationError) -> str:
    text = _(str(item.message))
    return text % item.params if item.params else text


def _validation_response(error: ValidationError, *, agent_type: str = "", body: str = "") -> JsonResponse:
    """The error in the staff's language: services shared with the API raise English (gettext_noop with params),
    translated here at display time."""
    if hasattr(error, "error_dict"):
        fields = {name: [_translated(item) for item in items] for name, items in error.error_dict.items()}
        message = "; ".join(text for texts in fields.values() for text in texts)
    else:
        fields = {}
        message = "; ".join(_translated(item) for item in error.error_list)
    line = studio.template_body_lint(agent_type=agent_type, body=body)["line"] if body else None
    return json_error(400, "invalid", message, fields, line=line)


class TemplateStudioMixin:
    """Mix into the PromptTemplate ModelAdmin (a TenantScopedAdmin)."""

    def studio_can_edit(self, request) -> bool:
        return request.user.has_perm(EDIT_PERMISSION)

    def studio_can_publish(self, request) -> bool:
        return request.user.has_perm(PUBLISH_PERMISSION)

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        routes = [
            ("", self.studio_view, "studio"),
            ("preview/", self.studio_preview_view, "studio_preview"),
            ("sample/", self.studio_sample_view, "studio_sample"),
            ("save/", self.studio_save_view, "studio_save"),
            ("publish/", self.studio_publish_view, "studio_publish"),
            ("rollback/", self.studio_rollback_view, "studio_rollback"),
            ("subjects/", self.studio_subjects_view, "studio_subjects"),
            ("diff/", self.studio_diff_view, "studio_diff"),
        ]
        return [
            *[
                path(f"<path:object_id>/studio/{route}", self.admin_site.admin_view(view),
                     name="{}_{}_{}".format(*info, name))
                for route, view, name in routes
            ],
            *super().get_urls(),
        ]

    # --- helpers -----------------------------------------------------------------------------------

    def _studio_template(self, request, object_id) -> PromptTemplate | None:
        """The template if it is in the user's companies and they may view it, else None (a 404)."""
        template = self.get_object(request, unquote(object_id))
        if template is None or not self.has_view_permission(request, template):
            return None
        return template

    @staticmethod
    def _json_body(request) -> dict[str, Any] | None:
        try:
            data = json_loads(request.body or b"{}")
        except (APIException, RequestDataTooBig):  # malformed, too deep, too large, unstorable text
            return None
        return data if isinstance(data, dict) else None

    def _studio_post(self, request, object_id, *, permission: str):
        """(template, data, None) or (None, None, error response) for a POST endpoint."""
        template = self._studio_template(request, object_id)
        if template is None:
            return None, None, json_error(404, "not_found", _("No such template."))
        if not request.user.has_perm(permission):
            return None, None, json_error(403, "permission_denied", _("You may not change this template."))
        data = self._json_body(request)
        if data is None:
            return None, None, json_error(400, "invalid", _("The request body must be a JSON object."))
        body = data.get("body", "")
        if not isinstance(body, str):
            return None, None, json_error(400, "invalid", _("body must be text."), {"body": [_("Must be text.")]})
        return template, data, None

    # --- the page ----------------------------------------------------------------------------------

    def studio_view(self, request, object_id):
        template = self._studio_template(request, object_id)
        if template is None:
            raise Http404(_("No such template."))
        versions = list(studio.template_versions(template=template))
        approved = next((version for version in versions if version.status == "approved"), None)
        # Open on the newest draft when one is newer than the live version, else on the live version
        # (after a rollback the newest version is archived: not what anyone wants to edit).
        newest_draft = next((version for version in versions if version.status == "draft"), None)
        current = newest_draft if newest_draft and (approved is None or newest_draft.number > approved.number) else (
            approved or (versions[0] if versions else None))
        wanted = request.GET.get("version")
        if wanted:
            current = next((version for version in versions if str(version.number) == wanted), current)
        info = self.opts.app_label, self.opts.model_name
        urls = {name: reverse("admin:{}_{}_{}".format(*info, name), args=[template.pk])
                for name in ("studio", "studio_preview", "studio_sample", "studio_save", "studio_publish",
                             "studio_rollback", "studio_subjects", "studio_diff")}
        variables = studio.template_variables_for(agent_type=template.agent_type)
        config = {
            "urls": urls,
            "variables": [item["name"] for item in variables],
            "can_edit": self.studio_can_edit(request),
            "can_publish": self.studio_can_publish(request),
            "subject_kind": studio.SUBJECT_KIND_BY_AGENT_TYPE.get(template.agent_type, ""),
        }
        context = {
            **self.admin_site.each_context(request),
            "title": _("Template studio: %s") % template.name,
            "opts": self.opts,
            "original": template,
            "template_obj": template,
            "versions": versions,
            "current": current,
            "approved": approved,
            "variables": variables,
            "studio_config": config,
            "can_edit": config["can_edit"],
            "can_publish": config["can_publish"],
            "has_view_permission": True,
            "change_url": reverse("admin:{}_{}_change".format(*info), args=[template.pk]),
            "just_saved": request.GET.get("saved") == "1",
            "just_published": request.GET.get("published") == "1",
        }
        return TemplateResponse(request, "admin/engage/prompttemplate/studio.html", context)

    # --- JSON endpoints ----------------------------------------------------------------------------

    def _studio_post_call(self, request, object_id, *, permission: str, call, status: int = 200) -> JsonResponse:
        """POST only; the template scoped and the permission checked; `call(template, data)` -> the JSON answer."""
        if request.method != "POST":
            return json_error(405, "method_not_allowed", _("Use POST."))
        template, data, error = self._studio_post(request, object_id, permission=permission)
        if error:
            return error
        try:
            result = call(template, data)
        except ValidationError as problem:
            return _validation_response(problem, agent_type=template.agent_type, body=data.get("body", ""))
        return JsonResponse(result, status=status)

    def studio_preview_view(self, request, object_id):
        def call(template, data):
            sample_output = data.get("sample_output") or ""
            if not isinstance(sample_output, str):
                raise ValidationError({"sample_output": _("Must be text.")})
            return studio.template_preview(template=template, body=data.get("body", ""),
                                           subject_id=data.get("subject_id"), sample_output=sample_output)

        return self._studio_post_call(request, object_id, permission=EDIT_PERMISSION, call=call)

    def studio_sample_view(self, request, object_id):
        def call(template, data):
            channel = data.get("channel") or "sms"
            if channel not in {str(item) for item in studio.PREVIEW_CHANNELS}:
                raise ValidationError({"channel": _("Unknown channel %r.") % channel})
            return studio.template_sample_generate(template=template, body=data.get("body", ""),
                                                   subject_id=data.get("subject_id"), channel=channel)

        return self._studio_post_call(request, object_id, permission=EDIT_PERMISSION, call=call)

    def studio_save_view(self, request, object_id):
        def call(template, data):
            version = studio.template_draft_save(template=template, body=data.get("body", ""), author=request.user)
            return {"version": version.number, "status": version.status}

        return self._studio_post_call(request, object_id, permission=EDIT_PERMISSION, call=call, status=201)

    def _approve_view(self, request, object_id, service):
        def call(template, data):
            version = studio.template_version_get(template=template, number=data.get("version"))
            version = service(version=version, actor=request.user)
            return {"version": version.number, "status": version.status}

        return self._studio_post_call(request, object_id, permission=PUBLISH_PERMISSION, call=call)

    def studio_publish_view(self, request, object_id):
        return self._approve_view(request, object_id, studio.template_publish)

    def studio_rollback_view(self, request, object_id):
        return self._approve_view(request, object_id, studio.template_rollback)

    def studio_subjects_view(self, request, object_id):
        template = self._studio_template(request, object_id)
        if template is None:
            return json_error(404, "not_found", _("No such template."))
        results = studio.subjects_search(company=template.company, agent_type=template.agent_type,
                                         query=request.GET.get("q", "")[:100])
        return JsonResponse({"kind": studio.SUBJECT_KIND_BY_AGENT_TYPE.get(template.agent_type, ""),
                             "results": results})

    def studio_diff_view(self, request, object_id):
        template = self._studio_template(request, object_id)
        if template is None:
            return json_error(404, "not_found", _("No such template."))
        try:
            table = studio.template_versions_diff(template=template, from_number=request.GET.get("from"),
                                                  to_number=request.GET.get("to"))
        except ValidationError as problem:
            return _validation_response(problem)
        return JsonResponse({"html": table})
