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
