"""Which company an API request acts for, decided from its credentials."""

from __future__ import annotations

from rest_framework import exceptions, permissions

from crm.models import Company
from crm.selectors import companies_for_user
from shokti.api.authentication import ApiKeyPrincipal


def request_company(request, *, requested_id: object = None) -> Company:
    """The company of an API key, or of a staff user's membership (chosen by `company_id` when several).

    A `company_id` that the caller cannot act for is 403, whether the company exists or not.
    """
    user = request.user
    if isinstance(user, ApiKeyPrincipal):
        if requested_id not in (None, "") and str(requested_id) != str(user.company.pk):
            raise exceptions.PermissionDenied("This API key does not belong to that company.")
        return user.company
    if user is None or not user.is_authenticated:
        raise exceptions.NotAuthenticated()
    requested_id = requested_id or request.headers.get("X-Company-Id") or request.query_params.get("company_id")
    companies = companies_for_user(user=user)
    if requested_id not in (None, ""):
        try:
            return companies.get(pk=int(str(requested_id)))
        except (ValueError, Company.DoesNotExist):
            raise exceptions.PermissionDenied("You are not a member of that company.") from None
    found = list(companies[:2])
    if len(found) == 1:
        return found[0]
    if not found:
        raise exceptions.PermissionDenied("You are not a member of any company.")
    raise exceptions.ValidationError({"company_id": ["You belong to several companies: say which one."]})


class IsApiKey(permissions.BasePermission):
    message = "This endpoint needs a company API key."

    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, ApiKeyPrincipal)


class IsStaffUser(permissions.BasePermission):
    message = "This endpoint is for staff."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and not isinstance(user, ApiKeyPrincipal) and user.is_staff)
