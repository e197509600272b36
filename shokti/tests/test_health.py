"""GET /health: 200 when the database and Redis answer, 503 naming the part that does not."""

import socket
from unittest import mock

import pytest
from django.db import OperationalError
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_health_ok():
    response = Client().get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}
    assert "no-cache" in response["Cache-Control"]


def test_health_redis_down_is_503(settings, closed_port):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port}/0"

    response = Client().get("/health")

    assert response.status_code == 503
    assert response.json() == {
        "status": "degraded",
        "checks": {"database": "ok", "redis": "error"},
        "failing": ["redis"],
    }


def test_health_database_down_is_503():
    broken = mock.MagicMock()
    broken.cursor.side_effect = OperationalError("connection refused")

    with mock.patch("shokti.health.connection", broken):
        response = Client().get("/health")

    assert response.status_code == 503
    assert response.json() == {
        "status": "degraded",
        "checks": {"database": "error", "redis": "ok"},
        "failing": ["database"],
    }


def test_health_both_down(settings, closed_port):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port}/0"
    broken = mock.MagicMock()
    broken.cursor.side_effect = OperationalError("connection refused")

    with mock.patch("shokti.health.connection", broken):
        response = Client().get("/health")

    assert response.status_code == 503
    assert response.json()["failing"] == ["database", "redis"]


def test_health_does_not_leak_error_details(settings, closed_port):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port}/0"

    body = Client().get("/health").content.decode()

    assert str(closed_port) not in body
    assert "Error" not in body


def test_health_embedded_mode_checks_the_broker_folder(settings, tmp_path):
    settings.REDIS_URL = ""
    settings.BROKER_DIR = tmp_path / "broker"

    response = Client().get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


def test_health_answers_get_and_head_only():
    assert Client().head("/health").status_code == 200
    assert Client().post("/health").status_code == 405


# --- /health?deep=1: workers, beat, the queue --------------------------------------------------------


def test_deep_health_without_workers_or_beat_is_503_naming_them():
    from shokti.liveness import workers_alive

    assert workers_alive() == []
    response = Client().get("/health", {"deep": 1})

    assert response.status_code == 503
    body = response.json()
    assert body["checks"] == {"database": "ok", "redis": "ok", "workers": "error", "beat": "error", "jobs": "ok"}
    assert body["failing"] == ["beat", "workers"]
    assert body["workers"] == {"alive": [], "per_queue": {"default": 0, "io": 0},
                               "queues_without_worker": ["default", "io"]}
    assert body["beat"] == {"last_tick_seconds_ago": None}
    assert body["jobs"] == {"oldest_queued_age_seconds": None}


def test_deep_health_with_live_workers_and_beat_is_200_with_the_oldest_queued_job(company, monkeypatch):
    import datetime as dt

    from django.utils import timezone

    from engage.ledger.services import job_enqueue
    from engage.models import Job
    from shokti import liveness
    from shokti.liveness import beat_tick_note, worker_beat

    worker_beat(name="default@host", queues=["default"])
    worker_beat(name="io@host", queues=["io"])
    # beat notes a tick at most every 2 s per process: another test's note a moment ago must not swallow this one.
    monkeypatch.setattr(liveness, "_beat_last_noted", 0.0)
    beat_tick_note()
    job = job_enqueue(company=company, task_name="ai_summary", payload={}, idempotency_key="waiting")
    Job.objects.filter(pk=job.pk).update(next_run_at=timezone.now() - dt.timedelta(seconds=42))

    response = Client().get("/health", {"deep": "1"})

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["checks"] == {"database": "ok", "redis": "ok", "workers": "ok", "beat": "ok", "jobs": "ok"}
    assert body["workers"] == {"alive": ["default@host", "io@host"], "per_queue": {"default": 1, "io": 1}}
    assert body["beat"]["last_tick_seconds_ago"] < 5
    assert 42 <= body["jobs"]["oldest_queued_age_seconds"] < 60


def test_deep_health_a_stale_heartbeat_a_silent_beat_and_an_old_queue_are_failures(company, settings):
    import datetime as dt

    from django.core.cache import cache
    from django.utils import timezone

    from engage.ledger.services import job_enqueue
    from engage.models import Job
    from shokti.liveness import BEAT_KEY, worker_beat, worker_key

    settings.HEALTH_MAX_QUEUE_AGE_SECONDS = 300
    worker_beat(name="default@host", queues=["default", "io"])
    stale = cache.get(worker_key("default@host"))
    cache.set(worker_key("default@host"), {**stale, "at": stale["at"] - 120}, 60)
    cache.set(BEAT_KEY, {"at": timezone.now().timestamp() - 600}, None)
    job = job_enqueue(company=company, task_name="ai_summary", payload={}, idempotency_key="stuck")
    Job.objects.filter(pk=job.pk).update(next_run_at=timezone.now() - dt.timedelta(minutes=10))

    response = Client().get("/health", {"deep": 1})

    assert response.status_code == 503
    assert response.json()["failing"] == ["beat", "jobs", "workers"]


def test_deep_health_with_redis_away_says_it_cannot_tell(settings, closed_port):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port}/0"

    response = Client().get("/health", {"deep": 1})

    assert response.status_code == 503
    assert response.json()["checks"] == {
        "database": "ok", "redis": "error", "workers": "unknown", "beat": "unknown", "jobs": "ok"
    }
    assert response.json()["failing"] == ["redis"]
