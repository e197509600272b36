"""Celery wiring: queues, priorities for the job ledger, the database beat scheduler in UTC."""

import time

import pytest

from engage.ledger.services import job_priority_step as celery_priority_for
from shokti.celery import app


@pytest.mark.parametrize(
    ("ledger_priority", "celery_priority"),
    [(100, 0), (95, 0), (90, 0), (89, 1), (70, 2), (60, 3), (50, 4), (49, 5), (10, 8), (9, 9), (0, 9), (250, 0), (-5, 9)],
)
def test_ledger_priority_maps_to_redis_steps_with_0_first(ledger_priority, celery_priority):
    assert celery_priority_for(ledger_priority) == celery_priority


def test_p1_jobs_always_go_before_p2_jobs():
    # P1 90-100 (AI reply, follow-up, summary) before P2 50-70 (sequence step, webhook reminder).
    assert max(celery_priority_for(p) for p in range(90, 101)) < min(celery_priority_for(p) for p in range(50, 71))


def test_queues_routes_and_beat():
    assert {queue.name for queue in app.conf.task_queues} == {"default", "io", "whatsapp_web"}
    assert app.conf.task_default_queue == "default"
    assert app.amqp.router.route({}, "channels_app.tasks.whatsapp_web_send")["queue"].name == "whatsapp_web"
    assert app.amqp.router.route({}, "engage.tasks.anything")["queue"].name == "default"
    assert app.conf.beat_scheduler == "django_celery_beat.schedulers:DatabaseScheduler"
    assert app.conf.timezone == "UTC"
    assert app.conf.task_acks_late is True
    assert app.conf.worker_prefetch_multiplier == 1


def test_redis_broker_has_ten_priority_steps(settings):
    assert settings.CELERY_BROKER_URL.startswith("redis://")  # tests run on the real Redis
    options = app.conf.broker_transport_options
    assert options["priority_steps"] == list(range(10))
    assert options["queue_order_strategy"] == "priority"


def test_at_least_once_delivery_settings():
    assert app.conf.task_reject_on_worker_lost is True
    # A message not acknowledged within the visibility timeout is redelivered: it must outlast any task.
    assert app.conf.broker_transport_options["visibility_timeout"] > app.conf.task_time_limit


def test_job_dispatch_publishes_with_the_ledger_priority_and_leaves_long_delays_to_the_ledger(monkeypatch):
    import datetime as dt

    from django.utils import timezone

    from engage.ledger import services
    from engage.ledger.services import JobRun, jobs_dispatch

    published = []
    monkeypatch.setattr(services._JOB_PUBLISHER, "publish_many", lambda runs: published.extend(run._asdict() for run in runs))

    assert jobs_dispatch([JobRun(7, 100, timezone.now(), "ai_engage")]) is True
    assert published[0] == {"args": [7], "queue": "io", "priority": celery_priority_for(100), "countdown": None}
    assert celery_priority_for(100) == 0

    jobs_dispatch([JobRun(8, 50, timezone.now() + dt.timedelta(seconds=30))])
    assert published[1]["priority"] == celery_priority_for(50) and 25 < published[1]["countdown"] <= 30
    assert published[1]["queue"] == "default"  # no task name: the default queue, as Celery's routing had it

    # An hour away: no ETA on the broker, the relay dispatches the row when it is due.
    assert jobs_dispatch([JobRun(9, 100, timezone.now() + dt.timedelta(hours=1))]) is True
    assert len(published) == 2


def _handed_to_the_transport(monkeypatch, publish) -> tuple[str, dict]:
    """What `publish` hands the broker transport's `_put` (on whichever pooled channel), instead of the broker."""
    with app.producer_pool.acquire(block=True) as producer:
        channel_class = type(producer.channel)
    kept = []
    with monkeypatch.context() as patch:
        patch.setattr(channel_class, "_put", lambda self, routing_key, message, **kwargs: kept.append((routing_key, message)))
        publish()
    (routing_key, message), = kept
    return routing_key, message


@pytest.mark.parametrize("countdown", [None, 30])
def test_the_task_publisher_hands_the_transport_the_message_celery_builds(countdown, monkeypatch):
    """The stamped message is apply_async's own, but for what is new in every message (ids, tag, the argument, ETA)."""
    import base64
    import datetime as dt
    import json

    from django.utils import timezone

    from shokti.broker import TaskPublisher, TaskRun

    publisher = TaskPublisher(app, "engage.job_run")
    ours_key, ours = _handed_to_the_transport(
        monkeypatch, lambda: publisher.publish_many([TaskRun(args=[4242], queue="io", priority=3, countdown=countdown)])
    )
    celery_key, celery = _handed_to_the_transport(monkeypatch, lambda: app.tasks["engage.job_run"].apply_async(
        args=[4242], queue="io", priority=3, countdown=countdown, retry=False, argsrepr="[4242]", kwargsrepr="{}",
    ))
    # Each message its own task id and delivery tag.
    _, again = _handed_to_the_transport(monkeypatch, lambda: publisher.publish_many([TaskRun(args=[4243], queue="io", priority=3)]))

    assert ours_key == celery_key == "io"
    per_message = {"id", "root_id", "correlation_id", "delivery_tag", "eta"}

    def without(fields: dict) -> dict:
        return {name: value for name, value in fields.items() if name not in per_message}

    assert without(ours["headers"]) == without(celery["headers"])
    assert without(ours["properties"]) == without(celery["properties"])
    assert {k: v for k, v in ours.items() if k not in ("headers", "properties")} == {
        k: v for k, v in celery.items() if k not in ("headers", "properties")
    }  # the body too: same argument, same encoding
    assert json.loads(base64.b64decode(ours["body"]))[0] == [4242]
    assert ours["headers"]["id"] == ours["headers"]["root_id"] == ours["properties"]["correlation_id"]
    assert ours["properties"]["priority"] == 3
    if countdown:
        eta = dt.datetime.fromisoformat(ours["headers"]["eta"])
        assert dt.timedelta(seconds=28) < eta - timezone.now() <= dt.timedelta(seconds=30)
    else:
        assert ours["headers"]["eta"] is None is celery["headers"]["eta"]
    assert again["headers"]["id"] != ours["headers"]["id"]
    assert again["properties"]["delivery_tag"] != ours["properties"]["delivery_tag"]
    assert json.loads(base64.b64decode(again["body"]))[0] == [4243]


def test_a_batch_of_runs_reaches_redis_in_one_round_trip_as_single_publishes_would(settings):
    """publish_many pipelines the LPUSHes: the same lists, the same messages as `_put` one at a time."""
    import base64
    import json

    import redis

    from shokti.broker import TaskPublisher, TaskRun

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)  # the suite's broker is Redis
    queues = ("shokti-batch-test", "shokti-batch-test-io")
    publisher = TaskPublisher(app, "engage.job_run")
    runs = [TaskRun(args=[n], queue=queues[n % 2], priority=n % 3 * 3) for n in range(1, 8)]

    def drained() -> list[tuple[str, int, str]]:
        found = []
        for key in sorted(client.keys("shokti-batch-test*")):
            for raw in client.lrange(key, 0, -1):
                message = json.loads(raw)
                found.append((key.decode(), json.loads(base64.b64decode(message["body"]))[0][0],
                              message["properties"]["priority"]))
            client.delete(key)
        return sorted(found)

    try:
        publisher.publish_many(runs)  # the first builds the templates (declaring the queues)
        drained()
        commands = []
        original = redis.client.Pipeline.execute

        def counted(self, *args, **kwargs):
            commands.append(len(self.command_stack))
            return original(self, *args, **kwargs)

        redis.client.Pipeline.execute = counted
        try:
            ids = publisher.publish_many(runs)
        finally:
            redis.client.Pipeline.execute = original
        batched = drained()
        for run in runs:
            publisher.publish_many([run])
        single = drained()
    finally:
        for key in client.keys("shokti-batch-test*"):
            client.delete(key)
    assert commands == [len(runs)]  # one pipeline, one LPUSH a run
    assert len(set(ids)) == len(runs)
    assert batched == single and len(batched) == len(runs)
    assert {queue for queue, _, _ in batched} > {"shokti-batch-test"}  # priorities land in kombu's priority lists


def test_a_broker_channel_closing_after_redis_went_away_raises_a_connection_error_the_worker_ignores():
    # kombu closes the channel (restoring unacknowledged messages) after the connection is torn down; its
    # pool then read a None connection and the AttributeError made the worker exit ("Unrecoverable error").
    from kombu import Connection
    from redis.exceptions import ConnectionError as RedisConnectionError

    from shokti.broker import RedisTransport

    transport = RedisTransport(Connection("redis://127.0.0.1:1/0"))
    channel = transport.Channel.__new__(transport.Channel)  # as it is while closing: no live connection
    channel.connection = transport
    transport.client = None

    with pytest.raises(RedisConnectionError):
        channel._create_client()
    assert RedisConnectionError in transport.connection_errors  # what Celery's close ignores


def _filesystem_consume(options: dict, count: int, results) -> None:
    """A consumer in a process of its own (as the worker is): every message's "n", or the error it met."""
    from kombu import Connection
    from kombu.transport.virtual import Empty

    received = []
    with Connection("filesystem://", transport_options=options) as connection:
        channel = connection.default_channel
        deadline = time.monotonic() + 60
        while len(received) < count and time.monotonic() < deadline:
            try:
                received.append(channel._get("jobs")["n"])
            except Empty:
                continue
            except Exception as error:  # reported to the test
                results.put(("error", repr(error)))
                return
    results.put(("received", received))


def test_a_filesystem_broker_consumer_reads_each_message_whole_while_a_producer_writes(tmp_path):
    """The embedded default's broker: a worker polling the folder while beat or the web publishes. kombu's own
    transport let the consumer take a message's file before it was written (an empty read, a JSONDecodeError
    that stopped the worker, the message lost); `filesystem://` is now shokti.filesystem_broker's."""
    import multiprocessing

    from kombu import Connection

    options = {"data_folder_in": str(tmp_path), "data_folder_out": str(tmp_path), "store_processed": False,
               "control_folder": str(tmp_path / "control")}
    count = 200  # of 2 MB each: a write long enough for a consumer to come by in the middle of it
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    consumer = context.Process(target=_filesystem_consume, args=(options, count, results))
    consumer.start()
    with Connection("filesystem://", transport_options=options) as connection:
        channel = connection.default_channel
        for n in range(count):
            channel._put("jobs", {"n": n, "body": "x" * 2_000_000})
    outcome, value = results.get(timeout=90)
    consumer.join(30)

    assert (outcome, sorted(value) if outcome == "received" else value) == ("received", list(range(count)))
    assert type(channel).__module__ == "shokti.filesystem_broker"
