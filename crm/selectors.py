"""Reads of the CRM core, always scoped to a company or a user's companies."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count, QuerySet

from crm.models import Company, Lead, Membership, User


def company_ids_for_user(*, user: User) -> list[int] | None:
    """The ids of companies a staff user may see; None means all (superuser)."""
    if user.is_superuser:
        return None
    cache_attribute = "_shokti_company_ids"
    if not hasattr(user, cache_attribute):
        setattr(user, cache_attribute, list(Membership.objects.filter(user=user).values_list("company_id", flat=True)))
    return getattr(user, cache_attribute)


def companies_for_user(*, user: User) -> QuerySet[Company]:
    company_ids = company_ids_for_user(user=user)
    companies = Company.objects.all()
    return companies if company_ids is None else companies.filter(pk__in=company_ids)


def membership_role(*, user: User, company: Company) -> str | None:
    return Membership.objects.filter(user=user, company=company).values_list("role", flat=True).first()


def _filtered(filterset_class, *, data: dict | None, queryset: QuerySet) -> QuerySet:
    from django.core.exceptions import ValidationError

    filterset = filterset_class(data or {}, queryset=queryset)
    if not filterset.is_valid():
        raise ValidationError(filterset.errors)
    return filterset.qs


def _with_phone_normalized(filters: dict | None, *, company: Company) -> dict:
    """Filters whose `phone` is read in the company's region, as contacts store it (E.164)."""
    from django.core.exceptions import ValidationError

    from crm.services import phone_normalize

    filters = dict(filters or {})
    if filters.get("phone"):
        try:
            filters["phone"] = phone_normalize(phone=filters["phone"], region=company.default_region)
        except ValidationError:
            pass  # not a phone number: matches nothing, as given
    return filters


def contact_list(*, company: Company, filters: dict | None = None) -> QuerySet:
    """The company's contacts, newest first, filtered by phone (read in the company's region) or email."""
    from crm.filters import ContactFilter
    from crm.models import Contact

    queryset = Contact.objects.filter(company=company).order_by("-id")
    return _filtered(ContactFilter, data=_with_phone_normalized(filters, company=company), queryset=queryset)


def lead_list(*, company: Company, filters: dict | None = None) -> QuerySet:
    """The company's leads, newest first, with contact, pipeline and stage joined in; filter by the contact's phone too."""
    from crm.filters import LeadFilter
    from crm.models import Lead

    queryset = Lead.objects.filter(company=company).select_related("contact", "pipeline", "stage").order_by("-id")
    return _filtered(LeadFilter, data=_with_phone_normalized(filters, company=company), queryset=queryset)


def service_list(*, company: Company, category: str | None = None, include_inactive: bool = False) -> QuerySet:
    """The company's service catalogue by name; active services only unless `include_inactive`."""
    from crm.models import Service

    services = Service.objects.filter(company=company)
    if not include_inactive:
        services = services.filter(is_active=True)
    if category:
        services = services.filter(category=category)
    return services.order_by("name", "id")


def lead_counts_by_source(*, company: Company, since: datetime | None = None) -> dict[str, int]:
    """How many leads the company got from each source (`ad`, a channel, an integration's name), since a time."""
    leads = Lead.objects.filter(company=company)
    if since is not None:
        leads = leads.filter(created_at__gte=since)
    rows = leads.values_list("source").annotate(count=Count("id")).order_by("source")
    return {source or "": count for source, count in rows}
