"""Serializer helpers shared by the REST endpoints."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from django.http import QueryDict
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


class ShallowCopiedFieldsMixin:
    """Each serializer instance gets shallow copies of the declared fields instead of deep copies.

    DRF deep-copies every declared field for every serializer instance, and a field's deep copy
    re-runs its `__init__` (an `EmailField` builds its validator and regular expressions again):
    0.3 ms a request for an eight-field body, a tenth of a webhook's CPU. A shallow copy is enough
    for flat serializers whose fields are not changed after declaration: binding a copy to its
    serializer sets attributes on the copy only, and the validators and error messages it shares
    with the declared field are only read. Not for nested serializers (their own fields would be shared).
    """

    def get_fields(self):
        return {name: copy.copy(field) for name, field in self._declared_fields.items()}


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_TEXT_FIELDS = (
    serializers.CharField,
    serializers.UUIDField,
    serializers.DateTimeField,
    serializers.DateField,
    serializers.TimeField,
    serializers.DurationField,
)


def strict_type_error(field: serializers.Field, value: Any) -> str | None:
    """Why `value` (decoded JSON) is the wrong type for `field`, or None. None values are left to allow_null."""
    if value is None:
        return None
    if isinstance(field, serializers.BooleanField):
        return None if isinstance(value, bool) else "Must be true or false."
    if isinstance(field, serializers.IntegerField):
        if isinstance(value, bool) or not isinstance(value, int):
            return "Must be a whole number."
        if not INT64_MIN <= value <= INT64_MAX:
            return "Out of range."
        return None
    if isinstance(field, serializers.FloatField | serializers.DecimalField):
        return None if isinstance(value, int | float) and not isinstance(value, bool) else "Must be a number."
    if isinstance(field, serializers.ChoiceField) and not isinstance(field, serializers.MultipleChoiceField):
        if all(isinstance(choice, str) for choice in field.choices):
            return None if isinstance(value, str) else "Must be text."
        return None
    if isinstance(field, _TEXT_FIELDS):
        return None if isinstance(value, str) else "Must be text."
    if isinstance(field, serializers.ListField | serializers.MultipleChoiceField):
        if not isinstance(value, list):
            return "Must be a list."
        child = getattr(field, "child", None)
        if child is not None:
            for item in value:
                error = strict_type_error(child, item)
                if error:
                    return f"Each item: {error[0].lower()}{error[1:]}"
        return None
    if isinstance(field, serializers.DictField | serializers.Serializer):
        return None if isinstance(value, Mapping) else "Must be an object."
    if isinstance(field, serializers.ListSerializer):
        return None if isinstance(value, list) else "Must be a list."
    return None


class StrictInputMixin:
    """A serializer that refuses JSON values of the wrong type instead of coercing them.

    DRF turns a number into text for a CharField (`"phone_number": 8801712345678` is accepted as
    "8801712345678"), "5" and 5.0 into 5 for an IntegerField, 1 into True for a BooleanField. For a
    JSON body that is a client bug worth a 400 naming the field, and `{"company_id": {...}}` must
    never be read as an id. Form bodies and query strings (QueryDicts) carry only text and are
    left to the fields as before. Whole numbers are bounded to PostgreSQL's bigint.
    """

    def to_internal_value(self, data):
        if isinstance(data, Mapping) and not isinstance(data, QueryDict):
            errors = {}
            for field in self.fields.values():
                if field.read_only or field.field_name not in data:
                    continue
                error = strict_type_error(field, data[field.field_name])
                if error:
                    errors[field.field_name] = [error]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


@extend_schema_field(
    {"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "pattern": "^[0-9]+$"}], "nullable": True}
)
class IdField(serializers.Field):
    """An id given as a JSON number or as its digits in text (`7` or `"7"`): an int, or None when empty.

    Anything else (an object, a list, a boolean, a fraction, a word) is a 400, never read as an id.
    """

    default_error_messages = {"invalid": "Must be an id: a whole number, or its digits as text."}

    def __init__(self, **kwargs):
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)

    def validate_empty_values(self, data):
        if data == "":
            return True, None
        return super().validate_empty_values(data)

    def to_internal_value(self, data):
        if isinstance(data, str) and data.isascii() and data.isdigit():
            data = int(data)
        if isinstance(data, bool) or not isinstance(data, int) or not 1 <= data <= INT64_MAX:
            self.fail("invalid")
        return data

    def to_representation(self, value):
        return value
