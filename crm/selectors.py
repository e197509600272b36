"""Reads of the CRM core, always scoped to a company or a user's companies."""

from __future__ import annotations

from django.db.models import QuerySet

from crm.models import Company, Membership, User


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
