"""Admin of the job ledger: filter by task, replay and cancel jobs (one at a time or in bulk)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.tenancy.admin import TenantScopedAdmin
from engage.ledger.models import Job
from engage.ledger.registry import handler_names
from engage.ledger.services import job_cancel, job_replay


class TaskNameFilter(admin.SimpleListFilter):
    """Task names from the handler registry: no DISTINCT scan over the ledger."""

    title = gettext_lazy("task")
    parameter_name = "task_name"

    def lookups(self, request, model_admin):
        return [(name, name) for name in handler_names() if not name.startswith(("reliability_", "test_"))]

    def queryset(self, request, queryset):
        return queryset.filter(task_name=self.value()) if self.value() else queryset


@admin.register(Job)
class JobAdmin(TenantScopedAdmin):
    company_field = "company"
    list_display = ["id", "task_name", "company", "status", "priority", "attempts_display", "next_run_at",
                    "created_at", "finished_at"]
    list_filter = ["status", TaskNameFilter, "company"]
    list_select_related = ["company"]
    search_fields = ["=id", "=idempotency_key", "task_name"]
    ordering = ["-id"]
    date_hierarchy = None
    show_full_result_count = False
    autocomplete_fields = ["company"]
    actions = ["replay_selected", "cancel_selected"]
    readonly_fields = ["company", "task_name", "priority", "payload", "idempotency_key", "status", "attempts",
                       "max_attempts", "next_run_at", "dispatched_at", "locked_at", "locked_by", "last_error",
                       "result", "created_at", "updated_at", "started_at", "finished_at", "messages_display"]
    fieldsets = [
        (None, {"fields": ["company", "task_name", "priority", "status", "idempotency_key"]}),
        ("Attempts", {"fields": ["attempts", "max_attempts", "next_run_at", "dispatched_at", "locked_at",
                                 "locked_by", "last_error"]}),
        ("Data", {"fields": ["payload", "result", "messages_display"]}),
        ("Timestamps", {"fields": ["created_at", "updated_at", "started_at", "finished_at"]}),
    ]

    def get_queryset(self, request):
        # The list never needs the heavy JSON and error text.
        queryset = super().get_queryset(request)
        if request.resolver_match and request.resolver_match.url_name.endswith("changelist"):
            queryset = queryset.defer("payload", "result", "last_error")
        return queryset

    def has_add_permission(self, request):
        return False  # jobs are created by the services that need them

    def has_delete_permission(self, request, obj=None):
        return False  # the ledger is an audit trail: cancel instead

    change_form_outer_before_template = "admin/engage/job/buttons.html"

    def get_urls(self):
        return [
            path("<path:object_id>/do/<str:operation>/", self.admin_site.admin_view(self.operation_view),
                 name="engage_job_do"),
            *super().get_urls(),
        ]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["job_can_operate"] = obj is not None and self.has_change_permission(request, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def operation_view(self, request, object_id, operation):
        """POST Replay or Cancel from a job's page."""
        if request.method != "POST":
            raise PermissionDenied
        job = self.get_object(request, unquote(object_id))
        if job is None:
            raise Http404("No job with this id.")
        if not self.has_change_permission(request, job):
            raise PermissionDenied
        if operation == "replay":
            self.replay_selected(request, Job.objects.filter(pk=job.pk))
        elif operation == "cancel":
            self.cancel_selected(request, Job.objects.filter(pk=job.pk))
        else:
            raise Http404("Unknown operation.")
        return HttpResponseRedirect(reverse("admin:engage_job_change", args=[job.pk]))

    @admin.display(description=gettext_lazy("attempts"))
    def attempts_display(self, job):
        return f"{job.attempts}/{job.max_attempts}"

    @admin.display(description=gettext_lazy("messages"))
    def messages_display(self, job):
        rows = job.messages.order_by("id").values_list("id", "direction", "channel", "status")
        return format_html_join(", ", "#{} {} {} ({})", rows) or "-"

    def _apply(self, request, queryset, service, *, done_text, refused_text):
        done, refused = 0, []
        for job_id in queryset.values_list("pk", flat=True):
            job = Job(pk=job_id)  # the service locks and re-reads the row
            try:
                service(job=job)
                done += 1
            except ValidationError as error:
                refused.append(f"#{job.pk}: {'; '.join(error.messages)}")
        if done:
            self.message_user(request, done_text % done, messages.SUCCESS)
        if refused:
            self.message_user(request, refused_text % " ".join(refused[:20]), messages.WARNING)

    @admin.action(description=gettext_lazy("Replay selected dead/failed jobs"), permissions=["change"])
    def replay_selected(self, request, queryset):
        self._apply(request, queryset, job_replay, done_text=_("Replayed %d job(s)."), refused_text=_("Not replayed: %s"))

    @admin.action(description=gettext_lazy("Cancel selected queued/failed jobs"), permissions=["change"])
    def cancel_selected(self, request, queryset):
        user = request.user

        def cancel(*, job):
            return job_cancel(job=job, reason=f"Cancelled by {user} in the admin.")

        self._apply(request, queryset, cancel, done_text=_("Cancelled %d job(s)."), refused_text=_("Not cancelled: %s"))
