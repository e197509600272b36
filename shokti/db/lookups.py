"""Lookups the project's bulk readers use; registered on every field by ShoktiConfig.ready().

- `field__any_of=[...]`: `field = ANY(%s)` with one array parameter (PostgreSQL).
- `field__not_blank=True`: `field <> ''` written into the SQL, so a partial index's predicate matches.
"""

from __future__ import annotations

from django.db.models import Field, Lookup


class AnyOf(Lookup):
    """`field = ANY(%s)` with the values as one array parameter (PostgreSQL): a batch's lookup of a thousand
    keys is one short statement psycopg need not split into a thousand placeholders, and prepares once."""

    lookup_name = "any_of"
    prepare_rhs = False  # the values one by one below, not the list as one value

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        field = self.lhs.output_field
        return f"{lhs} = ANY(%s)", [*lhs_params, [field.get_prep_value(value) for value in self.rhs]]


class NotBlank(Lookup):
    """`field <> ''` with the empty string written into the SQL, not passed as a parameter: a partial
    index `WHERE field <> ''` serves a query only when the planner can see the same condition, and a
    prepared statement's generic plan cannot see through a parameter (it scanned the table instead)."""

    lookup_name = "not_blank"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} <> ''", list(lhs_params)


def lookups_register() -> None:
    Field.register_lookup(AnyOf)
    Field.register_lookup(NotBlank)
