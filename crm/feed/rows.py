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
import re
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import MaxLengthValidator, MaxValueValidator, MinLengthValidator, MinValueValidator
from django.utils.dateparse import parse_datetime
from rest_framework import ISO_8601, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.fields import (
    ProhibitNullCharactersValidator,
    ProhibitSurrogateCharactersValidator,
    get_error_detail,
)
from rest_framework.settings import api_settings

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


# --- the fast path -------------------------------------------------------------------------------
#
# DRF's per-field machinery (empty values, to_internal_value, each validator, lazy error messages)
# was a third of a bulk request's time. For each field of a row class, a plain function compiled once
# accepts the values that are plainly valid and returns them exactly as the field would; anything
# else (a wrong type, a blank, null, too long, out of range, a format it does not know) is handed to
# the field itself, so every refusal and its message still come from DRF. A field of a kind, or
# with validators, the fast path does not know is always read by DRF.

SLOW = object()  # "ask the field": what a fast parser answers for a value it does not vouch for
_SURROGATE = re.compile("[\ud800-\udfff]")
_DIGITS = re.compile(r"[0-9]{1,18}")
FastParser = Callable[[Any], Any]


def _validators_within(field: serializers.Field, *kinds: type) -> bool:
    return all(type(validator) in kinds for validator in field.validators)


def _bounds_within(value: Any, low: Any, high: Any) -> bool:
    return (low is None or value >= low) and (high is None or value <= high)


def fast_parser(field: serializers.Field, *, text: bool) -> FastParser | None:
    """A function that reads the plainly valid values of `field` as `field.run_validation` would (and
    returns SLOW for any other), or None when the field is not one it knows."""
    kind = type(field)
    if field.read_only or field.source == "*":
        return None
    if kind is StrictCharField and field.trim_whitespace and _validators_within(
            field, MaxLengthValidator, MinLengthValidator, ProhibitNullCharactersValidator,
            ProhibitSurrogateCharactersValidator):
        return _char_parser(field.max_length, field.min_length)
    if kind is StrictIntegerField and _validators_within(field, MaxValueValidator, MinValueValidator):
        return _integer_parser(field.min_value, field.max_value, text=text)
    if kind is StrictDecimalField and not field.localize and _validators_within(
            field, MaxValueValidator, MinValueValidator) and field.decimal_places is not None \
            and field.max_digits is not None:
        return _decimal_parser(field)
    if kind is StrictBooleanField and not field.validators:
        return _boolean_parser(field, text=text)
    if kind is LocalDateTimeField and not field.validators and list(
            getattr(field, "input_formats", api_settings.DATETIME_INPUT_FORMATS)) == [ISO_8601]:
        return _datetime_parser(field)
    if kind is serializers.ChoiceField and not field.validators:
        return _choice_parser(field.choice_strings_to_values)
    if kind is StrictUUIDField and not field.validators:
        return _uuid_parser
    return None


def _char_parser(max_length: int | None, min_length: int | None) -> FastParser:
    def parse(data: Any) -> Any:
        if data.__class__ is not str:
            return SLOW
        value = data.strip()
        if not value or (max_length is not None and len(value) > max_length) or (
                min_length is not None and len(value) < min_length) or "\x00" in value:
            return SLOW
        if not value.isascii() and _SURROGATE.search(value):
            return SLOW
        return value

    return parse


def _integer_parser(low: int | None, high: int | None, *, text: bool) -> FastParser:
    def parse(data: Any) -> Any:
        if data.__class__ is int:
            value = data
        elif text and data.__class__ is str and _DIGITS.fullmatch(data):
            value = int(data)
        else:
            return SLOW
        return value if _bounds_within(value, low, high) else SLOW

    return parse


def _decimal_parser(field: serializers.DecimalField) -> FastParser:
    whole = field.max_digits - field.decimal_places
    pattern = re.compile(
        rf"[0-9]{{1,{whole}}}(?:\.[0-9]{{1,{field.decimal_places}}})?" if field.decimal_places
        else rf"[0-9]{{1,{whole}}}"
    )
    low, high = field.min_value, field.max_value

    def parse(data: Any) -> Any:
        if data.__class__ is int:
            data = str(data)
        elif data.__class__ is str:
            data = data.strip()
        else:
            return SLOW
        if not pattern.fullmatch(data):
            return SLOW
        try:
            value = field.quantize(Decimal(data))
        except (InvalidOperation, ValidationError):
            return SLOW
        return value if _bounds_within(value, low, high) else SLOW

    return parse


def _boolean_parser(field: serializers.BooleanField, *, text: bool) -> FastParser:
    true_values, false_values = field.TRUE_VALUES, field.FALSE_VALUES

    def parse(data: Any) -> Any:
        if data.__class__ is bool:
            return data
        if text and data.__class__ is str:
            lowered = data.lower()
            if lowered in true_values:
                return True
            if lowered in false_values:
                return False
        return SLOW

    return parse


def _datetime_parser(field: serializers.DateTimeField) -> FastParser:
    enforce_timezone = field.enforce_timezone

    def parse(data: Any) -> Any:
        if data.__class__ is not str:
            return SLOW
        try:
            parsed = parse_datetime(data.strip())
            return SLOW if parsed is None else enforce_timezone(parsed)
        except (ValueError, TypeError, OverflowError):
            return SLOW

    return parse


def _choice_parser(choices: dict[str, Any]) -> FastParser:
    def parse(data: Any) -> Any:
        if data.__class__ is str and data in choices:
            return choices[data]
        return SLOW

    return parse


def _uuid_parser(data: Any) -> Any:
    if data.__class__ is not str:
        return SLOW
    try:
        return uuid.UUID(hex=data)
    except ValueError:
        return SLOW


class Row(serializers.Serializer):
    """A strict row: unknown fields are errors (a misspelt column must not be ignored silently)."""

    # Only the fields a row gives are read: every field of a row is optional with no default (a row
    # changes what it names), so the fields it leaves out have nothing to do. A quarter of DRF's time
    # per row went to visiting the absent ones; rows arrive by the thousand. The fields a row gives are
    # read by their fast parsers first (see `fast_parser`), by DRF when the fast one says SLOW. (A
    # comment, not the docstring: the docstring is the schema's description in the API docs.)

    def _row_fields(self) -> dict[str, tuple[serializers.Field, FastParser | None, Callable | None]]:
        fields = getattr(self, "_row_fields_cache", None)
        if fields is None:
            text = _is_text(self)
            fields = {
                name: (field, fast_parser(field, text=text), getattr(self, f"validate_{name}", None))
                for name, field in self.fields.items() if not field.read_only
            }
            self._row_fields_cache = fields
        return fields

    def run_validators(self, value: Any) -> None:
        # DRF gathers the read-only fields' defaults (a walk over every field) for the serializer's
        # validators before running them, every row; a row class has none to run.
        if self.validators:
            super().run_validators(value)

    def to_internal_value(self, data: Any) -> dict:
        if not isinstance(data, Mapping):
            raise ValidationError({"non_field_errors": ["Expected an object of fields."]})
        fields = self._row_fields()
        values: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        for key, raw in data.items():
            entry = fields.get(key)
            if entry is None:
                errors[str(key)] = ["Unknown field."]
                continue
            field, fast, validate_method = entry
            try:
                value = SLOW if fast is None else fast(raw)
                if value is SLOW:
                    value = field.run_validation(raw)
                if validate_method is not None:
                    value = validate_method(value)
            except ValidationError as error:
                errors[key] = error.detail
            except DjangoValidationError as error:
                errors[key] = get_error_detail(error)
            else:
                values[field.source] = value
        for name, (field, _, _) in fields.items():
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
