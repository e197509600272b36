"""Throttles: anonymous callers by IP, people by user id, server-to-server callers by API key.

Rates are in settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] (`anon`, `user`, `api_key`).
"""

from __future__ import annotations

from rest_framework import throttling
from rest_framework.settings import api_settings

from shokti.api.authentication import ApiKeyPrincipal


class LiveRatesMixin:
    """Read the rates from the current settings, not the copy DRF takes at import time.

    DRF binds `THROTTLE_RATES` when rest_framework.throttling is imported, so a changed
    setting (override_settings, a reload) would never reach it.
    """

    @property
    def THROTTLE_RATES(self) -> dict:  # noqa: N802  (the name DRF reads)
        return api_settings.DEFAULT_THROTTLE_RATES


class AnonRateThrottle(LiveRatesMixin, throttling.AnonRateThrottle):
    """Unauthenticated callers, one bucket per client IP."""


class UserRateThrottle(LiveRatesMixin, throttling.UserRateThrottle):
    """DRF's per-user throttle, minus API-key callers (they have no user id and would share one bucket)."""

    def get_cache_key(self, request, view):
        if isinstance(request.user, ApiKeyPrincipal):
            return None
        return super().get_cache_key(request, view)


class ApiKeyRateThrottle(LiveRatesMixin, throttling.SimpleRateThrottle):
    """One bucket per API key, keyed by the key's public prefix."""

    scope = "api_key"

    def get_cache_key(self, request, view):
        if not isinstance(request.user, ApiKeyPrincipal):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.api_key.prefix}
