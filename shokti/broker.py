"""Celery's Redis transport, with one Redis client per channel instead of one per publish.

kombu's Redis channel builds a new `redis.Redis` for every publish (`conn_or_acquire()` without
a client), and redis-py's constructor registers ~170 response callbacks each time: about a
quarter of the publish's CPU, paid on every webhook that queues a job. The client is only a
thin object over the channel's connection pool and is thread-safe, so this channel keeps one
per pool (a fork or a reconnect replaces the pool, and with it the client).
Selected by `CELERY_BROKER_TRANSPORT` in settings for `redis://` broker URLs.
"""

from __future__ import annotations

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError


class Channel(kombu_redis.Channel):
    _shared_client = None

    def _create_client(self, asynchronous: bool = False):
        if getattr(self.connection, "client", None) is None:
            # The broker connection was torn down (Redis went away) while this channel closes: kombu's
            # pool would fail with AttributeError, which the worker treats as unrecoverable and exits
            # on. A connection error is what it is, and the worker ignores it and reconnects.
            raise RedisConnectionError("the broker connection is closed")
        if asynchronous:
            return super()._create_client(asynchronous=True)
        pool = self.pool
        client = self._shared_client
        if client is None or client.connection_pool is not pool:
            client = self._shared_client = super()._create_client()
        return client


class RedisTransport(kombu_redis.Transport):
    Channel = Channel
