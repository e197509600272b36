"""The PostgreSQL backend's health check: no round trip for a healthy idle connection, and a
connection the server closed is found unusable (and replaced) before a request uses it."""

import time

import psycopg
import pytest
from django.db import connection

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the PostgreSQL backend")]


def _other_session(sql: str, params: list) -> object:
    """One value from a second, independent connection to the test database."""
    settings = connection.settings_dict
    with psycopg.connect(host=settings["HOST"] or "127.0.0.1", port=settings["PORT"] or 5432,
                         user=settings["USER"], password=settings["PASSWORD"] or None, dbname=settings["NAME"],
                         autocommit=True) as other:
        return other.execute(sql, params).fetchone()[0]


def test_a_healthy_idle_connection_is_usable_without_a_query():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 'marker statement'")
    pid = connection.connection.info.backend_pid

    assert connection.is_usable() is True
    # The last statement PostgreSQL saw on that backend: no SELECT 1 was sent.
    last = _other_session("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid])
    assert last == "SELECT 'marker statement'"


def test_a_connection_the_server_terminated_is_unusable_and_the_next_request_reconnects():
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    assert _other_session("SELECT pg_terminate_backend(%s)", [pid]) is True
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


def test_the_apps_connections_run_without_jit_unless_configured(settings):
    # DATABASE_JIT=false (the default) puts `-c jit=off` in the connection options: PostgreSQL's own
    # default (on) compiled the campaign funnel for seconds
    assert "-c jit=off" in settings.DATABASES["default"]["OPTIONS"]["options"]
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone() == ("off",)


def test_bulk_insert_arrays_escape_quotes_and_backslashes_as_psycopg_does():
    """The backend's list dumper gives psycopg's own bytes, and PostgreSQL reads back every element as sent."""
    import json
    import random

    from psycopg.adapt import PyFormat, Transformer
    from psycopg.types.array import ListDumper as PsycopgListDumper
    from psycopg.types.json import Jsonb

    from shokti.db.postgresql.base import ListDumper

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    assert connection.connection.adapters.get_dumper(list, PyFormat.TEXT) is ListDumper
    assert hasattr(PsycopgListDumper, "_re_esc")  # the attribute ours replaces is still psycopg's hook

    generator = random.Random(7)
    alphabet = ['"', "\\", "a", " ", ",", "{", "}", "\u09aa", "'", "\n", "\\\\", '\\"', "NULL"]
    texts = ["".join(generator.choice(alphabet) for _ in range(generator.randint(0, 12))) for _ in range(300)]
    documents = [{"text": text, "list": [text, 1, None]} for text in texts[:50]]
    transformer = Transformer(connection.connection)
    for values in (texts, [Jsonb(document) for document in documents]):
        ours = ListDumper(list, transformer).upgrade(values, PyFormat.TEXT)
        theirs = PsycopgListDumper(list, transformer).upgrade(values, PyFormat.TEXT)
        assert bytes(ours.dump(values)) == bytes(theirs.dump(values))

    with connection.cursor() as cursor:
        cursor.execute("SELECT array_agg(t ORDER BY n) FROM unnest(%s::text[]) WITH ORDINALITY AS u(t, n)", [texts])
        assert cursor.fetchone()[0] == texts
        cursor.execute("SELECT unnest(%s::jsonb[])::text", [[Jsonb(document) for document in documents]])
        assert [json.loads(row[0]) for row in cursor.fetchall()] == documents
