"""Burnout alerts in the console (Workers → Burnout alerts, Burnout thresholds).

The default list shows unresolved alerts grouped by zone and service category (a summary of teams above the rows,
ordered by zone, never ranked by hours); one alert's page shows its numbers and the three steps a manager takes
(acknowledge, record an action, resolve with the outcome), each a POST that calls a service. Opening an alert's page
is recorded in the worker's timeline. The worker's own page (crm's worker admin, with coaching's punctuality and
coaching panels) gets a burnout panel here: the unresolved alert, its level and numbers, and the link to handle it.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from coaching.admin import WorkerAdmin as CoachingWorkerAdmin  # registered on import; replaced below
from crm.models import Worker
from crm.tenancy.admin import TenantScopedAdmin
from reports.burnout.models import BurnoutAlert, BurnoutSettings
from reports.burnout.selectors import alerts_by_segment, unresolved_alert_of
from reports.burnout.services import (
    burnout_alert_acknowledge,
    burnout_alert_act,
    burnout_alert_resolve,
    burnout_alert_viewed,
)
from shokti.admin import action_form_response, console_text, validation_error_text


class ActForm(forms.Form):
    # not "action": the admin posts the action's own name under that key
    kind = forms.ChoiceField(choices=BurnoutAlert.Action.choices, label=_("What was done"))
    note = forms.CharField(label=_("Note"), max_length=1000, widget=forms.Textarea(attrs={"rows": 3}))


class ResolveForm(forms.Form):
    outcome = forms.ChoiceField(label=_("Outcome"), choices=BurnoutAlert.Outcome.choices)
    note = forms.CharField(label=_("Note"), max_length=1000, required=False,
                           widget=forms.Textarea(attrs={"rows": 3}))


@admin.register(BurnoutSettings)
class BurnoutSettingsAdmin(TenantScopedAdmin):
    list_display = ["company", "watch_hours_7d", "alert_hours_7d", "max_days_without_break", "late_night_hour",
                    "back_to_back_gap_minutes", "alert_at_signals", "is_enabled", "updated_at"]
    list_select_related = ["company"]
    search_fields = ["company__name"]
    autocomplete_fields = ["company"]
    fieldsets = [
        (None, {"fields": ["company", "is_enabled"]}),
        (_("Hours and days off (last 7 local days)"), {"fields": ["watch_hours_7d", "alert_hours_7d",
                                                               "max_days_without_break"]}),
        (_("Late nights and back-to-back jobs (last 7 local days)"), {"fields": [
            "late_night_hour", "late_night_jobs", "back_to_back_gap_minutes", "back_to_back_pairs"]}),
        (_("Trends (last 14 days against the 14 before)"), {"fields": ["trend_min_count", "rating_drop",
                                                                    "late_grace_minutes"]}),
        (_("Level"), {"fields": ["alert_at_signals"]}),
    ]


class UnresolvedFilter(admin.SimpleListFilter):
    """Unresolved alerts by default; resolved ones (with their outcomes) one click away."""

    title = _("state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("unresolved", _("Unresolved")), ("resolved", _("Resolved")), ("all", _("All"))]

    def choices(self, changelist):
        value = self.value() or "unresolved"
        for lookup, title in self.lookup_choices:
            yield {"selected": value == lookup, "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                   "display": title}

    def queryset(self, request, queryset):
        value = self.value() or "unresolved"
        if value == "unresolved":
            return queryset.exclude(status=BurnoutAlert.Status.RESOLVED)
        if value == "resolved":
            return queryset.filter(status=BurnoutAlert.Status.RESOLVED)
        return queryset


@admin.register(BurnoutAlert)
class BurnoutAlertAdmin(TenantScopedAdmin):
    change_list_template = "admin/reports/burnoutalert/change_list.html"
    change_form_template = "admin/reports/burnoutalert/change_form.html"
    list_display = ["zone", "service_category", "worker", "level", "status", "in_numbers", "opened_at", "cleared_at"]
    list_display_links = ["worker"]
    list_filter = [UnresolvedFilter, "level", "status", "zone", "service_category", "company"]
    list_select_related = ["worker__contact", "company"]
    search_fields = ["worker__contact__name", "worker__contact__phone", "zone", "service_category"]
    autocomplete_fields = ["worker"]
    ordering = ["zone", "service_category", "-opened_at"]
    sortable_by = ["zone", "service_category", "level", "status", "opened_at"]
    actions = ["acknowledge", "act", "resolve"]
    # the stored summary and signals' texts are English (webhook, timeline): the page says them in the reader's
    # language instead (the panel lists each signal)
    exclude = ["summary", "signals"]
    readonly_fields = [("in_numbers" if field.name == "summary" else field.name) for field in BurnoutAlert._meta.fields
                       if field.name not in ("id", "signals")]

    @admin.display(description=_("In numbers"))
    def in_numbers(self, obj: BurnoutAlert) -> str:
        return obj.explanation

    def has_add_permission(self, request):
        return False  # the evaluation opens alerts

    def has_delete_permission(self, request, obj=None):
        return False  # resolved with an outcome, kept

    def get_urls(self):
        return [
            path("<path:object_id>/step/<str:step>/", self.admin_site.admin_view(self.step_view),
                 name="reports_burnoutalert_step"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        segments = alerts_by_segment(alerts=self.get_queryset(request))
        changelist = reverse("admin:reports_burnoutalert_changelist")
        for row in segments:
            row["url"] = f"{changelist}?{urlencode({'zone': row['zone'], 'service_category': row['service_category']})}"
        return super().changelist_view(request, {**(extra_context or {}), "segments": segments})

    def change_view(self, request, object_id, form_url="", extra_context=None):
        alert = self.get_object(request, unquote(object_id))
        if alert is None:
            raise Http404("No burnout alert with this id.")
        if not self.has_view_or_change_permission(request, alert):
            raise PermissionDenied
        if request.method == "GET":
            burnout_alert_viewed(alert=alert, actor=request.user)
        context = {
            **(extra_context or {}), "show_save": False, "show_save_and_continue": False,
            "show_save_and_add_another": False, "show_delete_link": False,
            "can_handle": self.has_change_permission(request, alert) and alert.is_open,
            "actions_choices": BurnoutAlert.Action.choices, "outcome_choices": BurnoutAlert.Outcome.choices,
        }
        return super().change_view(request, object_id, form_url, context)

    def step_view(self, request, object_id, step):
        """POST one lifecycle step (acknowledge, act, resolve) of an alert of the user's companies."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        alert = self.get_object(request, unquote(object_id))
        if alert is None or not self.has_change_permission(request, alert):
            raise Http404("No burnout alert with this id.")
        back = HttpResponseRedirect(reverse("admin:reports_burnoutalert_change", args=[alert.pk]))
        try:
            if step == "acknowledge":
                done = burnout_alert_acknowledge(alert=alert, actor=request.user)
            elif step == "act":
                done = burnout_alert_act(alert=alert, actor=request.user, action=request.POST.get("action", ""),
                                         note=request.POST.get("note", ""))
            elif step == "resolve":
                done = burnout_alert_resolve(alert=alert, actor=request.user, outcome=request.POST.get("outcome", ""),
                                             note=request.POST.get("note", ""))
            else:
                raise Http404("No such step.")
        except ValidationError as error:
            self.message_user(request, validation_error_text(error), messages.ERROR)
            return back
        except PermissionDenied as error:
            self.message_user(request, console_text(error), messages.ERROR)
            return back
        if done:
            alert.refresh_from_db()
            self.message_user(request, gettext("Alert %(status)s.") % {"status": alert.get_status_display().lower()},
                              messages.SUCCESS)
        else:
            self.message_user(request, gettext("Nothing changed: the alert is not in a state for this step."),
                              messages.WARNING)
        return back

    @admin.action(description=_("Acknowledge the selected alerts"), permissions=["change"])
    def acknowledge(self, request, queryset):
        done = 0
        for alert in queryset.select_related("company"):
            try:
                done += burnout_alert_acknowledge(alert=alert, actor=request.user)
            except PermissionDenied as error:
                self.message_user(request, f"{alert}: {console_text(error)}", messages.ERROR)
        self.message_user(request, gettext("%(done)s alert(s) acknowledged.") % {"done": done})

    def _bulk(self, request, queryset, *, form_class, action_name: str, title: str, step):
        """An action that asks for its input first (the note, the outcome), then calls `step` per alert."""
        alerts = list(queryset.select_related("company", "worker__contact"))
        form = form_class(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            done = 0
            for alert in alerts:
                try:
                    done += bool(step(alert, form.cleaned_data))
                except (PermissionDenied, ValidationError) as error:
                    text = validation_error_text(error) if isinstance(error, ValidationError) else console_text(error)
                    self.message_user(request, f"{alert}: {text}", messages.ERROR)
            self.message_user(request, gettext("%(title)s: %(done)s of %(total)s alert(s).") % {
                "title": title, "done": done, "total": len(alerts)})
            return None
        return action_form_response(self, request, template="admin/reports/burnoutalert/step.html", title=title,
                                    form=form, alerts=alerts, action_name=action_name)

    @admin.action(description=_("Record an action on the selected alerts (with a note)"), permissions=["change"])
    def act(self, request, queryset):
        return self._bulk(request, queryset, form_class=ActForm, action_name="act", title=gettext("Record an action"),
                          step=lambda alert, data: burnout_alert_act(alert=alert, actor=request.user,
                                                                     action=data["kind"], note=data["note"]))

    @admin.action(description=_("Resolve the selected alerts (with the outcome)"), permissions=["change"])
    def resolve(self, request, queryset):
        return self._bulk(request, queryset, form_class=ResolveForm, action_name="resolve", title=gettext("Resolve"),
                          step=lambda alert, data: burnout_alert_resolve(alert=alert, actor=request.user,
                                                                         outcome=data["outcome"], note=data["note"]))


admin.site.unregister(Worker)


@admin.register(Worker)
class WorkerAdmin(CoachingWorkerAdmin):
    """The worker's page with their unresolved burnout alert on top of coaching's panels (people who may view
    burnout alerts only; showing it is recorded in the worker's timeline like opening the alert)."""

    change_form_template = "admin/reports/worker/change_form.html"

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.pk and request.user.has_perm("reports.view_burnoutalert"):
            alert = unresolved_alert_of(worker=obj)
            if alert is not None and request.method == "GET":
                burnout_alert_viewed(alert=alert, actor=request.user, page="worker")
            context["burnout_alert"] = alert
        return super().render_change_form(request, context, add, change, form_url, obj)
