"""The test suite's flush (shokti/testing/fast_flush.py) empties every table like Django's TRUNCATE does,
which holds only while every foreign key is checked at commit."""

import threading
import time

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.color import no_style
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from crm.models import User
from crm.tests.factories import BookingFactory

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="the PostgreSQL flush")


@pytest.mark.django_db
def test_every_foreign_key_is_deferrable():
    with connection.cursor() as cursor:
        cursor.execute("SELECT conrelid::regclass::text, conname FROM pg_constraint "
                       "WHERE contype = 'f' AND NOT (condeferrable AND condeferred) ORDER BY 1, 2")
        immediate = cursor.fetchall()
    assert immediate == [], "a foreign key checked at once breaks the test flush's DELETE order"


@pytest.mark.django_db(transaction=True)
def test_the_flush_empties_tables_whose_rows_reference_each_other():
    BookingFactory()  # a booking, its customer, worker, service and company: rows pointing at rows
    tables = connection.introspection.django_table_names(only_existing=True, include_views=False)

    call_command("flush", verbosity=0, interactive=False, inhibit_post_migrate=True)

    filled = []
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f'SELECT EXISTS (SELECT 1 FROM "{table}")')
            if cursor.fetchone()[0]:
                filled.append(table)
    assert len(tables) > 50 and filled == []


@pytest.mark.django_db(transaction=True)
def test_a_flush_that_deadlocks_with_a_writer_runs_again_and_empties_the_tables():
    """A process still writing when a test ends (a module-scoped stack's worker) can deadlock the flush's
    DELETEs: PostgreSQL aborts the flush, which runs again once the writer has committed."""
    user = User.objects.create(email="flush@example.com")
    group = Group.objects.create(name="flush")
    tables = ["auth_group", User._meta.db_table]  # the flush deletes auth_group's row, then waits on the user
    sql_list = connection.ops.sql_flush(no_style(), tables)
    writer_locked, writer_done, errors = threading.Event(), threading.Event(), []

    def writer() -> None:
        try:
            with transaction.atomic():
                User.objects.filter(pk=user.pk).update(full_name="locked by the writer")
                writer_locked.set()
                time.sleep(0.5)  # the flush is waiting on the user row by now
                Group.objects.filter(pk=group.pk).update(name="waits on the flush")  # the cycle closes
        except Exception as error:  # reported to the test below
            errors.append(error)
        finally:
            connections.close_all()
            writer_done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    writer_locked.wait(10)
    with CaptureQueriesContext(connection) as queries:
        connection.ops.execute_sql_flush(sql_list)
    thread.join(30)

    assert errors == []  # the writer went on once PostgreSQL aborted the flush
    deletes = [query["sql"] for query in queries.captured_queries if query["sql"].startswith("DELETE")]
    assert len(deletes) > len(tables), "the flush did not deadlock: it ran once"
    assert not User.objects.exists() and not Group.objects.exists()
