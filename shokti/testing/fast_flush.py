"""Transactional tests empty the tables with DELETE, not TRUNCATE.

After each transactional test Django empties every table with one `TRUNCATE` of all of them: on PostgreSQL
that costs 2.5-3 s here (a new file for each of ~80 tables, made durable at commit), against ~20 ms for
`DELETE` of the few rows a test wrote, and the suite has ~150 such tests. Every foreign key Django creates is
`DEFERRABLE INITIALLY DEFERRED` (`test_every_foreign_key_is_deferrable` holds the schema to it), so the
`DELETE`s run in any order inside the flush's one transaction and the keys are checked at its commit, with
every table empty. A flush that resets sequences or cascades keeps Django's `TRUNCATE`.
"""

from django.db.backends.postgresql.operations import DatabaseOperations

_truncate = DatabaseOperations.sql_flush


def _sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
    if reset_sequences or allow_cascade:
        return _truncate(self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
    return [f"{style.SQL_KEYWORD('DELETE FROM')} {style.SQL_FIELD(self.quote_name(table))};" for table in tables]


def pytest_configure(config):
    DatabaseOperations.sql_flush = _sql_flush
