"""The test suite's flush (shokti/testing/fast_flush.py) empties every table like Django's TRUNCATE does,
which holds only while every foreign key is checked at commit."""

import pytest
from django.core.management import call_command
from django.db import connection

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
