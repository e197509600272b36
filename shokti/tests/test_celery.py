"""Celery wiring: queues, priorities for the job ledger, the database beat scheduler in UTC."""

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

    from engage.ledger import tasks
    from engage.ledger.services import job_dispatch

    published = []
    monkeypatch.setattr(tasks.job_run, "apply_async", lambda **options: published.append(options))

    assert job_dispatch(job_id=7, priority=100, run_at=timezone.now()) is True
    assert published[0]["args"] == [7] and published[0]["priority"] == celery_priority_for(100) == 0
    assert published[0]["countdown"] is None

    job_dispatch(job_id=8, priority=50, run_at=timezone.now() + dt.timedelta(seconds=30))
    assert published[1]["priority"] == celery_priority_for(50) and 25 < published[1]["countdown"] <= 30

    # An hour away: no ETA on the broker, the relay dispatches the row when it is due.
    assert job_dispatch(job_id=9, priority=100, run_at=timezone.now() + dt.timedelta(hours=1)) is True
    assert len(published) == 2


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
