"""The Redis cache, failing soft: with Redis down, reads miss and writes are dropped, and requests go on.

Everything in the cache can be recomputed (policy snapshots, zone lists) or is a best-effort counter
(throttle buckets), so an unreachable Redis must not turn requests into 500s. A connection error or
timeout marks Redis down in this process for `CACHE_RETRY_SECONDS` (default 5): meanwhile no
operation waits on a socket, each answers as a miss (`get` → default, `add` → False, writes → no-op),
logs at most one warning per period and counts `cache_unavailable_total{operation}`. After the
period the next operation tries Redis again. Errors Redis answers (a wrong type, a script error) are
bugs and are raised as before.

Selected by settings.CACHES["default"]["BACKEND"] = "shokti.cache.FailSoftRedisCache".
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.conf import settings
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

# What "Redis is unreachable" looks like to redis-py (BusyLoadingError is a ConnectionError too).
REDIS_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError, OSError)


class _Outage:
    """Per process: until when Redis counts as down, and whether that was logged."""

    def __init__(self):
        self.lock = threading.Lock()
        self.down_until = 0.0

    def is_down(self) -> bool:
        return time.monotonic() < self.down_until

    def mark_down(self, error: BaseException, *, where: str) -> None:
        seconds = float(getattr(settings, "CACHE_RETRY_SECONDS", 5.0))
        with self.lock:
            was_down = self.is_down()
            self.down_until = time.monotonic() + seconds
        if not was_down:
            logger.warning("Redis unreachable (%s: %s): failing soft for %.0f s", where, error, seconds)

    def reset(self) -> None:
        with self.lock:
            self.down_until = 0.0


redis_outage = _Outage()


def cache_is_available() -> bool:
    """False while this process has found Redis unreachable within the last CACHE_RETRY_SECONDS."""
    return not redis_outage.is_down()


def _count(operation: str) -> None:
    from shokti.metrics import cache_unavailable_total

    cache_unavailable_total.labels(operation=operation).inc()


class FailSoftRedisCache(RedisCache):
    def _soft(self, operation: str, default: Any, call, *args):
        if redis_outage.is_down():
            _count(operation)
            return default
        try:
            return call(*args)
        except REDIS_UNAVAILABLE as error:
            redis_outage.mark_down(error, where=f"cache {operation}")
            _count(operation)
            return default

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._soft("add", False, super().add, key, value, timeout, version)

    def get(self, key, default=None, version=None):
        return self._soft("get", default, super().get, key, default, version)

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._soft("set", None, super().set, key, value, timeout, version)

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        return self._soft("touch", False, super().touch, key, timeout, version)

    def delete(self, key, version=None):
        return self._soft("delete", False, super().delete, key, version)

    def get_many(self, keys, version=None):
        return self._soft("get_many", {}, super().get_many, keys, version)

    def has_key(self, key, version=None):
        return self._soft("has_key", False, super().has_key, key, version)

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        return self._soft("set_many", [], super().set_many, data, timeout, version)

    def delete_many(self, keys, version=None):
        return self._soft("delete_many", None, super().delete_many, keys, version)
