"""Celery's Redis transport, with one Redis client per channel instead of one per publish.

kombu's Redis channel builds a new `redis.Redis` for every publish (`conn_or_acquire()` without
a client), and redis-py's constructor registers ~170 response callbacks each time: about a
quarter of the publish's CPU, paid on every webhook that queues a job. The client is only a
thin object over the channel's connection pool and is thread-safe, so this channel keeps one
per pool (a fork or a reconnect replaces the pool, and with it the client).
Selected by `CELERY_BROKER_TRANSPORT` in settings for `redis://` broker URLs.
"""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from typing import NamedTuple

from kombu.transport import redis as kombu_redis
from kombu.utils import json as kombu_json
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

    def put_many(self, items: list[tuple[str, dict]]) -> None:
        """Deliver each (routing key, message) as `_put` would, in one non-transactional pipeline: one round
        trip for a batch's messages. Partway failures leave some delivered; the caller's relay covers the rest."""
        if self._expires:  # queues with an expiry: kombu's own per-message path refreshes it
            for routing_key, message in items:
                self._put(routing_key, message)
            return
        with self.conn_or_acquire() as client, client.pipeline(transaction=False) as pipeline:
            for routing_key, message in items:
                priority = self._get_message_priority(message, reverse=False)
                pipeline.lpush(self._q_for_pri(routing_key, priority), kombu_redis.dumps(message))
            pipeline.execute()


class RedisTransport(kombu_redis.Transport):
    Channel = Channel


class TaskRun(NamedTuple):
    """One run of the publisher's task: its arguments, queue, priority step and delay in seconds."""

    args: list
    queue: str
    priority: int
    countdown: float | None = None


class TaskPublisher:
    """Publishes one Celery task's messages built once by Celery and stamped per message.

    Celery's `apply_async` builds every message from scratch (options merged, routes looked up,
    headers and properties assembled, the exchange declared): ~0.5 ms of CPU a publish, paid by every
    webhook that queues a job. The ledger publishes one task (`engage.job_run`) with one integer
    argument, so here Celery builds the message once per queue and priority (through `apply_async`
    itself, on a channel that keeps what it is handed), and each publish copies it with a new task id,
    delivery tag, argument and ETA and hands it to the transport's own `_put` (kombu's Redis list push,
    or the filesystem broker's file) on a producer from Celery's pool, as `basic_publish` would.
    Thread-safe: the io worker's threads each take their own pooled producer. The broker's errors
    propagate to the caller.
    """

    def __init__(self, app, task_name: str):
        self.app = app
        self.task_name = task_name
        self._lock = threading.Lock()
        self._templates: dict[tuple, _MessageTemplate] = {}  # (broker url, queue, priority) -> template

    def publish_many(self, runs: list[TaskRun]) -> list[str]:
        """Queue several runs on one pooled producer (on Redis in one round trip); their Celery task ids."""
        task_ids, stamped = [], []
        with self.app.producer_pool.acquire(block=True) as producer:
            channel, broker_url = producer.channel, self.app.conf.broker_url
            for run in runs:
                template = self._template(channel, broker_url, run.queue, run.priority)
                task_id = str(uuid.uuid4())
                task_ids.append(task_id)
                stamped.append((template.routing_key, self._stamped(channel, template, run, task_id)))
            if len(stamped) > 1 and hasattr(channel, "put_many"):
                channel.put_many(stamped)
            else:
                for routing_key, message in stamped:
                    channel._put(routing_key, message)
        return task_ids

    def _stamped(self, channel, template: _MessageTemplate, run: TaskRun, task_id: str) -> dict:
        """The template's message for this run: its task id, delivery tag, argument and ETA."""
        args_repr = repr(run.args)
        eta = (self.app.now() + timedelta(seconds=run.countdown)).isoformat() if run.countdown else None
        body = kombu_json.dumps([run.args, template.kwargs, template.embed]).encode()
        return {
            **template.message,
            "body": channel.encode_body(body, template.body_encoding)[0],
            "headers": {
                **template.message["headers"], "id": task_id, "root_id": task_id, "argsrepr": args_repr, "eta": eta,
            },
            "properties": {
                **template.message["properties"],
                "correlation_id": task_id,
                "argsrepr": args_repr,
                "delivery_tag": str(uuid.uuid4()),
                "delivery_info": dict(template.message["properties"]["delivery_info"]),
            },
        }

    def _template(self, channel, broker_url: str, queue: str, priority: int) -> _MessageTemplate:
        key = (broker_url, queue, priority)
        template = self._templates.get(key)
        if template is None:
            with self._lock:
                template = self._templates.get(key)
                if template is None:
                    template = self._templates[key] = _MessageTemplate.capture(
                        self.app, channel, self.task_name, queue, priority
                    )
        return template


class _MessageTemplate:
    """The message `apply_async` hands the transport for one queue and priority, with its body decoded."""

    def __init__(self, channel, routing_key: str, message: dict):
        self.routing_key = routing_key
        self.message = message
        self.body_encoding = message["properties"].get("body_encoding")
        _, self.kwargs, self.embed = kombu_json.loads(channel.decode_body(message["body"], self.body_encoding))

    @classmethod
    def capture(cls, app, channel, task_name: str, queue: str, priority: int) -> _MessageTemplate:
        kept: list[tuple[str, dict]] = []
        # `basic_publish` ends in `_put(routing key, message)`; an instance attribute shadows the method
        # while Celery publishes the template, so nothing reaches the broker.
        channel._put = lambda routing_key, message, **kwargs: kept.append((routing_key, message))
        try:
            app.tasks[task_name].apply_async(
                args=[0], queue=queue, priority=priority, retry=False, argsrepr="[0]", kwargsrepr="{}",
                producer=app.amqp.Producer(channel),
            )
        finally:
            del channel._put
        (routing_key, message), = kept
        return cls(channel, routing_key, message)
