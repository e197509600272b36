"""The PostgreSQL backend (ENGINE "shokti.db.postgresql"): Django's, with a cheaper health check.

Django's own backend, not django-prometheus's: that one wraps every cursor to count statements
(`django_db_execute_total` and friends), ~20 µs a statement on the hot paths, and no alert or dashboard
reads those series (ops/prometheus, ops/grafana); requests, jobs and business counters are counted
elsewhere.

With CONN_HEALTH_CHECKS Django runs `SELECT 1` before the first query of every request that reuses
a connection: a round trip per request, about 3% of a webhook's CPU on each side. A connection the
server has closed (a restart, `pg_terminate_backend`, an idle timeout, a pooler) always says so on
its socket: PostgreSQL sends its FATAL message, then the kernel the end of the stream, and the
socket of an idle connection becomes readable. So an idle connection whose socket has nothing to
read is usable without asking; one with something to read, or not idle, gets Django's `SELECT 1`.
What neither check sees quickly is a peer that vanished without a word (a host gone): `SELECT 1`
would wait for the TCP timeout as well.

Bulk inserts send each column as an array (Django's `UNNEST` strategy), and psycopg's text array
dumper escapes every quote and backslash of an element with a regex whose replacement is a template:
a Python call per match. A JSON payload has dozens of quotes, so a campaign batch's jobs, messages
and AI sessions spent ~3 % of the run's CPU there. `ListDumper` below escapes with `bytes.replace`:
the same bytes (tested against psycopg's own dumper).
"""

from __future__ import annotations

import functools
import select

from django.db.backends.postgresql import base
from psycopg import adapt, pq
from psycopg.types import array


class _QuoteEscape:
    """Stands in for psycopg's `ListDumper._re_esc` (re.compile(rb'(["\\])')): a backslash before each
    double quote and backslash, by two `bytes.replace` instead of a regex substitution with a template."""

    @staticmethod
    def sub(_replacement: bytes, data) -> bytes:
        data = data if isinstance(data, bytes | bytearray) else bytes(data)
        return data.replace(b"\\", b"\\\\").replace(b'"', b'\\"')


class ListDumper(array.ListDumper):
    """psycopg's text-format list dumper with the cheaper escape."""

    _re_esc = _QuoteEscape()


@functools.lru_cache(maxsize=8)
def _adapters_with_list_dumper(template: adapt.AdaptersMap) -> adapt.AdaptersMap:
    adapters = adapt.AdaptersMap(template)
    adapters.register_dumper(list, ListDumper)
    return adapters


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self) -> dict:
        params = super().get_connection_params()
        if params.get("context") is not None:  # Django's adapters for this time zone, shared by its connections
            params["context"] = _adapters_with_list_dumper(params["context"])
        return params

    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed:
            return False
        if connection.info.transaction_status == pq.TransactionStatus.IDLE:
            poller = select.poll()  # not select(): no limit on the descriptor's number
            try:
                poller.register(connection.fileno(), select.POLLIN)
                events = poller.poll(0)
            except (OSError, ValueError):
                return False
            if not events:
                return True
        return super().is_usable()
