"""The PostgreSQL backend's health check: no round trip for a healthy idle connection, and a
connection the server closed is found unusable (and replaced) before a request uses it."""

import time

import psycopg
import pytest
from django.db import connection

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the PostgreSQL backend")]


def _statements_run(backend_pid: int) -> str:
    """The last statement PostgreSQL saw on that backend (pg_stat_activity.query)."""
    settings = connection.settings_dict
    with psycopg.connect(host=settings["HOST"] or "127.0.0.1", port=settings["PORT"] or 5432,
                         user=settings["USER"], dbname=settings["NAME"], autocommit=True) as other:
        return other.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [backend_pid]).fetchone()[0]


def _terminate(backend_pid: int) -> None:
    settings = connection.settings_dict
    with psycopg.connect(host=settings["HOST"] or "127.0.0.1", port=settings["PORT"] or 5432,
                         user=settings["USER"], dbname=settings["NAME"], autocommit=True) as other:
        assert other.execute("SELECT pg_terminate_backend(%s)", [backend_pid]).fetchone()[0]


def test_a_healthy_idle_connection_is_usable_without_a_query():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 'marker statement'")
    pid = connection.connection.info.backend_pid

    assert connection.is_usable() is True
    assert _statements_run(pid) == "SELECT 'marker statement'"  # no SELECT 1 was sent


def test_a_connection_the_server_terminated_is_unusable_and_the_next_request_reconnects(client):
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    _terminate(pid)
    deadline = time.monotonic() + 5
    while connection.is_usable() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert connection.is_usable() is False

    # What Django does at a request's first query with CONN_HEALTH_CHECKS: the dead connection is
    # closed, a new one opened, and the query succeeds.
    connection.health_check_done = False
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
    assert connection.connection.info.backend_pid != pid
