"""The admin base of every model: cheap counts, date hierarchies without scans, https URL fields.

Models of a company use `crm.tenancy.admin.TenantScopedAdmin`, which builds on `BaseAdmin` here and
adds tenant scoping. What this kernel gives every admin:
- Counts never scan a big table: `EstimatedCountPaginator` counts exactly up to
  `settings.ADMIN_EXACT_COUNT_LIMIT` rows and estimates past it; facet counts are off; a
  `date_hierarchy` lists years and months from the MIN/MAX of its field (`RangeDatesQuerySet`).
- A missing row's change, delete or history URL is a 404, not a redirect.
- `action_form_response()` renders the intermediate page of an action that asks for input.

The kernel imports no app of the project. Its base is django-unfold's ModelAdmin (the console's theme);
inlines use `unfold.admin.TabularInline`/`StackedInline`.
"""


from __future__ import annotations

import datetime
import functools
import json
import logging
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import DatabaseError, connections, models, transaction
from django.db.models import Max, Min, QuerySet
from django.http import Http404
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import get_language, gettext
from unfold import admin as unfold_admin
from unfold import utils as unfold_utils
from unfold.admin import ModelAdmin as UnfoldModelAdmin
from unfold.templatetags import unfold_list

logger = logging.getLogger(__name__)

class EstimatedCountPaginator(Paginator):
    """A paginator that never runs an unbounded `SELECT COUNT(*)`.

    Exact up to `ADMIN_EXACT_COUNT_LIMIT` rows (a count over `LIMIT n + 1`). Past it, on PostgreSQL:
    the planner's `pg_class.reltuples` for an unfiltered table; for a filtered list, the planner's
    row estimate (EXPLAIN) when it is far past the limit (an exact figure there helps nobody),
    else an exact count bounded by `ADMIN_COUNT_TIMEOUT_MS` (`SET LOCAL statement_timeout`; 0 skips
    it), falling back to the estimate when that runs out of time.
    """

    # Past this many times the exact limit, the planner's estimate is shown as it is.
    ESTIMATE_ONLY_FACTOR = 10

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not isinstance(queryset, QuerySet):
            return super().count
        limit = settings.ADMIN_EXACT_COUNT_LIMIT
        queryset = queryset.order_by()
        bounded = queryset[: limit + 1].count()
        if bounded <= limit or connections[queryset.db].vendor != "postgresql":
            return bounded
        estimate = None
        if not queryset.query.where and not queryset.query.distinct:
            estimate = _table_estimate(queryset)
        if estimate is None:
            estimate = _explain_estimate(queryset)
            if estimate is None or estimate <= limit * self.ESTIMATE_ONLY_FACTOR:
                timeout_ms = settings.ADMIN_COUNT_TIMEOUT_MS
                exact = _timeboxed_count(queryset, timeout_ms=timeout_ms) if timeout_ms > 0 else None
                estimate = exact if exact is not None else estimate
        # Whatever the estimate says, there are more rows than the exact limit.
        return max(estimate or 0, bounded)


def _table_estimate(queryset: QuerySet) -> int | None:
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [queryset.model._meta.db_table]
        )
        row = cursor.fetchone()
    # -1 (never analysed) or 0 (stale): not an estimate worth showing.
    return int(row[0]) if row and row[0] and row[0] > 0 else None


def _timeboxed_count(queryset: QuerySet, *, timeout_ms: int) -> int | None:
    connection = connections[queryset.db]
    try:
        with transaction.atomic(using=queryset.db):
            with connection.cursor() as cursor:
                cursor.execute("SHOW statement_timeout")
                previous = cursor.fetchone()[0]
                cursor.execute("SELECT set_config('statement_timeout', %s, true)", [str(int(timeout_ms))])
            count = queryset.count()
            with connection.cursor() as cursor:
                # SET LOCAL outlives a released savepoint: put the caller's timeout back.
                cursor.execute("SELECT set_config('statement_timeout', %s, true)", [previous])
            return count
    except DatabaseError:
        # Cancelled by the timeout; the savepoint rollback also undid the SET LOCAL.
        return None


def _explain_estimate(queryset: QuerySet) -> int | None:
    sql, params = queryset.query.sql_with_params()
    try:
        with connections[queryset.db].cursor() as cursor:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
            plan = cursor.fetchone()[0]
    except DatabaseError:
        logger.warning("EXPLAIN estimate failed for %s", queryset.model._meta.label, exc_info=True)
        return None
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


class RangeDatesQuerySet(QuerySet):
    """`datetimes()`/`dates()` by year, month or day from MIN/MAX (index-backed) instead of a DISTINCT scan.

    The admin's date hierarchy asks for the distinct years (or months, or days of a month) of the
    list, which reads every row; this lists every period between the first and the last row
    instead, so a period without rows may show (it opens an empty list). Days come from the range
    only within `MAX_RANGE_DAYS` (a month drilled into); a longer span still asks the rows.
    """

    MAX_RANGE_DAYS = 62

    def datetimes(self, field_name, kind, order="ASC", tzinfo=None):
        if kind == "day":
            zone = tzinfo or timezone.get_current_timezone()
            days = self._days(field_name, lambda value: timezone.localtime(value, zone).date())
            if days is None:
                return super().datetimes(field_name, kind, order, tzinfo)
            moments = [timezone.make_aware(datetime.datetime(day.year, day.month, day.day), zone) for day in days]
            return moments[::-1] if order == "DESC" else moments
        if kind not in ("year", "month"):
            return super().datetimes(field_name, kind, order, tzinfo)
        zone = tzinfo or timezone.get_current_timezone()
        return self._periods(field_name, kind, order, lambda value: timezone.localtime(value, zone),
                             lambda year, month: timezone.make_aware(datetime.datetime(year, month, 1), zone))

    def dates(self, field_name, kind, order="ASC"):
        if kind not in ("year", "month"):
            return super().dates(field_name, kind, order)
        return self._periods(field_name, kind, order, lambda value: value, datetime.date)

    def _days(self, field_name, to_local_date) -> list[datetime.date] | None:
        bounds = self.aggregate(first=Min(field_name), last=Max(field_name))
        if bounds["first"] is None:
            return []
        first, last = to_local_date(bounds["first"]), to_local_date(bounds["last"])
        if (last - first).days > self.MAX_RANGE_DAYS:
            return None
        return [first + datetime.timedelta(days=offset) for offset in range((last - first).days + 1)]

    def _periods(self, field_name, kind, order, to_local, make):
        bounds = self.aggregate(first=Min(field_name), last=Max(field_name))
        if bounds["first"] is None:
            return []
        first, last = to_local(bounds["first"]), to_local(bounds["last"])
        step_months = 12 if kind == "year" else 1
        index = first.year * 12 + (0 if kind == "year" else first.month - 1)
        end = last.year * 12 + last.month - 1
        periods = []
        while index <= end:
            periods.append(make(index // 12, index % 12 + 1))
            index += step_months
        return periods[::-1] if order == "DESC" else periods


@functools.cache
def _range_dates_class(queryset_class: type[QuerySet]) -> type[QuerySet]:
    return type(f"RangeDates{queryset_class.__name__}", (RangeDatesQuerySet, queryset_class), {})


def https_formfield(db_field: models.Field, **kwargs: Any):
    """A ModelForm's `Meta.formfield_callback`: URL fields read "example.com" as https:// (Django 6's default)."""
    if isinstance(db_field, models.URLField):
        kwargs.setdefault("assume_scheme", "https")
    return db_field.formfield(**kwargs)


class BaseAdmin(UnfoldModelAdmin):
    """The project's ModelAdmin: the console's theme (django-unfold), no unbounded counts, no facets,
    range-based date hierarchy, https URLs."""

    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    show_full_result_count = False
    # Half of Django's 100: a page a person reads (and a phone scrolls), and half the rendering.
    list_per_page = 50
    show_facets = admin.ShowFacets.NEVER
    paginator = EstimatedCountPaginator

    @admin.display(description=UnfoldModelAdmin.action_checkbox.short_description)
    def action_checkbox(self, obj) -> str:
        # unfold renders its checkbox widget's template for every row: the same HTML but the pk, built once.
        before, after = _row_checkbox_html(get_language())
        return format_html("{}{}{}", before, obj.pk, after)

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if self.date_hierarchy and not isinstance(queryset, RangeDatesQuerySet):
            # The date hierarchy lists years and months from the range, not from every row.
            queryset.__class__ = _range_dates_class(type(queryset))
        return queryset

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        # A foreign row must look exactly like a missing one, and neither is a redirect.
        raise Http404(f"No {opts.verbose_name} with this id.")


def action_form_response(model_admin, request, *, template: str, title: str, form, **context) -> TemplateResponse:
    """The intermediate page of an admin action that asks for input before it runs.

    The template posts back `action`, the selected ids (`action_checkbox_name`), `select_across`
    and an `apply` button; the action runs when `"apply" in request.POST` and the form is valid.
    """
    return TemplateResponse(
        request,
        template,
        {
            **model_admin.admin_site.each_context(request),
            "title": title,
            "opts": model_admin.opts,
            "form": form,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "select_across": request.POST.get("select_across", "0"),
            **context,
        },
    )


def console_text(message, params=None) -> str:
    """A service's English message in the staff's language, looked up at display time.

    Services shared with the API raise plain English strings marked with `gettext_noop` (the API's replies
    stay English whatever the caller's language); the console translates them here. Text with no entry in
    the catalogue is shown as it is."""
    text = gettext(str(message))
    return text % params if params else text


def validation_error_text(error) -> str:
    """A Django ValidationError as one line for an admin message, each message in the staff's language."""
    if hasattr(error, "error_dict"):
        errors = [item for items in error.error_dict.values() for item in items]
    else:
        errors = error.error_list
    return "; ".join(console_text(item.message, item.params) for item in errors)


def console_errors(error: ValidationError) -> ValidationError:
    """`error` with each message in the staff's language (see `console_text`), codes kept."""
    def translated(items):
        return [ValidationError(console_text(item.message, item.params), code=item.code) for item in items]

    if hasattr(error, "error_dict"):
        return ValidationError({name: translated(items) for name, items in error.error_dict.items()})
    return ValidationError(translated(error.error_list))


class ConsoleModelForm(forms.ModelForm):
    """A model form showing its model's clean() errors in the staff's language: models shared with the API
    raise gettext_noop English with params (the API's replies stay English)."""

    def _update_errors(self, errors):
        super()._update_errors(console_errors(errors))


def _retheme(model, admin_class) -> None:
    """Register a third-party model again with its own admin class on the console's base (its filters,
    forms and actions unchanged)."""
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, type(admin_class.__name__, (admin_class, UnfoldModelAdmin), {"__module__": __name__}))


def _retheme_third_party() -> None:
    from django.contrib.auth.admin import GroupAdmin
    from django.contrib.auth.models import Group
    from django_celery_beat import admin as beat_admin
    from django_celery_beat import models as beat_models

    _retheme(Group, GroupAdmin)
    _retheme(beat_models.PeriodicTask, beat_admin.PeriodicTaskAdmin)
    for model in (beat_models.IntervalSchedule, beat_models.CrontabSchedule, beat_models.SolarSchedule,
                  beat_models.ClockedSchedule):
        if admin.site.is_registered(model):
            _retheme(model, type(admin.site._registry[model]))


_retheme_third_party()


# --- Rendering a changelist: unfold's per-cell templates, built once ------------------------------------------
# A 100-row page of unfold's theme cost twice the CPU of Django's own: each row rebuilt every column header,
# and every checkbox and yes/no cell rendered a template. The output is the same HTML.

_PK_MARKER = "__pk__"


@functools.lru_cache(maxsize=8)
def _row_checkbox_html(language: str | None) -> tuple[str, str]:
    """unfold's row checkbox split around its value (its aria-label is translated: one pair per language)."""
    html = unfold_admin.checkbox.render(ACTION_CHECKBOX_NAME, _PK_MARKER)
    before, after = html.split(_PK_MARKER)
    return mark_safe(before), mark_safe(after)


def _boolean_icon_cached(original):
    @functools.lru_cache(maxsize=32)
    def icon(state: bool | None, language: str | None) -> str:
        return original(state)

    @functools.wraps(original)
    def boolean_icon(value) -> str:
        # The template tells three states apart: unknown ("" or None), true and false.
        return icon(None if value is None or value == "" else bool(value), get_language())

    boolean_icon.uncached = original
    return boolean_icon


if not hasattr(unfold_utils._boolean_icon, "uncached"):
    unfold_utils._boolean_icon = _boolean_icon_cached(unfold_utils._boolean_icon)


def _result_headers_once_per_page(original):
    """unfold's `items_for_result()` rebuilds every column header (label, three sort URLs, the select-all
    checkbox widget) for each row, only to print the header's text in the cell's `data-label`: a third of a
    100-row page's render. The headers depend on the changelist alone: build them once per changelist."""

    @functools.wraps(original)
    def result_headers(cl):
        headers = cl.__dict__.get("_result_headers")
        if headers is None:
            headers = cl.__dict__["_result_headers"] = list(original(cl))
        return iter(headers)

    result_headers.uncached = original
    return result_headers


if not hasattr(unfold_list.result_headers, "uncached"):
    unfold_list.result_headers = _result_headers_once_per_page(unfold_list.result_headers)
