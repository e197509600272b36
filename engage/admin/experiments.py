"""Admin of experiments (imported by engage/admin/__init__.py): setup with its variants inline, start / stop /
refresh actions, and on the page the plan (before launch) or the live results: the verdict in one sentence,
the sample-ratio warning, a table per variant and a chart of the uplift and its interval over time (inline SVG).

A running or stopped experiment shows every field read-only and its variants cannot be added, changed or
deleted (the model's clean and the services refuse the same edits); new weights go through a new phase
(engage.experiments.services.experiment_weights_change).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.tenancy.admin import TenantScopedAdmin, TenantScopedInline
from engage.experiments.models import Experiment, ExperimentSettings, ExperimentVariant
from engage.experiments.selectors import experiment_plan, experiment_results
from engage.experiments.services import (
    experiment_outcomes_refresh_queue,
    experiment_phase_current,
    experiment_start,
    experiment_stop,
    experiment_weights_change,
)
from shokti.admin import ConsoleModelForm, validation_error_text


class ExperimentVariantInline(TenantScopedInline):
    form = ConsoleModelForm
    model = ExperimentVariant
    company_field = "experiment__company"
    extra = 0
    fields = ["name", "kind", "weight", "template_version", "settings"]
    raw_id_fields = ["template_version"]

    def _is_frozen(self, obj: Experiment | None) -> bool:
        return obj is not None and obj.status != Experiment.Status.DRAFT

    def has_add_permission(self, request, obj=None) -> bool:
        return not self._is_frozen(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return not self._is_frozen(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return not self._is_frozen(obj) and super().has_delete_permission(request, obj)


def uplift_chart_svg(*, timeline: list[dict[str, Any]], variant_id: int, scale: float = 100.0) -> str:
    """The cumulative uplift of one variant a day (line) inside its always-valid interval (band), zero dashed."""
    points = [(point["day"], point[str(variant_id)]) for point in timeline if point.get(str(variant_id))]
    points = [(day, values) for day, values in points if None not in (values["low"], values["high"], values["uplift"])]
    if not points:
        return ""
    width, height, pad = 560, 180, 28
    lows = [values["low"] * scale for _, values in points]
    highs = [values["high"] * scale for _, values in points]
    top, bottom = max(max(highs), 0.0), min(min(lows), 0.0)
    span = (top - bottom) or 1.0

    def x(index: int) -> float:
        return pad + (width - 2 * pad) * (index / max(len(points) - 1, 1))

    def y(value: float) -> float:
        return pad + (height - 2 * pad) * (top - value) / span

    band = [f"{x(i):.1f},{y(high):.1f}" for i, high in enumerate(highs)]
    band += [f"{x(i):.1f},{y(low):.1f}" for i, low in reversed(list(enumerate(lows)))]
    line = " ".join(f"{x(i):.1f},{y(values['uplift'] * scale):.1f}" for i, (_, values) in enumerate(points))
    zero = y(0.0)
    return format_html(
        '<svg class="experiment-uplift" role="img" aria-label="Uplift and its 95% interval over time" width="{w}"'
        ' height="{h}" viewBox="0 0 {w} {h}" xmlns="http://www.w3.org/2000/svg">'
        '<polygon points="{band}" fill="#93c5fd" fill-opacity="0.45"/>'
        '<line x1="{pad}" x2="{right}" y1="{zero}" y2="{zero}" stroke="#6b7280" stroke-dasharray="4 3"/>'
        '<polyline points="{line}" fill="none" stroke="#1d4ed8" stroke-width="2"/>'
        '<text x="{pad}" y="14" font-size="11" fill="currentColor">{top}</text>'
        '<text x="{pad}" y="{bottom_y}" font-size="11" fill="currentColor">{bottom}</text>'
        '<text x="{pad}" y="{label_y}" font-size="11" fill="currentColor">{first}</text>'
        '<text x="{right}" y="{label_y}" font-size="11" fill="currentColor" text-anchor="end">{last}</text>'
        "</svg>",
        w=width, h=height, band=" ".join(band), pad=pad, right=width - pad, zero=f"{zero:.1f}", line=line,
        top=f"{top:+.1f}", bottom=f"{bottom:+.1f}", bottom_y=height - pad + 12, label_y=height - 4, first=points[0][0], last=points[-1][0],
    )


@admin.register(Experiment)
class ExperimentAdmin(TenantScopedAdmin):
    list_display = ["name", "company", "applies_to", "campaign", "primary_metric", "status", "started_at", "stopped_at"]
    list_filter = ["status", "applies_to", "company"]
    search_fields = ["name"]
    list_select_related = ["company", "campaign"]
    raw_id_fields = ["campaign"]
    ordering = ["company", "-created_at"]
    inlines = [ExperimentVariantInline]
    form = ConsoleModelForm
    actions = ["start", "stop", "refresh_outcomes"]
    fields = [
        "company", "name", "hypothesis", "applies_to", "campaign", "unit", "primary_metric", "guardrails",
        "use_cuped", "tuning_units", "status", "started_at", "stopped_at", "outcomes_refreshed_at", "plan",
        "results",
    ]
    setup_readonly = ["status", "started_at", "stopped_at", "outcomes_refreshed_at", "plan", "results"]

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/weights/", view(self.weights_view), name="engage_experiment_weights"),
            *super().get_urls(),
        ]

    def weights_view(self, request, object_id: str):
        """New weights for a running experiment: a new phase (engage.experiments.services.experiment_weights_change)."""
        experiment = self.get_object(request, unquote(object_id))
        if experiment is None:
            raise Http404
        if not self.has_change_permission(request, experiment):
            raise PermissionDenied
        variants = list(experiment.variants.order_by("pk"))
        error = ""
        if request.method == "POST":
            try:
                weights = {variant.pk: int(request.POST.get(f"weight-{variant.pk}", "")) for variant in variants}
                phase = experiment_weights_change(experiment=experiment, weights=weights)
            except ValueError:
                error = _("Each weight is a whole number.")
            except ValidationError as exception:
                error = validation_error_text(exception)
            else:
                self.message_user(request, _("Phase %(number)d started with the new weights.") % {"number": phase.number}, messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:engage_experiment_change", args=[experiment.pk]))
        context = {
            **self.admin_site.each_context(request), "title": f"New weights: {experiment}", "experiment": experiment,
            "variants": variants, "phase": experiment_phase_current(experiment=experiment), "error": error,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/engage/experiment/weights.html", context, status=400 if error else 200)

    def get_readonly_fields(self, request, obj=None) -> list[str]:
        if obj is not None and obj.status != Experiment.Status.DRAFT:
            return list(self.fields)  # running or stopped: nothing to edit
        return list(self.setup_readonly)

    @admin.display(description=gettext_lazy("Before launch: minimum detectable effect"))
    def plan(self, obj: Experiment) -> str:
        if obj.pk is None:
            return "-"
        plan = experiment_plan(experiment=obj)
        mde = plan["minimum_detectable_effect"]
        cells = format_html_join(
            ", ", _("{} days: {}"),
            ((days, "-" if value is None else _("±%(value).1f per 100") % {"value": value * 100}) for days, value in mde.items()),
        )
        days = plan["days_to_target"]
        return format_html(
            _("{} units a day (control {}%), baseline {} per 100{}. Detectable after {}. {}"),
            plan["daily_units"], round(plan["control_share"] * 100), round(plan["baseline"] * 100, 1),
            "" if plan["is_baseline_measured"] else _(" (assumed: no data yet)"), cells,
            _("A %(effect).1f-point uplift needs about %(days)s days.") % {"effect": plan["target_effect"] * 100, "days": days}
            if days else _("Not enough volume to detect a %(effect)s%% uplift within a year.") % {"effect": 10},
        )

    @admin.display(description=gettext_lazy("Results"))
    def results(self, obj: Experiment) -> str:
        if obj.pk is None or obj.status == Experiment.Status.DRAFT:
            return _("Not started.")
        results = experiment_results(experiment=obj)
        srm = results["srm"] or {}
        warning = ""
        if results["is_hidden"]:
            warning = format_html('<p class="experiment-srm-warning" style="color:#b91c1c"><strong>{}</strong></p>',
                                  results["verdict"])
        rows = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((v["name"], v["weight"], v["units"], v["measured"], "-" if v["rate"] is None else f"{v['rate'] * 100:.2f}")
             for v in results["variants"]),
        )
        table = format_html(
            '<table class="experiment-variants"><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>{}</table>',
            _("Variant"), _("Weight"), _("Units"), _("Measured"), _("Rate per 100"), rows,
        )
        verdict = "" if results["is_hidden"] else format_html(
            '<p class="experiment-verdict"><strong>{}</strong></p>', results["verdict"]
        )
        charts = format_html_join(
            "", "<p>{}</p>{}",
            ((c["variant"], uplift_chart_svg(timeline=results["timeline"], variant_id=c["variant_id"]))
             for c in results["comparisons"]),
        )
        weights_link = format_html(
            ' <a href="{}">{}</a>', reverse("admin:engage_experiment_weights", args=[obj.pk]), _("Change the weights (a new phase)")
        ) if obj.status == Experiment.Status.RUNNING else ""
        return format_html(
            "{}{}{}<p>{}{}</p>{}",
            warning, verdict, table,
            _("Phase %(phase)s; sample-ratio check p = %(p)s; outcomes as of %(when)s.") % {
                "phase": results["phase"], "p": srm.get("p_value", "-"),
                "when": obj.outcomes_refreshed_at or _("never (refresh the outcomes)"),
            },
            weights_link, charts,
        )

    def _each(self, request, queryset, operation, done: str) -> None:
        count = 0
        for experiment in queryset:
            try:
                operation(experiment=experiment)
                count += 1
            except ValidationError as error:
                self.message_user(request, f"{experiment}: {validation_error_text(error)}", messages.ERROR)
        if count:
            self.message_user(request, done % {"count": count}, messages.SUCCESS)

    @admin.action(description=gettext_lazy("Start the selected experiments"), permissions=["change"])
    def start(self, request, queryset) -> None:
        self._each(request, queryset, experiment_start, _("%(count)d experiment(s) started."))

    @admin.action(description=gettext_lazy("Stop the selected experiments"), permissions=["change"])
    def stop(self, request, queryset) -> None:
        self._each(request, queryset, experiment_stop, _("%(count)d experiment(s) stopped."))

    @admin.action(description=gettext_lazy("Refresh the outcomes (a background job)"), permissions=["change"])
    def refresh_outcomes(self, request, queryset) -> None:
        self._each(request, queryset, experiment_outcomes_refresh_queue, _("%(count)d experiment(s) queued for an outcome refresh."))


@admin.register(ExperimentSettings)
class ExperimentSettingsAdmin(TenantScopedAdmin):
    list_display = ["company", "is_holdout_enabled", "holdout_percent"]
    list_select_related = ["company"]
    fields = ["company", "is_holdout_enabled", "holdout_percent"]
    ordering = ["company"]
