"""Inserting many new rows at once: binary COPY on PostgreSQL, bulk_create on any other database.

Callers (the bookings feed, crm.feed.services; events_record) decide every row in Python; only how the new rows reach the
table differs. On PostgreSQL, ids are drawn from the table's sequence first (so the callers know
them, as after bulk_create) and the rows go in by binary COPY: no SQL text to build and parse, a
tenth of an INSERT's cost for a thousand rows. A unique violation (a concurrent writer inserted one
of the keys first) raises IntegrityError like an INSERT would, and the caller's batch is retried.
"""

from __future__ import annotations

from operator import attrgetter

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.db.models import Field, JSONField, Model
from django.db.models.base import ModelState
from psycopg.types.json import Jsonb

_column_types: dict[str, dict[str, str]] = {}


# One encoder for every value (json.dumps with `cls` builds one per call); the same text as json.dumps.
_json_dumps = DjangoJSONEncoder().encode


def objects_insert(objects: list[Model]) -> list[Model]:
    """Insert unsaved instances of one model and set their primary keys."""
    if not objects:
        return objects
    model = type(objects[0])
    if connection.vendor != "postgresql":
        return model._default_manager.bulk_create(objects)
    table = model._meta.db_table
    quote = connection.ops.quote_name
    fields = list(model._meta.concrete_fields)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [table, len(objects)]
        )
        ids = [row[0] for row in cursor.fetchall()]
    for instance, pk in zip(objects, ids, strict=True):
        instance.pk = pk
    types = _types(table)
    statement = f"COPY {quote(table)} ({', '.join(quote(field.column) for field in fields)}) FROM STDIN (FORMAT BINARY)"
    connection.ensure_connection()
    # Values as they are (psycopg's binary dumpers take datetimes, decimals, UUIDs); JSON wrapped as such.
    # Django's get_db_prep_save per value cost as much as the rest of the insert.
    values_of = attrgetter(*(field.attname for field in fields))
    json_columns = [index for index, field in enumerate(fields) if isinstance(field, JSONField)]
    # wrap_database_errors: a unique violation is Django's IntegrityError, as after an INSERT.
    with connection.wrap_database_errors, connection.connection.cursor() as cursor, cursor.copy(statement) as copy:
        copy.set_types([types[field.column] for field in fields])
        for instance in objects:
            values = values_of(instance)
            if json_columns:
                values = list(values)
                for index in json_columns:
                    values[index] = Jsonb(values[index], dumps=_json_dumps)
            copy.write_row(values)
    for instance in objects:
        instance._state.adding = False
        instance._state.db = connection.alias
    return objects


def _types(table: str) -> dict[str, str]:
    types = _column_types.get(table)
    if types is None:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT attname, atttypid::regtype::text FROM pg_attribute WHERE attrelid = %s::regclass"
                " AND attnum > 0 AND NOT attisdropped",
                [table],
            )
            types = dict(cursor.fetchall())
        _column_types[table] = types
    return types


_defaults: dict[type[Model], dict[str, object]] = {}


def model_new(model: type[Model], values: dict[str, object], related: dict[str, Model] | None = None) -> Model:
    """An unsaved instance of `model` with `values` (by attname: `customer_id`, not `customer`), other fields
    at their defaults; built without Model.__init__, whose per-field work was a third of a booking
    batch's time. For the feed's plain rows only: no field validation. `related`: instances of
    foreign keys already at hand (`{"company": company}`), so reading them costs no query.
    """
    defaults = _defaults.get(model)
    if defaults is None:
        # A field whose default is a callable (now, dict) is asked each time; the others once.
        defaults = {
            field.attname: field if callable(field.default) else field.get_default()
            for field in model._meta.concrete_fields
        }
        _defaults[model] = defaults
    instance = model.__new__(model)
    instance._state = ModelState()
    state = instance.__dict__
    for attname, default in defaults.items():
        if attname in values:
            state[attname] = values[attname]
        elif isinstance(default, Field):
            state[attname] = default.get_default()
        else:
            state[attname] = default
    if related:
        instance._state.fields_cache.update(related)
    return instance
