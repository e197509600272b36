"""The admin base of every model that belongs to a company: tenant scoping and cheap counts.

Subclass `TenantScopedAdmin` (and `TenantScopedInline` for inlines) for the admin of any model
that has a company, and set `company_field` to the lookup path from the model to `crm.Company`:

    @admin.register(Job)
    class JobAdmin(TenantScopedAdmin):
        company_field = "company"            # the default
        list_select_related = ["company"]

    class StageInline(TenantScopedInline):  # rows of a model reached through another one
        model = Stage
        company_field = "pipeline__company"

What the base does for you:
- Staff see only rows of the companies they reach through `crm.Membership`; superusers see all.
  A foreign row's change, delete or history URL is a 404, the same as a row that does not exist.
- Foreign-key and many-to-many choices, autocomplete results and related list filters are scoped
  the same way. The path of a related model is found by `company_path_for()`: the `company_field`
  of its registered `TenantScopedAdmin`, else a `company` foreign key, else whatever was given to
  `register_company_path()`. Models with no path (ContentType, Group) are left alone.
- A company choice lists only the user's companies, preselected when there is exactly one.
- On save, every chosen related row must belong to the same company as the row itself.
- `action_form_response()` renders the intermediate page of an action that asks for input.
- Counts never scan a big table: `EstimatedCountPaginator` counts exactly up to
  `settings.ADMIN_EXACT_COUNT_LIMIT` rows and estimates past it; facet counts are off; a
  `date_hierarchy` lists years and months from the MIN/MAX of its field (`RangeDatesQuerySet`).
"""

from __future__ import annotations

import datetime
import functools
import json
import logging
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import get_fields_from_path
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.core.paginator import Paginator
from django.db import DatabaseError, connections, models, transaction
from django.db.models import Max, Min, QuerySet
from django.http import Http404
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.functional import cached_property

from crm.models import Company
from crm.selectors import company_ids_for_user

logger = logging.getLogger(__name__)

# model -> lookup path to crm.Company ("" for Company itself).
_company_paths: dict[type[models.Model], str] = {Company: ""}


def register_company_path(model: type[models.Model], path: str) -> None:
    """Tell the admin how `model` reaches its company, for models without a TenantScopedAdmin."""
    _company_paths[model] = path


def company_path_for(model: type[models.Model]) -> str | None:
    """The lookup path from `model` to `crm.Company`, or None when the model has no tenant."""
    if model in _company_paths:
        return _company_paths[model]
    try:
        field = model._meta.get_field("company")
    except FieldDoesNotExist:
        return None
    if field.is_relation and field.related_model is Company:
        return "company"
    return None


def _is_multi_valued(model: type[models.Model], path: str) -> bool:
    try:
        fields = get_fields_from_path(model, path) if path else []
    except (FieldDoesNotExist, admin.utils.NotRelationField):
        return False
    return any(field.many_to_many or field.one_to_many for field in fields)


def scope_queryset(queryset: QuerySet, *, user: Any, path: str | None = None) -> QuerySet:
    """`queryset` narrowed to rows of the companies `user` reaches (all of them for a superuser)."""
    if path is None:
        path = company_path_for(queryset.model)
        if path is None:
            return queryset
    company_ids = company_ids_for_user(user=user)
    if company_ids is None:
        return queryset
    lookup = f"{path}__in" if path else "pk__in"
    if _is_multi_valued(queryset.model, path):
        # A join through a to-many relation would repeat rows: filter by a subquery instead.
        matching = queryset.model._base_manager.filter(**{lookup: company_ids}).values("pk")
        return queryset.filter(pk__in=matching)
    return queryset.filter(**{lookup: company_ids})


def company_of(obj: models.Model, path: str) -> Company | None:
    """Follow a single-valued `path` from `obj` to its company."""
    current: Any = obj
    for part in path.split("__") if path else []:
        current = getattr(current, part, None)
        if current is None:
            return None
    return current if isinstance(current, Company) else None


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
    """`datetimes()`/`dates()` by year or month from MIN/MAX (index-backed) instead of a DISTINCT scan.

    The admin's date hierarchy asks for the distinct years (or months) of the whole list, which
    reads every row; this lists every period between the first and the last row instead, so a
    period without rows may show (it opens an empty list). Days still come from the rows.
    """

    def datetimes(self, field_name, kind, order="ASC", tzinfo=None):
        if kind not in ("year", "month"):
            return super().datetimes(field_name, kind, order, tzinfo)
        zone = tzinfo or timezone.get_current_timezone()
        return self._periods(field_name, kind, order, lambda value: timezone.localtime(value, zone),
                             lambda year, month: timezone.make_aware(datetime.datetime(year, month, 1), zone))

    def dates(self, field_name, kind, order="ASC"):
        if kind not in ("year", "month"):
            return super().dates(field_name, kind, order)
        return self._periods(field_name, kind, order, lambda value: value, datetime.date)

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


class TenantRelatedFieldListFilter(admin.RelatedFieldListFilter):
    """A related-field filter that lists only rows of the user's companies."""

    def field_choices(self, field, request, model_admin):
        related_model = field.remote_field.model
        queryset = related_model._default_manager.complex_filter(field.get_limit_choices_to())
        queryset = scope_queryset(queryset, user=request.user)
        ordering = self.field_admin_ordering(field, request, model_admin)
        if ordering:
            queryset = queryset.order_by(*ordering)
        # __str__ of small lookup tables often reads a parent (a stage names its pipeline).
        queryset = queryset.select_related()
        return [(obj.pk, str(obj)) for obj in queryset]


class TenantScopedMixin:
    """What model admins and inlines share: scoped rows and scoped form choices."""

    company_field: str = "company"

    def get_queryset(self, request):
        return scope_queryset(super().get_queryset(request), user=request.user, path=self.company_field)

    def _scope_formfield(self, formfield, db_field, request):
        if formfield is None or not hasattr(formfield, "queryset"):
            return formfield
        formfield.queryset = scope_queryset(formfield.queryset, user=request.user)
        if db_field.related_model is Company:
            company_ids = company_ids_for_user(user=request.user)
            if company_ids is not None and len(company_ids) == 1:
                # The only possible company: preselect it rather than offer an empty choice.
                formfield.empty_label = None
                formfield.initial = company_ids[0]
        return formfield

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        formfield = super().formfield_for_foreignkey(db_field, request, **kwargs)
        return self._scope_formfield(formfield, db_field, request)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        formfield = super().formfield_for_manytomany(db_field, request, **kwargs)
        return self._scope_formfield(formfield, db_field, request)

    def get_form(self, request, obj=None, **kwargs):
        return _with_same_company_check(super().get_form(request, obj, **kwargs), self.company_field)

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        formset.form = _with_same_company_check(formset.form, self.company_field)
        return formset


def _with_same_company_check(form_class, company_field: str):
    """A form class that refuses related rows of another company than the row's own."""
    if not company_field or _is_multi_valued(form_class._meta.model, company_field):
        return form_class

    class SameCompanyForm(form_class):
        def _post_clean(self):
            super()._post_clean()
            company = company_of(self.instance, company_field)
            if company is None:
                return
            for name, value in list(self.cleaned_data.items()):
                values = value if isinstance(value, (list, tuple, QuerySet)) else [value]
                for item in values:
                    if not isinstance(item, models.Model) or isinstance(item, Company):
                        continue
                    path = company_path_for(type(item))
                    if not path or _is_multi_valued(type(item), path):
                        continue
                    other = company_of(item, path)
                    if other is not None and other.pk != company.pk:
                        self.add_error(name, ValidationError(f"{item} belongs to another company ({other})."))
                        break

    SameCompanyForm.__name__ = form_class.__name__
    return SameCompanyForm


@functools.cache
def _range_dates_class(queryset_class: type[QuerySet]) -> type[QuerySet]:
    return type(f"RangeDates{queryset_class.__name__}", (RangeDatesQuerySet, queryset_class), {})


def https_formfield(db_field: models.Field, **kwargs: Any):
    """A ModelForm's `Meta.formfield_callback`: URL fields read "example.com" as https:// (Django 6's default)."""
    if isinstance(db_field, models.URLField):
        kwargs.setdefault("assume_scheme", "https")
    return db_field.formfield(**kwargs)


class TenantScopedAdmin(TenantScopedMixin, admin.ModelAdmin):
    """Base admin of a model with a company. Set `company_field` to the path to `crm.Company`."""

    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = EstimatedCountPaginator

    def __init__(self, model, admin_site):
        super().__init__(model, admin_site)
        _company_paths.setdefault(model, self.company_field)

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if self.date_hierarchy and not isinstance(queryset, RangeDatesQuerySet):
            # The date hierarchy lists years and months from the range, not from every row.
            queryset.__class__ = _range_dates_class(type(queryset))
        return queryset

    def get_list_filter(self, request):
        """Related filters list only the user's rows; a company filter is dropped when there is one company."""
        company_ids = company_ids_for_user(user=request.user)
        scoped = []
        for entry in super().get_list_filter(request):
            if isinstance(entry, str):
                try:
                    last = get_fields_from_path(self.model, entry)[-1]
                except (FieldDoesNotExist, admin.utils.NotRelationField):
                    last = None
                if last is not None and last.is_relation:
                    if last.related_model is Company and company_ids is not None and len(company_ids) <= 1:
                        continue
                    entry = (entry, TenantRelatedFieldListFilter)
            scoped.append(entry)
        return scoped

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


class TenantScopedInline(TenantScopedMixin, admin.TabularInline):
    """Base inline of a model with a company (tabular; set `template` for a stacked look)."""
