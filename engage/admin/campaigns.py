"""Admin of SmartEngage campaigns, their runs and recipients (imported by engage/admin/__init__.py).

Actions call the services of engage.campaigns.runs and say what they did. A run's page shows
its counts, its skip reasons (one grouped query) and a link to its recipients; a campaign's page
shows the attribution funnel sent → delivered → opened → clicked → booked (one aggregate query).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from crm.tenancy.admin import TenantScopedAdmin
from engage.campaigns.models import Campaign, CampaignRecipient, CampaignRun, ShortLink
from engage.campaigns.runs import (
    campaign_funnel,
    campaign_pause,
    campaign_resume,
    campaign_run_cancel,
    campaign_run_retry_failed,
    campaign_run_trigger,
)
from engage.campaigns.selectors import campaign_audience_estimate, campaign_run_summary
from engage.policy.models import CampaignPreset
from shokti.admin import validation_error_text

FUNNEL_STEPS = ("sent", "delivered", "opened", "clicked", "booked")


def _recipients_url(**filters: object) -> str:
    query = "&".join(f"{key}={value}" for key, value in filters.items())
    return f"{reverse('admin:engage_campaignrecipient_changelist')}?{query}"


class CampaignForm(forms.ModelForm):
    """The preset is a choice among the presets of the companies' engagement policies."""

    preset = forms.ChoiceField(choices=[], help_text=gettext_lazy("Cadence, batch size and send window: set in Settings → Engagement policy."))

    class Meta:
        model = Campaign
        fields = "__all__"  # noqa: DJ007  (the ModelAdmin's fields decide what is shown)


CAMPAIGN_OPERATIONS = ("run_now", "dry_run", "dry_run_ignoring_window", "pause", "resume")
RUN_OPERATIONS = ("cancel", "retry_failed")


@admin.register(Campaign)
class CampaignAdmin(TenantScopedAdmin):
    form = CampaignForm
    change_form_template = "admin/engage/campaign/change_form.html"
    list_display = ["name", "company", "type", "preset", "channel", "promo_code", "is_paused", "created_at"]
    list_filter = ["is_paused", "channel", "type", "company"]
    search_fields = ["name", "promo_code"]
    list_select_related = ["company"]
    autocomplete_fields = ["service"]
    ordering = ["company", "name"]
    readonly_fields = ["funnel", "recent_runs", "created_at", "updated_at"]
    fields = [
        "company", "name", "type", "preset", "channel", "service", "promo_code", "link_ttl_hours", "is_paused",
        "funnel", "recent_runs", "created_at", "updated_at",
    ]
    actions = ["run_now", "dry_run", "dry_run_ignoring_window", "pause", "resume"]

    @admin.display(description=gettext_lazy("Attribution funnel"))
    def funnel(self, obj: Campaign) -> str:
        if obj.pk is None:
            return "-"
        counts = campaign_funnel(campaign=obj)
        sent = counts["sent"] or 0
        cells = format_html_join(
            "",
            "<td><strong>{}</strong><br>{}{}</td>",
            (
                (step, counts[step], f" ({counts[step] * 100 // sent}%)" if sent and step != "sent" else "")
                for step in FUNNEL_STEPS
            ),
        )
        return format_html('<table class="campaign-funnel"><tr>{}</tr></table>', cells)

    @admin.display(description=gettext_lazy("Recent runs"))
    def recent_runs(self, obj: Campaign) -> str:
        if obj.pk is None:
            return "-"
        runs = obj.runs.order_by("-created_at", "-id")[:10]
        rows = format_html_join(
            "",
            '<li><a href="{}">#{} {}{}</a>: {}</li>',
            (
                (
                    reverse("admin:engage_campaignrun_change", args=[run.pk]), run.pk, run.get_status_display(),
                    _(" (dry run)") if run.is_dry_run else "",
                    _("%(sent)d sent, %(failed)d failed, %(skipped)d skipped, %(rendered)d rendered") % {
                        "sent": run.sent, "failed": run.failed, "skipped": run.skipped, "rendered": run.rendered},
                )
                for run in runs
            ),
        )
        return format_html("<ul>{}</ul>", rows) if rows else _("No runs yet.")

    def _trigger(self, request, queryset, *, is_dry_run: bool, ignores_send_window: bool = False) -> None:
        queued: list[CampaignRun] = []
        locked = 0
        for campaign in queryset.select_related("company"):
            try:
                run = campaign_run_trigger(
                    campaign=campaign, is_dry_run=is_dry_run, actor=request.user,
                    ignores_send_window=ignores_send_window,
                )
            except ValidationError as error:
                self.message_user(request, f"{campaign}: {validation_error_text(error)}", messages.ERROR)
                continue
            if run.status == CampaignRun.Status.LOCKED:
                locked += 1
            else:
                queued.append(run)
        links = format_html_join(", ", '<a href="{}">{} #{}</a>', (
            (reverse("admin:engage_campaignrun_change", args=[run.pk]), run.campaign.name, run.pk) for run in queued
        ))
        if queued:
            queued_text = (
                ngettext("%(count)d dry run queued: %(links)s.", "%(count)d dry runs queued: %(links)s.", len(queued))
                if is_dry_run else ngettext("%(count)d run queued: %(links)s.", "%(count)d runs queued: %(links)s.",
                                            len(queued))
            )
            # the translated sentence is text; the links are HTML built above
            self.message_user(request, mark_safe(escape(queued_text) % {"count": len(queued), "links": links}),
                              messages.SUCCESS)
        else:
            self.message_user(request, _("No dry run queued.") if is_dry_run else _("No run queued."), messages.INFO)
        if locked:
            self.message_user(request, ngettext(
                "%d campaign already had a run queued or running: recorded as locked.",
                "%d campaigns already had a run queued or running: recorded as locked.", locked) % locked,
                messages.WARNING)

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        presets = CampaignPreset.objects.filter(policy__company__in=self.get_queryset(request).values("company")
                                                if obj is None else [obj.company_id])
        names = sorted(set(presets.values_list("name", flat=True)) | ({obj.preset} if obj else {"default"}))
        form.base_fields["preset"].choices = [(name, name) for name in names]
        form.base_fields["preset"].initial = obj.preset if obj else "default"
        return form

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/do/<str:operation>/", view(self.operation_view), name="engage_campaign_do"),
            *super().get_urls(),
        ]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.pk:
            try:
                estimate = campaign_audience_estimate(campaign=obj)
            except (KeyError, ValueError):
                estimate = None  # an unknown preset: the form says so
            context.update(
                audience=estimate,
                can_operate=self.has_change_permission(request, obj),
                active_run=obj.runs.filter(status__in=[CampaignRun.Status.QUEUED, CampaignRun.Status.RUNNING])
                .order_by("-id").first(),
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def operation_view(self, request, object_id, operation):
        """POST one of the campaign page's buttons; a queued run opens its page."""
        if request.method != "POST":
            raise PermissionDenied
        campaign = self.get_object(request, unquote(object_id))
        if campaign is None:
            raise Http404("No campaign with this id.")
        if operation not in CAMPAIGN_OPERATIONS:
            raise Http404("Unknown operation.")
        if not self.has_change_permission(request, campaign):
            raise PermissionDenied
        change_url = reverse("admin:engage_campaign_change", args=[campaign.pk])
        if operation == "pause":
            campaign_pause(campaign=campaign)
            self.message_user(request, _("Paused: the daily run skips this campaign."), messages.SUCCESS)
            return HttpResponseRedirect(change_url)
        if operation == "resume":
            campaign_resume(campaign=campaign)
            self.message_user(request, _("Resumed: the daily run includes this campaign again."), messages.SUCCESS)
            return HttpResponseRedirect(change_url)
        try:
            run = campaign_run_trigger(
                campaign=campaign, is_dry_run=operation != "run_now", actor=request.user,
                ignores_send_window=operation == "dry_run_ignoring_window",
            )
        except ValidationError as error:
            self.message_user(request, _("Not queued: %s") % "; ".join(error.messages), messages.ERROR)
            return HttpResponseRedirect(change_url)
        if run.status == CampaignRun.Status.LOCKED:
            self.message_user(request, _("Another run of this campaign is queued or running: watch it here."),
                              messages.WARNING)
            active = campaign.runs.filter(status__in=[CampaignRun.Status.QUEUED, CampaignRun.Status.RUNNING]).first()
            return HttpResponseRedirect(reverse("admin:engage_campaignrun_change", args=[(active or run).pk]))
        self.message_user(request, _("Queued: this page follows the run until it is done."), messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:engage_campaignrun_change", args=[run.pk]))

    @admin.action(description=gettext_lazy("Run now"), permissions=["change"])
    def run_now(self, request, queryset) -> None:
        self._trigger(request, queryset, is_dry_run=False)

    @admin.action(description=gettext_lazy("Dry run (render, send nothing)"), permissions=["change"])
    def dry_run(self, request, queryset) -> None:
        self._trigger(request, queryset, is_dry_run=True)

    @admin.action(description=gettext_lazy("Dry run ignoring the send window (a preview of everyone eligible)"),
                  permissions=["change"])
    def dry_run_ignoring_window(self, request, queryset) -> None:
        self._trigger(request, queryset, is_dry_run=True, ignores_send_window=True)

    @admin.action(description=gettext_lazy("Pause (the daily run skips it)"), permissions=["change"])
    def pause(self, request, queryset) -> None:
        for campaign in queryset:
            campaign_pause(campaign=campaign)
        self.message_user(request, ngettext("%d campaign paused.", "%d campaigns paused.", len(queryset)) % len(queryset),
                          messages.SUCCESS)

    @admin.action(description=gettext_lazy("Resume"), permissions=["change"])
    def resume(self, request, queryset) -> None:
        for campaign in queryset:
            campaign_resume(campaign=campaign)
        self.message_user(request, ngettext("%d campaign resumed.", "%d campaigns resumed.", len(queryset)) % len(queryset),
                          messages.SUCCESS)


@admin.register(CampaignRun)
class CampaignRunAdmin(TenantScopedAdmin):
    list_display = [
        "id", "campaign", "status", "is_dry_run", "trigger", "total_eligible", "sent", "failed", "skipped",
        "rendered", "started_at", "duration",
    ]
    list_filter = ["status", "is_dry_run", "trigger", "company"]
    search_fields = ["campaign__name", "=correlation_id"]
    list_select_related = ["campaign", "company"]
    ordering = ["-created_at", "-id"]
    date_hierarchy = None
    readonly_fields = [
        "company", "campaign", "status", "is_dry_run", "trigger", "triggered_by", "summary", "preset", "promo_code",
        "total_eligible", "sent", "failed", "skipped", "rendered", "correlation_id", "job", "slices", "cursor", "error",
        "created_at", "started_at", "finished_at", "duration", "reasons", "recipients_link",
    ]
    actions = ["cancel", "retry_failed"]
    change_form_template = "admin/engage/campaignrun/change_form.html"
    # What people read first; the rest (preset, cursor, slices, job...) folds under "Details".
    fieldsets = [
        (None, {"fields": ["campaign", "status", "is_dry_run", "summary", "recipients_link"]}),
        (gettext_lazy("Details"), {"classes": ["collapse"], "fields": [
            "company", "trigger", "triggered_by", "promo_code", "total_eligible", "sent", "failed", "skipped",
            "rendered", "reasons", "preset", "correlation_id", "job", "slices", "cursor", "error", "created_at",
            "started_at", "finished_at", "duration",
        ]}),
    ]

    def has_add_permission(self, request) -> bool:
        return False

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/progress/", view(self.progress_view), name="engage_campaignrun_progress"),
            path("<path:object_id>/do/<str:operation>/", view(self.operation_view), name="engage_campaignrun_do"),
            *super().get_urls(),
        ]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.pk:
            context.update(progress=run_progress(obj), can_operate=self.has_change_permission(request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def progress_view(self, request, object_id):
        """GET the run's progress and funnel as JSON (the run page polls it until the run is done)."""
        run = self.get_object(request, unquote(object_id))
        if run is None:
            return JsonResponse({"error": {"code": "not_found", "message": _("No run with this id."), "fields": {}}},
                                status=404)
        return JsonResponse(run_progress(run))

    def operation_view(self, request, object_id, operation):
        """POST Cancel or Retry failed from the run page."""
        if request.method != "POST":
            raise PermissionDenied
        run = self.get_object(request, unquote(object_id))
        if run is None:
            raise Http404("No run with this id.")
        if operation not in RUN_OPERATIONS:
            raise Http404("Unknown operation.")
        if not self.has_change_permission(request, run):
            raise PermissionDenied
        if operation == "cancel":
            try:
                campaign_run_cancel(run=run)
                self.message_user(request, _("Cancelled: nothing more is sent by this run."), messages.SUCCESS)
            except ValidationError as error:
                self.message_user(request, validation_error_text(error), messages.WARNING)
        else:
            total = campaign_run_retry_failed(run=run)
            self.message_user(request, _("%d failed recipient(s) queued again; sent ones were left alone.") % total,
                              messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:engage_campaignrun_change", args=[run.pk]))

    @admin.display(description=gettext_lazy("duration (s)"))
    def duration(self, obj: CampaignRun) -> float | None:
        return obj.duration_seconds

    @admin.display(description=gettext_lazy("What happened"))
    def summary(self, obj: CampaignRun) -> str:
        summary = campaign_run_summary(run=obj)
        labels = dict(CampaignRecipient.Reason.choices)

        def labelled(counts: dict[str, int]) -> list[tuple[str, int]]:
            return [(labels.get(reason, reason), count) for reason, count in sorted(counts.items(), key=lambda i: -i[1])]

        return render_to_string("admin/engage/campaignrun/summary.html", {
            "run": obj, "summary": summary, "left_out": labelled(summary.left_out),
            "skipped_at_send": labelled(summary.skipped_at_send), "fallbacks": labelled(summary.fallbacks),
            "recipients_url": _recipients_url(run__exact=obj.pk),
        })

    @admin.display(description=gettext_lazy("Skip and fallback reasons"))
    def reasons(self, obj: CampaignRun) -> str:
        rows = (
            CampaignRecipient.objects.filter(run_id=obj.pk)
            .exclude(reason="")
            .values("reason")
            .annotate(count=Count("pk"))
            .order_by("-count")
        )
        labels = dict(CampaignRecipient.Reason.choices)
        items = format_html_join(
            "",
            '<li><a href="{}">{}</a>: {}</li>',
            ((_recipients_url(run__exact=obj.pk, reason=row["reason"]), labels.get(row["reason"], row["reason"]), row["count"]) for row in rows),
        )
        return format_html("<ul>{}</ul>", items) if items else _("None.")

    @admin.display(description=gettext_lazy("Recipients"))
    def recipients_link(self, obj: CampaignRun) -> str:
        return format_html(
            '<a href="{}">{}</a> · <a href="{}">{}</a> · <a href="{}">{}</a>',
            _recipients_url(run__exact=obj.pk), _("All recipients of this run"),
            _recipients_url(run__exact=obj.pk, status__exact="failed"), _("failed"),
            _recipients_url(run__exact=obj.pk, status__exact="skipped"), _("skipped"),
        )

    @admin.action(description=gettext_lazy("Cancel"), permissions=["change"])
    def cancel(self, request, queryset) -> None:
        cancelled = 0
        for run in queryset:
            try:
                campaign_run_cancel(run=run)
                cancelled += 1
            except ValidationError as error:
                self.message_user(request, _("Run #%(run)d: %(errors)s") % {"run": run.pk, "errors": "; ".join(error.messages)},
                                  messages.WARNING)
        self.message_user(request, ngettext("%d run cancelled.", "%d runs cancelled.", cancelled) % cancelled,
                          messages.SUCCESS if cancelled else messages.INFO)

    @admin.action(description=gettext_lazy("Retry failed recipients"), permissions=["change"])
    def retry_failed(self, request, queryset) -> None:
        total = sum(campaign_run_retry_failed(run=run) for run in queryset)
        self.message_user(request, _("%d failed recipient(s) queued again; sent ones were left alone.") % total, messages.SUCCESS)


def run_progress(run: CampaignRun) -> dict:
    """A run's progress bar and funnel: counts, the share done, whether it is finished."""
    run.refresh_from_db(fields=["status", "sent", "failed", "skipped", "rendered", "total_eligible", "finished_at"])
    done = run.sent + run.failed + run.skipped + (run.rendered if run.is_dry_run else 0)
    total = max(run.total_eligible or 0, done)
    funnel = campaign_funnel(campaign=run.campaign) if not run.is_dry_run else {}
    return {
        "status": run.status,
        "status_label": run.get_status_display(),
        "is_finished": run.status not in (CampaignRun.Status.QUEUED, CampaignRun.Status.RUNNING),
        "is_dry_run": run.is_dry_run,
        "sent": run.sent, "failed": run.failed, "skipped": run.skipped, "rendered": run.rendered,
        "total": total,
        "percent": 100 if total == 0 and run.finished_at else (done * 100 // total if total else 0),
        "funnel": [{"step": step, "count": funnel.get(step) or 0} for step in FUNNEL_STEPS] if funnel else [],
    }


@admin.register(CampaignRecipient)
class CampaignRecipientAdmin(TenantScopedAdmin):
    list_display = ["id", "customer", "run", "status", "reason", "message", "note", "created_at"]
    list_filter = ["status", "reason"]
    search_fields = ["customer__contact__name", "customer__contact__email", "=correlation_id"]
    list_select_related = ["customer__contact", "run__campaign", "message"]
    raw_id_fields = ["customer", "run", "message", "job", "template_version"]
    ordering = ["-id"]
    readonly_fields = [
        "company", "campaign", "run", "customer", "cycle_started_at", "status", "reason", "body", "message", "job",
        "template_version", "correlation_id", "note", "problem", "created_at", "updated_at",
    ]
    fields = readonly_fields

    def has_add_permission(self, request) -> bool:
        return False

    def get_queryset(self, request):
        # The body can be long: not needed by the list.
        return super().get_queryset(request).defer("body")

    @admin.display(description=gettext_lazy("note"))
    def note(self, obj: CampaignRecipient) -> str:
        """What happened that is not a failure: a fallback sent, a skip's detail."""
        return "" if obj.status == CampaignRecipient.Status.FAILED else obj.error

    @admin.display(description=gettext_lazy("error"))
    def problem(self, obj: CampaignRecipient) -> str:
        return obj.error if obj.status == CampaignRecipient.Status.FAILED else ""


@admin.register(ShortLink)
class ShortLinkAdmin(TenantScopedAdmin):
    """The short links SMS and WhatsApp reminders carried: where each leads, for which message, until when."""

    company_field = "company"
    list_display = ["code", "company", "correlation_id", "expires_at", "created_at"]
    list_filter = ["company"]
    list_select_related = ["company"]
    search_fields = ["=code", "=correlation_id"]
    ordering = ["-created_at", "-id"]
    readonly_fields = ["company", "code", "target_url", "correlation_id", "expires_at", "created_at"]

    def has_add_permission(self, request):
        return False  # made by the sends

    def has_change_permission(self, request, obj=None):
        return False
