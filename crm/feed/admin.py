"""Import and export in the console: an Import button and Export links on the changelists of customers,
workers, services, bookings, contacts and leads, and the list of imports.

Import: upload a CSV or XLSX file -> the preview (what each row would do, the failing rows with their
errors; nothing written) -> "Import" writes the valid rows, at once for a small file, in the
background through the job ledger for a large one, with a progress bar. Every import is an
`ImportRecord` (who, when, counts, failed rows). Export: the changelist's rows as they are filtered,
searched and scoped to the staff member's companies, streamed as CSV or written as XLSX.
"""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.feed.imports import import_preview, import_record_cancel, import_record_confirm, import_record_create
from crm.feed.resources import feed_export_csv, feed_export_headers, feed_export_xlsx
from crm.models import Company, ImportRecord
from crm.selectors import companies_for_user
from crm.tenancy.admin import TenantScopedAdmin, scope_queryset

# Which admin's pages show an import of each kind (app label, model name).
ADMIN_OF_KIND = {
    "customers": "customer", "workers": "worker", "services": "service", "bookings": "booking",
    "contacts": "contact", "leads": "lead",
}
PREVIEW_ERRORS_SHOWN = 500


class ImportForm(forms.Form):
    file = forms.FileField(label=gettext_lazy("File"), help_text=gettext_lazy("CSV (UTF-8) or XLSX, a header row naming the columns."))
    company = forms.ModelChoiceField(label=gettext_lazy("Company"), queryset=Company.objects.none(), empty_label=None)

    def __init__(self, *args, companies, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["company"].queryset = companies
        self.only_company = companies.first() if companies.count() == 1 else None
        if self.only_company is not None:
            self.fields["company"].widget = forms.HiddenInput()
            self.fields["company"].required = False
            self.fields["company"].initial = self.only_company.pk

    def clean_company(self):
        return self.cleaned_data.get("company") or self.only_company


class FeedImportExportMixin:
    """Adds import and export to a TenantScopedAdmin; set `feed_kind` (customers, bookings, ...)."""

    feed_kind: str = ""
    change_list_template = "admin/crm/feed/change_list.html"

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        view = self.admin_site.admin_view
        return [
            path("import/", view(self.feed_import_view), name="{}_{}_import".format(*info)),
            path("import/<int:record_id>/", view(self.feed_import_status_view), name="{}_{}_import_status".format(*info)),
            path("import/<int:record_id>/progress/", view(self.feed_import_progress_view),
                 name="{}_{}_import_progress".format(*info)),
            path("export/", view(self.feed_export_view), name="{}_{}_export".format(*info)),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "feed_can_import": self._can_import(request),
            "feed_export_query": request.GET.urlencode(),
        }
        return super().changelist_view(request, extra_context)

    def _can_import(self, request) -> bool:
        return self.has_add_permission(request) and self.has_change_permission(request)

    def _context(self, request, **extra):
        return {**self.admin_site.each_context(request), "opts": self.opts, "feed_kind": self.feed_kind, **extra}

    # --- import ---------------------------------------------------------------------------------

    def feed_import_view(self, request):
        if not self._can_import(request):
            raise PermissionDenied
        companies = companies_for_user(user=request.user).filter(is_active=True)
        form = ImportForm(request.POST or None, request.FILES or None, companies=companies)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                record = import_record_create(
                    company=form.cleaned_data["company"], kind=self.feed_kind, file_name=upload.name,
                    data=upload.read(), user=request.user,
                )
            except ValidationError as error:
                form.add_error("file", error.message_dict.get("file", error.messages))
            else:
                return redirect(self._status_url(record))
        return TemplateResponse(request, "admin/crm/feed/import.html", self._context(
            request, title=_("Import %(name)s") % {"name": self.opts.verbose_name_plural}, form=form,
            columns=feed_export_headers(self.feed_kind),
        ))

    def _record(self, request, record_id: int) -> ImportRecord:
        records = scope_queryset(ImportRecord.objects.select_related("company", "created_by"), user=request.user)
        record = records.filter(pk=record_id, kind=self.feed_kind).first()
        if record is None:
            raise Http404
        return record

    def _status_url(self, record: ImportRecord) -> str:
        return reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_import_status", args=[record.pk])

    def feed_import_status_view(self, request, record_id: int):
        if not self.has_view_permission(request):
            raise PermissionDenied
        record = self._record(request, record_id)
        if request.method == "POST":
            if not self._can_import(request):
                raise PermissionDenied
            if "confirm" in request.POST:
                record = import_record_confirm(import_record=record, user=request.user)
                if record.status == ImportRecord.Status.COMPLETED:
                    self.message_user(request, _summary(record), messages.SUCCESS)
            elif "cancel" in request.POST and import_record_cancel(import_record=record):
                self.message_user(request, _("Import cancelled; rows already imported stay."), messages.WARNING)
            return redirect(self._status_url(record))
        preview = None
        if record.status == ImportRecord.Status.PREVIEWED:
            preview = import_preview(import_record=record)
        return TemplateResponse(request, "admin/crm/feed/import_status.html", self._context(
            request, title=_("Import of %(file)s") % {"file": record.file_name}, record=record, preview=preview,
            preview_errors=preview.errors[:PREVIEW_ERRORS_SHOWN] if preview else [],
            preview_remaining=record.total_rows - preview.rows if preview else 0,
            record_errors=record.errors[:PREVIEW_ERRORS_SHOWN],
            progress_url=reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_import_progress",
                                 args=[record.pk]),
            changelist_url=reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist"),
            can_import=self._can_import(request),
        ))

    def feed_import_progress_view(self, request, record_id: int):
        if not self.has_view_permission(request):
            raise PermissionDenied
        record = self._record(request, record_id)
        return JsonResponse({
            "status": record.status, "status_label": record.get_status_display(), "percent": record.percent,
            "processed_rows": record.processed_rows, "total_rows": record.total_rows,
            "created": record.created_count, "updated": record.updated_count,
            "unchanged": record.unchanged_count, "errors": record.error_count,
            "is_finished": record.status in (ImportRecord.Status.COMPLETED, ImportRecord.Status.FAILED,
                                             ImportRecord.Status.CANCELLED),
        })

    # --- export -----------------------------------------------------------------------------------

    def feed_export_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        file_format = request.GET.get("_format", "csv")
        if file_format not in ("csv", "xlsx"):
            raise Http404
        # The changelist's own filters, search and tenant scope, without our parameter.
        params = request.GET.copy()
        params.pop("_format", None)
        request.GET = params
        queryset = self.get_changelist_instance(request).get_queryset(request)
        name = f"{self.feed_kind}-{dt.date.today():%Y-%m-%d}"
        if file_format == "xlsx":
            return FileResponse(feed_export_xlsx(kind=self.feed_kind, queryset=queryset), as_attachment=True,
                                filename=f"{name}.xlsx")
        response = StreamingHttpResponse(feed_export_csv(kind=self.feed_kind, queryset=queryset),
                                         content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
        return response


def _summary(record: ImportRecord) -> str:
    return _("Imported %(file)s: %(created)d created, %(updated)d updated, %(unchanged)d unchanged, "
             "%(errors)d with errors.") % {
        "file": record.file_name, "created": record.created_count, "updated": record.updated_count,
        "unchanged": record.unchanged_count, "errors": record.error_count,
    }


@admin.register(ImportRecord)
class ImportRecordAdmin(TenantScopedAdmin):
    """Every import: who, when, what, how it went. Read-only; each links to its page."""

    list_display = ["created_at", "kind", "open_link", "company", "source", "status", "progress", "created_count",
                    "updated_count", "unchanged_count", "error_count", "created_by"]
    list_filter = ["status", "kind", "source", "company"]
    list_select_related = ["company", "created_by"]
    search_fields = ["file_name", "=file_sha256"]
    ordering = ["-id"]
    exclude = ["data"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("data", "errors")

    @admin.display(description=gettext_lazy("file"))
    def open_link(self, record: ImportRecord) -> str:
        model_name = ADMIN_OF_KIND[record.kind]
        url = reverse(f"admin:crm_{model_name}_import_status", args=[record.pk])
        return format_html('<a href="{}">{}</a>', url, record.file_name)

    @admin.display(description=gettext_lazy("progress"))
    def progress(self, record: ImportRecord) -> str:
        return f"{record.percent}%"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
