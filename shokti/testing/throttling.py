"""A pytest plugin: every test starts with empty API throttle buckets.

Throttle counters live in the cache (Redis in tests) and would otherwise carry over from one
test to the next: a suite making more than `anon` requests a minute would see 429s it did not
ask for. Only throttle keys are removed: the Celery broker shares the Redis database.
"""

from __future__ import annotations

import pytest


def throttle_buckets_clear() -> int:
    """Delete every throttle bucket in the default cache; returns how many were removed."""
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    # `caches["default"]`, not the `cache` proxy: isinstance() on the proxy is never true, and the
    # fallback below would then empty the whole Redis database, Celery's queues included.
    cache = caches["default"]
    if isinstance(cache, RedisCache):
        client = cache._cache.get_client(write=True)
        keys = list(client.scan_iter(match=cache.make_key("throttle_*"), count=1000))
        if keys:
            client.delete(*keys)
        return len(keys)
    cache.clear()  # embedded file/local cache: nothing else lives there in tests
    return 0


@pytest.fixture(autouse=True)
def _fresh_throttle_buckets():
    throttle_buckets_clear()
    yield
