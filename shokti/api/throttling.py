"""Throttles: anonymous callers by IP, people by user id, server-to-server callers by API key.

Rates are in settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] (`anon`, `user`, `api_key`).
An API-key caller is any `request.user` that carries an `api_key` with a public `prefix`
(`crm.tenancy.api.ApiKeyPrincipal`); the kernel knows it by that shape, not by importing crm.

Every throttle here fails open: with Redis unreachable the request is let through (a limit is
worth less than the request), logged once per outage and counted in
`throttle_fail_open_total{scope}`. Clients are told apart by `shokti.api.client_ip.client_ip`
(settings.NUM_PROXIES trusted proxies), never by an X-Forwarded-For they wrote themselves.
"""

from __future__ import annotations

import logging
import weakref

from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.redis import RedisCache
from rest_framework import throttling
from rest_framework.settings import api_settings

from shokti.api.client_ip import client_ip
from shokti.cache import REDIS_UNAVAILABLE, cache_is_available, redis_outage

logger = logging.getLogger(__name__)


def api_key_prefix(request) -> str | None:
    """The public prefix of the API key the request authenticated with, or None for any other caller."""
    return getattr(getattr(request.user, "api_key", None), "prefix", None)


class LiveRatesMixin:
    """Read the rates from the current settings, not the copy DRF takes at import time.

    DRF binds `THROTTLE_RATES` when rest_framework.throttling is imported, so a changed
    setting (override_settings, a reload) would never reach it.
    """

    @property
    def THROTTLE_RATES(self) -> dict:
        return api_settings.DEFAULT_THROTTLE_RATES


class FailOpenMixin:
    """Let the request through when the cache (Redis) cannot count it; identify clients by `client_ip`."""

    def get_ident(self, request) -> str:
        return client_ip(request)

    def allow_request(self, request, view) -> bool:
        scope = getattr(self, "scope", None) or type(self).__name__
        if not cache_is_available():
            _count_fail_open(scope)
            return True
        try:
            allowed = self.count_request(request, view)
        except REDIS_UNAVAILABLE as error:
            redis_outage.mark_down(error, where=f"throttle {scope}")
            allowed = True
        if not cache_is_available():  # the cache failed soft under this very request
            _count_fail_open(scope)
            return True
        return allowed

    def count_request(self, request, view) -> bool:
        """Count the request and say whether it is within the rate (DRF's allow_request)."""
        return super().allow_request(request, view)


def _count_fail_open(scope: str) -> None:
    from shokti.metrics import throttle_fail_open_total

    throttle_fail_open_total.labels(scope=scope).inc()


class SimpleRateThrottle(FailOpenMixin, LiveRatesMixin, throttling.SimpleRateThrottle):
    """DRF's SimpleRateThrottle, failing open and keyed on `client_ip`: the base for the apps' own throttles."""


class AnonRateThrottle(FailOpenMixin, LiveRatesMixin, throttling.AnonRateThrottle):
    """Unauthenticated callers, one bucket per client IP."""


class UserRateThrottle(FailOpenMixin, LiveRatesMixin, throttling.UserRateThrottle):
    """DRF's per-user throttle, minus API-key callers (they have no user id and would share one bucket)."""

    def get_cache_key(self, request, view):
        if api_key_prefix(request) is not None:
            return None
        return super().get_cache_key(request, view)


# INCR this window (expiring after two), read the previous one: one command, one round trip.
_SLIDING_WINDOW_SCRIPT = """
local current = redis.call('INCR', KEYS[1])
if current == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return {current, redis.call('GET', KEYS[2]) or 0}
"""
# Per cache client: its Redis client and the registered script. Django builds a new
# redis.Redis (with its ~200 response callbacks) on every get_client() call.
_redis_scripts: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _sliding_window_script(cache: RedisCache):
    script = _redis_scripts.get(cache._cache)
    if script is None:
        script = cache._cache.get_client(write=True).register_script(_SLIDING_WINDOW_SCRIPT)
        _redis_scripts[cache._cache] = script
    return script


class ApiKeyRateThrottle(FailOpenMixin, LiveRatesMixin, throttling.SimpleRateThrottle):
    """One bucket per API key, keyed by the key's public prefix.

    Webhook senders call at high rates, so on Redis this is a sliding-window counter in one round
    trip (a Lua script: INCR this window, EXPIRE it, GET the previous one), not DRF's history list, which is read,
    unpickled, trimmed, pickled and written back on every request (two round trips and a list as
    long as the rate). The previous window counts in proportion to how much of it still overlaps
    the last `duration` seconds. A refused request is not counted.
    """

    scope = "api_key"

    def get_cache_key(self, request, view):
        prefix = api_key_prefix(request)
        if prefix is None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": prefix}

    def count_request(self, request, view) -> bool:
        cache = caches[DEFAULT_CACHE_ALIAS]  # DRF's `self.cache` is the proxy in front of it
        if self.rate is None or not isinstance(cache, RedisCache):
            return super().count_request(request, view)
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        now = self.timer()
        window = int(now // self.duration)
        current_key = cache.make_key(f"{key}:{window}")
        script = _sliding_window_script(cache)
        current, previous = script(
            keys=[current_key, cache.make_key(f"{key}:{window - 1}")], args=[int(self.duration * 2)]
        )
        overlap = 1 - (now - window * self.duration) / self.duration
        self._counts = (current - 1, int(previous or 0), overlap, now, window)
        if int(previous or 0) * overlap + current <= self.num_requests:
            return True
        script.registered_client.decr(current_key)  # refused: it does not use up the quota
        return False

    def wait(self) -> float | None:
        counts = getattr(self, "_counts", None)
        if counts is None:
            return super().wait()
        current, previous, overlap, now, window = counts
        until_next_window = (window + 1) * self.duration - now
        if current >= self.num_requests or previous == 0:
            return max(1.0, until_next_window)
        # The previous window's share decays linearly: when does it leave room for one more?
        excess = previous * overlap + current + 1 - self.num_requests
        return max(1.0, min(until_next_window, excess * self.duration / previous))
