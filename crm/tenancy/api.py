"""API tenancy: server-to-server authentication with a company's API key, and which company a request acts for."""

from __future__ import annotations

import hmac
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions

from crm.models import ApiKey, Company
from crm.selectors import companies_for_user
from shokti.api.authentication import Principal

# Per-process cache of API keys by prefix: {prefix: (expires_at monotonic, ApiKey with its company)}.
# Every request of a server-to-server client would otherwise pay a query for the same row.
# A revocation or company change saved in this process clears it at once; one saved
# elsewhere (another web worker, a queryset.update) takes effect within
# API_KEY_CACHE_SECONDS (default 10). The secret is still checked against the hash every time.
_key_cache: dict[str, tuple[float, ApiKey]] = {}
_key_cache_lock = threading.Lock()


def api_key_cache_seconds() -> float:
    return float(settings.API_KEY_CACHE_SECONDS)


def api_key_cache_clear() -> None:
    """Forget every cached API key of this process."""
    with _key_cache_lock:
        _key_cache.clear()


def _api_key_cache_clear_on_change(**kwargs) -> None:
    api_key_cache_clear()


def api_key_cache_connect() -> None:
    """A key or company saved or deleted in this process clears the cache at once (CrmConfig.ready)."""
    for signal in (post_save, post_delete):
        for sender in (ApiKey, Company):
            signal.connect(
                _api_key_cache_clear_on_change, sender=sender,
                dispatch_uid=f"api_key_cache_clear_{signal is post_save}_{sender.__name__}",
            )


def _api_key_by_prefix(prefix: str) -> ApiKey | None:
    ttl = api_key_cache_seconds()
    now = time.monotonic()
    cached = _key_cache.get(prefix)
    if cached is not None and cached[0] > now:
        return cached[1]
    api_key = ApiKey.objects.select_related("company").filter(prefix=prefix).first()
    if api_key is not None and ttl > 0:
        with _key_cache_lock:
            _key_cache[prefix] = (now + ttl, api_key)
    return api_key


@dataclass(frozen=True)
class ApiKeyPrincipal(Principal):
    """`request.user` for an API-key call: the company, not a person."""

    company: Company
    api_key: ApiKey

    def __str__(self) -> str:
        return f"api-key:{self.api_key.prefix}"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Api-Key sk_...` or `X-Api-Key: sk_...`."""

    keyword = "Api-Key"

    def authenticate(self, request):
        if "X-Api-Key" in request.headers:
            raw_key = request.headers["X-Api-Key"].strip()
            if not raw_key or " " in raw_key:
                raise exceptions.AuthenticationFailed("Malformed X-Api-Key header: expected `X-Api-Key: sk_...`.")
            return self.authenticate_key(raw_key)
        parts = request.headers.get("Authorization", "").split()
        if not parts or parts[0].lower() != self.keyword.lower():
            return None  # not ours: another authentication class may know it
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header: expected `Api-Key sk_...`.")
        return self.authenticate_key(parts[1])

    def authenticate_key(self, raw_key: str):
        pieces = raw_key.split("_", 2)
        if len(pieces) != 3 or pieces[0] != "sk" or len(pieces[1]) != ApiKey.PREFIX_LENGTH:
            raise exceptions.AuthenticationFailed("Invalid API key.")
        api_key = _api_key_by_prefix(pieces[1])
        if api_key is None or not hmac.compare_digest(api_key.hashed_key, ApiKey.hash(raw_key)):
            raise exceptions.AuthenticationFailed("Invalid API key.")
        if not api_key.is_active or not api_key.company.is_active:
            raise exceptions.AuthenticationFailed("This API key is revoked or its company is inactive.")
        now = timezone.now()
        # Touch last_used_at at most once a minute: no write on every request.
        if api_key.last_used_at is None or (now - api_key.last_used_at).total_seconds() > 60:
            ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
            api_key.last_used_at = now  # the cached row too: the next touch is a minute away
        return ApiKeyPrincipal(company=api_key.company, api_key=api_key), api_key

    def authenticate_header(self, request) -> str:
        return self.keyword



COMPANY_ID_INVALID = "A company id is a whole number (or its digits as text)."
COMPANY_ID_MAX = 2**63 - 1


def requested_company_id(value: object) -> int | None:
    """A requested `company_id` as an int (None when not given); 400 for anything that is not an id (objects, lists,
    booleans, fractions, words), never read as one."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise exceptions.ValidationError({"company_id": [COMPANY_ID_INVALID]})
    return value


def request_company(request, *, requested_id: object = None) -> Company:
    """The company of an API key, or of a staff user's membership (chosen by `company_id` when several).

    The requested company comes from `requested_id` (a body's `company_id`), else the `X-Company-Id`
    header, else the `company_id` query parameter. One the caller cannot act for is 403, whether it
    exists or not, for API keys (only their own company) as for staff; one that is not an id is 400.
    """
    user = request.user
    if user is None or not user.is_authenticated:
        raise exceptions.NotAuthenticated()
    if requested_id in (None, ""):
        requested_id = request.headers.get("X-Company-Id") or request.query_params.get("company_id")
    company_id = requested_company_id(requested_id)
    if isinstance(user, ApiKeyPrincipal):
        if company_id is not None and company_id != user.company.pk:
            raise exceptions.PermissionDenied("This API key does not belong to that company.")
        return user.company
    companies = companies_for_user(user=user)
    if company_id is not None:
        company = companies.filter(pk=company_id).first() if 0 < company_id <= COMPANY_ID_MAX else None
        if company is None:
            raise exceptions.PermissionDenied("You are not a member of that company.")
        return company
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


class IsApiKeyOrStaffUser(IsApiKey):
    message = "This endpoint needs a company API key or a staff login."

    def has_permission(self, request, view) -> bool:
        return super().has_permission(request, view) or IsStaffUser().has_permission(request, view)
