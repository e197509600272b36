"""A pytest plugin: every test starts with an empty Django cache (throttle buckets, policy snapshots).

Throttle counters and cached policies live in the cache (Redis in tests) and would otherwise carry
over from one test to the next, and from one run to the next, where company ids start again at 1.
Only the Django cache's own keys are removed: the Celery broker shares the Redis database.
"""

from __future__ import annotations

import pytest


def django_cache_clear() -> int:
    """Delete every key of the default Django cache, and nothing else; returns how many were removed."""
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    # `caches["default"]`, not the `cache` proxy: isinstance() on the proxy is never true.
    cache = caches["default"]
    if isinstance(cache, RedisCache):
        client = cache._cache.get_client(write=True)
        keys = list(client.scan_iter(match=cache.make_key("*"), count=1000))
        if keys:
            client.delete(*keys)
        return len(keys)
    cache.clear()  # embedded file/local cache: nothing else lives there in tests
    return 0


@pytest.fixture(autouse=True)
def _fresh_django_cache():
    from shokti.cache import redis_outage

    redis_outage.reset()  # a test that took Redis away must not leave the next one failing soft
    django_cache_clear()
    yield
    redis_outage.reset()
