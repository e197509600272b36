"""Tenant scoping for the admin: every model that belongs to a company.

Subclass `TenantScopedAdmin` (and `TenantScopedInline` for inlines) for the admin of any model
that has a company, and set `company_field` to the lookup path from the model to `crm.Company`:

    @admin.register(Job)
    class JobAdmin(TenantScopedAdmin):
        company_field = "company"            # the default
        list_select_related = ["company"]

    class StageInline(TenantScopedInline):  # rows of a model reached through another one
        model = Stage
        company_field = "pipeline__company"

What the base does for you (on top of `shokti.admin.BaseAdmin`: cheap counts, range date hierarchy):
- Staff see only rows of the companies they reach through `crm.Membership`; superusers see all.
  A foreign row's change, delete or history URL is a 404, the same as a row that does not exist.
- Foreign-key and many-to-many choices, autocomplete results and related list filters are scoped
  the same way. The path of a related model is found by `company_path_for()`: the `company_field`
  of its registered `TenantScopedAdmin`, else a `company` foreign key, else whatever was given to
  `register_company_path()`. Models with no path (ContentType, Group) are left alone.
- A company choice lists only the user's companies, preselected when there is exactly one.
- On save, every chosen related row must belong to the same company as the row itself.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import get_fields_from_path
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models
from django.db.models import QuerySet
from django.utils.translation import gettext as _
from unfold.admin import TabularInline

from crm.models import Company
from crm.selectors import company_ids_for_user
from shokti.admin import BaseAdmin

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
                        self.add_error(name, ValidationError(_("%(item)s belongs to another company (%(other)s).") % {"item": item, "other": other}))
                        break

    SameCompanyForm.__name__ = form_class.__name__
    return SameCompanyForm


class TenantScopedAdmin(TenantScopedMixin, BaseAdmin):
    """Base admin of a model with a company. Set `company_field` to the path to `crm.Company`."""

    def __init__(self, model, admin_site):
        super().__init__(model, admin_site)
        _company_paths.setdefault(model, self.company_field)

    def get_list_display(self, request):
        """The company column is dropped for a person of one company: it would say the same on every row."""
        list_display = super().get_list_display(request)
        company_ids = company_ids_for_user(user=request.user)
        if company_ids is not None and len(company_ids) <= 1 and self.company_field in list_display:
            list_display = [name for name in list_display if name != self.company_field]
        return list_display

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


class TenantScopedInline(TenantScopedMixin, TabularInline):
    """Base inline of a model with a company (tabular; set `template` for a stacked look)."""
