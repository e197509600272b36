"""Transactional tests empty the tables with DELETE, not TRUNCATE.

After each transactional test Django empties every table with one `TRUNCATE` of all of them: on PostgreSQL
that costs 2.5-3 s here (a new file for each of ~80 tables, made durable at commit), against ~20 ms for
`DELETE` of the few rows a test wrote, and the suite has ~150 such tests. Every foreign key Django creates is
`DEFERRABLE INITIALLY DEFERRED` (`test_every_foreign_key_is_deferrable` holds the schema to it), so the
`DELETE`s run in any order inside the flush's one transaction and the keys are checked at its commit, with
every table empty. A flush that resets sequences or cascades keeps Django's `TRUNCATE`.

`DELETE` takes row locks one table after another, so a flush can deadlock with a process the test started
that is still writing (a worker, beat, the web server of a module-scoped stack): PostgreSQL aborts one of the
two, and when that is the flush it runs again from the start, as PostgreSQL's manual advises for a
transaction aborted by a deadlock. So does a flush whose commit finds a row such a process inserted into a
table already emptied, pointing at a row the flush deleted after.
"""

import time

import psycopg.errors
from django.db import DatabaseError
from django.db.backends.postgresql.operations import DatabaseOperations

ATTEMPTS = 5
RACES = (psycopg.errors.DeadlockDetected, psycopg.errors.ForeignKeyViolation)

_truncate = DatabaseOperations.sql_flush
_execute = DatabaseOperations.execute_sql_flush


def _sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
    if reset_sequences or allow_cascade:
        return _truncate(self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
    return [f"{style.SQL_KEYWORD('DELETE FROM')} {style.SQL_FIELD(self.quote_name(table))};" for table in tables]


def _execute_sql_flush(self, sql_list):
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return _execute(self, sql_list)
        except DatabaseError as error:
            if attempt == ATTEMPTS or not isinstance(error.__cause__, RACES):
                raise
            time.sleep(0.2 * attempt)


def pytest_configure(config):
    DatabaseOperations.sql_flush = _sql_flush
    DatabaseOperations.execute_sql_flush = _execute_sql_flush
