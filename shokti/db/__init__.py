"""Database helpers of the kernel (the PostgreSQL backend is shokti.db.postgresql)."""

from __future__ import annotations

from django.db import connections


def connection_release(alias: str = "default") -> bool:
    """Give this thread's connection back to the pool while it waits on something slow (the model, a
    provider), when the database is pooled (DATABASE_POOL_MAX_SIZE) and no transaction is open; the next
    query takes one again. Without a pool it does nothing (closing would cost a new connection). True if released."""
    connection = connections[alias]
    if connection.connection is None or connection.in_atomic_block:
        return False
    if not connection.settings_dict.get("OPTIONS", {}).get("pool"):
        return False
    connection.close()
    return True
