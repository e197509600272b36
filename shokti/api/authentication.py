"""Machine callers: the shape of a `request.user` that is not a person, and the internal token.

Company API keys are tenancy and live in `crm.tenancy.api` (`ApiKeyPrincipal` builds on `Principal`).
"""

from __future__ import annotations

import hmac

from django.conf import settings
from rest_framework import authentication, exceptions, permissions


class Principal:
    """`request.user` of a machine caller: authenticated, active, never staff, no primary key."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None


class InternalPrincipal(Principal):
    """`request.user` of a call with the internal token: the platform's scheduler, for any company."""

    def __str__(self) -> str:
        return "internal"


class InternalTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <INTERNAL_API_TOKEN>` (the platform's own callers); off when the setting is empty."""

    def authenticate(self, request):
        parts = request.headers.get("Authorization", "").split()
        if len(parts) != 2 or parts[0].lower() != "bearer":
            return None
        expected = getattr(settings, "INTERNAL_API_TOKEN", "")
        if not expected or not hmac.compare_digest(parts[1].encode(), expected.encode()):
            raise exceptions.AuthenticationFailed("Invalid internal token.")
        return InternalPrincipal(), None

    def authenticate_header(self, request) -> str:
        return "Bearer"


class IsInternal(permissions.BasePermission):
    message = "This endpoint needs the internal token."

    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, InternalPrincipal)
