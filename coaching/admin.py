"""CoachNova in the admin: the company's settings (with "run now" and "dry run"), runs (pause, resume, cancel, the
impact), every worker's row in a run, and the worker's page extended with punctuality (a weekly trend chart drawn
as inline SVG, no script), coaching history with replies and the "accept the reason" button.

crm's WorkerAdmin knows nothing of coaching (crm never imports coaching): this module registers crm's admin
extended, as engage does for leads."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from coaching.impact import overall_impact, run_impact_compute
from coaching.models import BookingPunctuality, CoachingRecipient, CoachingRun, CoachingSettings, WorkerPunctuality
from coaching.replies import coaching_reply_accept
from coaching.runs import (
    CoachingRunLocked,
    CoachNovaDisabled,
    coaching_run_cancel,
    coaching_run_pause,
    coaching_run_resume,
    coaching_run_trigger,
)
from coaching.selectors import worker_coaching, worker_punctuality
from crm.admin import WorkerAdmin as CrmWorkerAdmin
from crm.models import Worker
from crm.tenancy.admin import TenantScopedAdmin
from shokti.admin import console_text

CHART_WIDTH, CHART_HEIGHT, CHART_PAD = 480, 160, 24


def trend_chart_points(trend: list[dict]) -> list[dict]:
    """x/y of each week with a rate, for the inline SVG (y: 100% at the top)."""
    step = (CHART_WIDTH - 2 * CHART_PAD) / max(1, len(trend) - 1)
    points = []
    for index, week in enumerate(trend):
        if week["on_time_rate"] is None:
            continue
        y = CHART_PAD + (100 - week["on_time_rate"]) / 100 * (CHART_HEIGHT - 2 * CHART_PAD)
        points.append({"x": round(CHART_PAD + index * step, 1), "y": round(y, 1), **week})
    return points


@admin.register(CoachingSettings)
class CoachingSettingsAdmin(TenantScopedAdmin):
    list_display = ["company", "pattern_late_count", "pattern_window_days", "grace_minutes", "holdout_percent",
                    "channel", "is_voice_enabled", "updated_at"]
    list_select_related = ["company"]
    search_fields = ["company__name"]
    autocomplete_fields = ["company"]
    actions = ["run_now", "dry_run"]
    fieldsets = [
        (gettext_lazy("Who is coached"), {"fields": ["company", "grace_minutes", "pattern_late_count", "pattern_window_days",
                                       "recoach_after_days", "holdout_percent"]}),
        (gettext_lazy("How"), {"fields": ["channel", "quiet_start_hour", "quiet_end_hour", "is_voice_enabled"]}),
    ]

    def _trigger(self, request, queryset, *, dry: bool) -> None:
        for row in queryset.select_related("company"):
            try:
                run = coaching_run_trigger(company=row.company, is_dry_run=dry, trigger="admin", actor=request.user)
            except (CoachNovaDisabled, CoachingRunLocked) as error:
                self.message_user(request, f"{row.company}: {console_text(error)}", messages.WARNING)
            else:
                text = _("%(company)s: dry run %(run)s queued.") if dry else _("%(company)s: run %(run)s queued.")
                self.message_user(request, text % {"company": row.company, "run": run.pk}, messages.SUCCESS)

    @admin.action(description=gettext_lazy("Run CoachNova now"), permissions=["change"])
    def run_now(self, request, queryset):
        self._trigger(request, queryset, dry=False)

    @admin.action(description=gettext_lazy("Dry run (write what each worker would get, send nothing)"), permissions=["change"])
    def dry_run(self, request, queryset):
        self._trigger(request, queryset, dry=True)


@admin.register(CoachingRun)
class CoachingRunAdmin(TenantScopedAdmin):
    change_form_template = "admin/coaching/coachingrun/change_form.html"
    list_display = ["id", "company", "status", "is_dry_run", "trigger", "as_of", "coached", "holdout", "impact_text",
                    "is_seeded", "created_at"]
    list_filter = ["status", "is_dry_run", "trigger", "is_seeded", "company"]
    list_select_related = ["company"]
    search_fields = ["=id", "company__name"]
    date_hierarchy = "created_at"
    ordering = ["-created_at"]
    actions = ["pause", "resume", "cancel", "impact_refresh"]
    readonly_fields = ["company", "status", "is_dry_run", "trigger", "rules", "as_of", "counts", "impact",
                       "is_seeded", "error", "triggered_by", "created_at", "started_at", "finished_at"]

    def has_add_permission(self, request):
        return False  # runs start from CoachNova settings ("Run CoachNova now"), the beat or the API

    @admin.display(description=gettext_lazy("coached"))
    def coached(self, run):
        return run.counts.get("status", {}).get("coached", 0) if run.counts else 0

    @admin.display(description=gettext_lazy("holdout"))
    def holdout(self, run):
        return run.counts.get("status", {}).get("holdout", 0) if run.counts else 0

    @admin.display(description=gettext_lazy("impact (pp, 95% CI)"))
    def impact_text(self, run):
        impact = run.impact or {}
        if impact.get("estimate") is None:
            return "—"
        interval = (f" [{impact['ci_low']}, {impact['ci_high']}]" if impact.get("ci_low") is not None else "")
        return f"{impact['estimate']:+}{interval}{_(' (seeded)') if run.is_seeded else ''}"

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.pk:
            recipients = reverse("admin:coaching_coachingrecipient_changelist")
            context.update(recipients_url=f"{recipients}?run__id__exact={obj.pk}",
                           overall=overall_impact(company=obj.company))
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.action(description=gettext_lazy("Pause"), permissions=["change"])
    def pause(self, request, queryset):
        done = sum(coaching_run_pause(run=run) for run in queryset)
        self.message_user(request, _("%(count)d run(s) paused.") % {"count": done})

    @admin.action(description=gettext_lazy("Resume"), permissions=["change"])
    def resume(self, request, queryset):
        done = sum(coaching_run_resume(run=run) for run in queryset.select_related("company"))
        self.message_user(request, _("%(count)d run(s) resumed.") % {"count": done})

    @admin.action(description=gettext_lazy("Cancel"), permissions=["change"])
    def cancel(self, request, queryset):
        done = sum(coaching_run_cancel(run=run) for run in queryset)
        self.message_user(request, _("%(count)d run(s) cancelled.") % {"count": done})

    @admin.action(description=gettext_lazy("Recompute the impact"), permissions=["change"])
    def impact_refresh(self, request, queryset):
        for run in queryset.filter(is_seeded=False).select_related("company"):
            run_impact_compute(run=run)
        self.message_user(request, _("Impact recomputed (seeded demo runs keep their seeded numbers)."))


@admin.register(CoachingRecipient)
class CoachingRecipientAdmin(TenantScopedAdmin):
    list_display = ["id", "run", "worker", "status", "reason", "channel", "ai_outcome", "reply_reason", "replied_at",
                    "accepted_at", "created_at"]
    list_filter = ["status", "reason", "reply_reason", "channel", "company"]
    list_select_related = ["run", "worker__contact", "company"]
    search_fields = ["worker__contact__name", "worker__contact__phone", "=run__id"]
    raw_id_fields = ["run", "message"]
    autocomplete_fields = ["worker"]
    ordering = ["-id"]
    actions = ["accept_reason"]
    readonly_fields = [field.name for field in CoachingRecipient._meta.fields]

    def has_add_permission(self, request):
        return False

    @admin.action(description=gettext_lazy("Accept the worker's reason (excuse the bookings behind it)"), permissions=["change"])
    def accept_reason(self, request, queryset):
        excused = sum(coaching_reply_accept(recipient=row, actor=request.user)
                      for row in queryset.filter(status="coached", accepted_at__isnull=True).select_related("worker"))
        self.message_user(request, _("%(count)d booking(s) excused.") % {"count": excused})


@admin.register(BookingPunctuality)
class BookingPunctualityAdmin(TenantScopedAdmin):
    list_display = ["booking", "worker", "local_date", "outcome", "minutes_late", "is_excused"]
    list_filter = ["outcome", "is_excused", "company"]
    list_select_related = ["booking__service", "booking__customer__contact", "worker__contact", "company"]
    search_fields = ["worker__contact__name", "=booking__id"]
    raw_id_fields = ["booking", "excused_by"]
    autocomplete_fields = ["worker"]
    date_hierarchy = "scheduled_at"
    ordering = ["-scheduled_at"]
    readonly_fields = ["booking", "company", "worker", "scheduled_at", "local_date", "outcome", "minutes_late",
                       "computed_at", "excused_by", "excused_at"]


@admin.register(WorkerPunctuality)
class WorkerPunctualityAdmin(TenantScopedAdmin):
    list_display = ["worker", "on_time_rate_14", "late_14", "on_time_rate_28", "late_28", "trend", "as_of", "channel"]
    list_filter = ["as_of", "channel", "company"]
    list_select_related = ["worker__contact", "company"]
    search_fields = ["worker__contact__name", "worker__contact__phone"]
    autocomplete_fields = ["worker"]
    ordering = ["-late_14"]
    readonly_fields = [field.name for field in WorkerPunctuality._meta.fields if field.name != "channel"]


admin.site.unregister(Worker)


@admin.register(Worker)
class WorkerAdmin(CrmWorkerAdmin):
    change_form_template = "admin/coaching/worker/change_form.html"

    def get_urls(self):
        return [
            path("<path:object_id>/coaching/<int:recipient_id>/accept/", self.admin_site.admin_view(self.accept_view),
                 name="crm_worker_coaching_accept"),
            *super().get_urls(),
        ]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.pk:
            punctuality = worker_punctuality(worker=obj)
            context.update(
                punctuality=punctuality, chart_points=trend_chart_points(punctuality["trend"]),
                chart={"width": CHART_WIDTH, "height": CHART_HEIGHT, "pad": CHART_PAD},
                coaching_rows=list(worker_coaching(worker=obj, include_internal=True)[:20]),
                can_accept=self.has_change_permission(request, obj),
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def accept_view(self, request, object_id, recipient_id):
        """POST: accept the worker's reply to one coaching (excuses its bookings); the worker must be the user's."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        worker = self.get_object(request, unquote(object_id))
        if worker is None:
            raise Http404("No worker with this id.")
        if not self.has_change_permission(request, worker):
            raise Http404("No worker with this id.")
        row = CoachingRecipient.objects.filter(pk=recipient_id, worker=worker, status="coached").first()
        if row is None:
            raise Http404("No such coaching for this worker.")
        excused = coaching_reply_accept(recipient=row, actor=request.user)
        self.message_user(request, format_html(_("Reason accepted: {} booking(s) excused."), excused), messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:crm_worker_change", args=[worker.pk]))
