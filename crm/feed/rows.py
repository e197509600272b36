"""Typed rows of the CRM graph, shared by the REST API, the bulk endpoints, file imports and the command.

A row is parsed here (types, formats, unknown fields) and judged by the services (references, rules).
Every field is optional: what a row leaves out keeps its current value (a new row takes the default),
so replaying a partial row changes nothing it does not name.

Two modes: JSON (the API) is strict about types (`"5"` is not an integer, `1` is not a string);
text (CSV and XLSX cells, JSON lines of the command) reads every value from its text, and an empty
cell means "not given". Naive times stay naive here: the services read them in the company's time zone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.fields import get_error_detail

from crm.models import Booking, Channel, Stage
from shokti.api.exceptions import flatten_errors

LIST_SEPARATOR = ","
# Ids are 64-bit: a larger number is a field error, not a database one.
ID_MAX = 2**63 - 1


def _is_text(field: serializers.Field) -> bool:
    return bool(field.context.get("text"))


class StrictCharField(serializers.CharField):
    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or (not _is_text(self) and not isinstance(data, int)):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictDecimalField(serializers.DecimalField):
    def to_internal_value(self, data: Any) -> Decimal:
        if isinstance(data, bool) or not isinstance(data, (str, int, float, Decimal)):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    def to_internal_value(self, data: Any) -> bool:
        if not _is_text(self) and not isinstance(data, bool):
            self.fail("invalid", input=data)
        return super().to_internal_value(data)


class StrictUUIDField(serializers.UUIDField):
    def to_internal_value(self, data: Any):
        if not isinstance(data, str):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)


class LocalDateTimeField(serializers.DateTimeField):
    """ISO 8601; a time without an offset is left naive, for the service to read in the company's zone."""

    def to_internal_value(self, value: Any) -> dt.datetime:
        if not isinstance(value, str):
            self.fail("invalid", format="ISO 8601")
        return super().to_internal_value(value.strip())

    def enforce_timezone(self, value: dt.datetime) -> dt.datetime:
        return value if value.tzinfo is None else value.astimezone(dt.UTC)


class TextListField(serializers.ListField):
    """A JSON list, or in text mode a comma-separated cell."""

    def to_internal_value(self, data: Any) -> list:
        if _is_text(self) and isinstance(data, str):
            data = [item.strip() for item in data.split(LIST_SEPARATOR) if item.strip()]
        return super().to_internal_value(data)


class Row(serializers.Serializer):
    """A strict row: unknown fields are errors (a misspelt column must not be ignored silently)."""

    # Only the fields a row gives are read: every field of a row is optional with no default (a row
    # changes what it names), so the fields it leaves out have nothing to do. A quarter of DRF's time
    # per row went to visiting the absent ones; rows arrive by the thousand. (A comment, not the
    # docstring: the docstring is the schema's description in the API docs.)

    def _row_fields(self) -> dict[str, serializers.Field]:
        fields = getattr(self, "_row_fields_cache", None)
        if fields is None:
            fields = {name: field for name, field in self.fields.items() if not field.read_only}
            self._row_fields_cache = fields
        return fields

    def to_internal_value(self, data: Any) -> dict:
        if not isinstance(data, Mapping):
            raise ValidationError({"non_field_errors": ["Expected an object of fields."]})
        fields = self._row_fields()
        values: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        for key, raw in data.items():
            field = fields.get(key)
            if field is None:
                errors[str(key)] = ["Unknown field."]
                continue
            try:
                value = field.run_validation(raw)
                validate_method = getattr(self, f"validate_{key}", None)
                if validate_method is not None:
                    value = validate_method(value)
            except ValidationError as error:
                errors[key] = error.detail
            except DjangoValidationError as error:
                errors[key] = get_error_detail(error)
            else:
                values[field.source] = value
        for name, field in fields.items():
            if field.required and name not in data:
                errors[name] = [field.error_messages["required"]]
        if errors:
            raise ValidationError(errors)
        return values


class RowProblem(str):
    """A row a file could not even split into fields (a broken CSV line, a line that is not JSON)."""


def rows_validate(row_class: type[Row], rows: list[Any], *, text: bool = False) -> tuple[list[dict], dict[int, dict]]:
    """Parse `rows` with `row_class`: (valid rows with their index under "_row", {index: field errors})."""
    valid: list[dict] = []
    errors: dict[int, dict] = {}
    serializer = row_class(context={"text": text})
    for index, data in enumerate(rows):
        if isinstance(data, RowProblem):
            errors[index] = {"non_field_errors": [str(data)]}
            continue
        if text and isinstance(data, Mapping):
            data = {key: value for key, value in data.items() if value not in ("", None)}
        try:
            values = serializer.run_validation(data)
        except ValidationError as error:
            errors[index] = flatten_errors(error.detail)
            continue
        values["_row"] = index
        valid.append(values)
    return valid, errors


# --- the rows ---------------------------------------------------------------------------------


class ContactFieldsRow(Row):
    id = StrictIntegerField(required=False, min_value=1, max_value=ID_MAX, help_text="Our id: matches an existing row.")
    external_id = StrictCharField(required=False, max_length=100, allow_blank=False,
                                  help_text="Your id, unique in your company: what upserts match on.")
    name = StrictCharField(required=False, allow_blank=True, max_length=200)
    phone = StrictCharField(required=False, allow_blank=True, max_length=32,
                            help_text="E.164, or local to the company's region.")
    email = serializers.EmailField(required=False, allow_blank=True, max_length=254)
    locale = StrictCharField(required=False, max_length=10)
    timezone = StrictCharField(required=False, max_length=64)
    is_email_consented = StrictBooleanField(required=False)
    is_sms_consented = StrictBooleanField(required=False)
    is_whatsapp_consented = StrictBooleanField(required=False)

    def validate_timezone(self, value: str) -> str:
        import zoneinfo

        if value not in zoneinfo.available_timezones():
            raise ValidationError(f"Unknown time zone {value!r}.")
        return value

    def validate_email(self, value: str) -> str:
        return value.strip().lower()


class ContactRow(ContactFieldsRow):
    pass


class CustomerRow(ContactFieldsRow):
    is_active = StrictBooleanField(required=False)
    typical_service_ids = TextListField(child=StrictIntegerField(min_value=1, max_value=ID_MAX), required=False, max_length=100)
    typical_service_external_ids = TextListField(child=StrictCharField(max_length=100), required=False, max_length=100)


class WorkerRow(ContactFieldsRow):
    is_active = StrictBooleanField(required=False)
    skills = TextListField(child=StrictCharField(max_length=100), required=False, max_length=100)
    zones = TextListField(child=StrictCharField(max_length=100), required=False, max_length=100)
    ratings_avg = StrictDecimalField(max_digits=3, decimal_places=2, min_value=Decimal("0"), max_value=Decimal("5"),
                                     required=False, allow_null=True)


class ServiceRow(Row):
    id = StrictIntegerField(required=False, min_value=1, max_value=ID_MAX)
    external_id = StrictCharField(required=False, max_length=100)
    name = StrictCharField(required=False, max_length=200)
    name_bn = StrictCharField(required=False, allow_blank=True, max_length=200)
    category = StrictCharField(required=False, max_length=100)
    base_price = StrictDecimalField(max_digits=10, decimal_places=2, min_value=Decimal("0"), required=False)
    duration_minutes = StrictIntegerField(required=False, min_value=1, max_value=10080)
    is_active = StrictBooleanField(required=False)


class BookingRow(Row):
    id = StrictIntegerField(required=False, min_value=1, max_value=ID_MAX)
    external_id = StrictCharField(required=False, max_length=100)
    customer_id = StrictIntegerField(required=False, min_value=1, max_value=ID_MAX)
    customer_external_id = StrictCharField(required=False, max_length=100)
    worker_id = StrictIntegerField(required=False, min_value=1, max_value=ID_MAX, allow_null=True)
    worker_external_id = StrictCharField(required=False, max_length=100, allow_null=True)
    service_id = StrictIntegerField(required=False, min_value=1, max_value=ID_MAX)
    service_external_id = StrictCharField(required=False, max_length=100)
    status = serializers.ChoiceField(choices=Booking.Status.choices, required=False)
    scheduled_at = LocalDateTimeField(required=False)
    arrived_at = LocalDateTimeField(required=False, allow_null=True)
    started_at = LocalDateTimeField(required=False, allow_null=True)
    finished_at = LocalDateTimeField(required=False, allow_null=True)
    cancelled_at = LocalDateTimeField(required=False, allow_null=True)
    cancelled_by = serializers.ChoiceField(choices=Booking.CancelledBy.choices, required=False, allow_blank=True)
    cancellation_reason = StrictCharField(required=False, allow_blank=True, max_length=200)
    rating = StrictIntegerField(required=False, min_value=1, max_value=5, allow_null=True)
    price = StrictDecimalField(max_digits=10, decimal_places=2, min_value=Decimal("0"), required=False,
                               allow_null=True)
    zone = StrictCharField(required=False, allow_blank=True, max_length=100)
    correlation_id = StrictUUIDField(required=False, allow_null=True,
                                     help_text="The correlation id of the message that led to the booking.")
    created_at = LocalDateTimeField(required=False, help_text="When the booking was made in your system.")



class StageRow(Row):
    name = StrictCharField(max_length=100)
    kind = serializers.ChoiceField(choices=Stage.Kind.choices, required=False)
    external_id = StrictCharField(required=False, max_length=100)


class PipelineRow(Row):
    id = StrictIntegerField(required=False, min_value=1, max_value=ID_MAX)
    external_id = StrictCharField(required=False, max_length=100)
    name = StrictCharField(required=False, max_length=100)
    is_default = StrictBooleanField(required=False)
    stages = StageRow(many=True, required=False, help_text="In order. Stages not listed are kept (leads use them).")


class LeadRow(Row):
    id = StrictIntegerField(required=False, min_value=1, max_value=ID_MAX)
    external_id = StrictCharField(required=False, max_length=100)
    contact_id = StrictIntegerField(required=False, min_value=1, max_value=ID_MAX)
    contact_external_id = StrictCharField(required=False, max_length=100)
    phone = StrictCharField(required=False, max_length=32, help_text="The contact by phone (created if missing).")
    name = StrictCharField(required=False, allow_blank=True, max_length=200,
                           help_text="A new contact's name.")
    pipeline_id = StrictIntegerField(required=False, min_value=1, max_value=ID_MAX)
    pipeline_external_id = StrictCharField(required=False, max_length=100)
    stage_id = StrictIntegerField(required=False, min_value=1, max_value=ID_MAX)
    stage = StrictCharField(required=False, max_length=100, help_text="The stage by name, in the lead's pipeline.")
    channel = serializers.ChoiceField(choices=Channel.choices, required=False)
    source = StrictCharField(required=False, allow_blank=True, max_length=100)
    summary = StrictCharField(required=False, allow_blank=True)
    score = StrictIntegerField(required=False, min_value=0, max_value=100)

    def validate(self, attrs: dict) -> dict:
        if attrs.get("stage_id") is not None and attrs.get("stage"):
            raise ValidationError({"stage_id": ["Give stage_id or stage, not both."]})
        return attrs


ROW_CLASSES: dict[str, type[Row]] = {
    "contacts": ContactRow,
    "customers": CustomerRow,
    "workers": WorkerRow,
    "services": ServiceRow,
    "bookings": BookingRow,
    "leads": LeadRow,
    "pipelines": PipelineRow,
}
