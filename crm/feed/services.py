"""Writes of the bookings feed: the CRM graph created and updated by the caller's ids, a row or a batch at a time.

`rows_write(company=, kind=, rows=)` is the one way in: the REST API (one object, a bulk of up to
BULK_MAX_ROWS), console imports and `manage.py import_bookings` all call it. It parses the rows
(crm.feed.rows), then writes the valid ones of the batch in one transaction and answers per row:
created, updated, unchanged, or the row's field errors (a bad row writes nothing and stops nothing).

Matching, in this order: `id` (ours), `external_id` (the caller's, unique per company), then the
natural key where a kind has one (a contact's, customer's or worker's phone; a service's or
pipeline's name). A row found by its natural key whose match has no external id yet adopts the
row's, so data made in the console joins the feed. No check-then-act: two writers racing on one
key meet at the unique constraints, and the loser's batch is re-read and written again
(`_retrying`), now as updates.

Rules that hold however a row arrives:
- phones become E.164, read in the company's region; names and Bengali text are stored as given;
- times without an offset are read in the company's time zone and stored in UTC;
- completing a booking moves its customer's `last_booking_at` forward (never back) and records
  `booking.completed`; a new booking records `booking_created` (the attribution funnel counts it)
  at the time it was made (`created_at`, default the earlier of now and its scheduled time, so a
  year of history loaded today does not look like today's conversions);
- a customer created or changed records `customer.updated`; consent withdrawn records `opt_out`.
Those events reach the company's outbound webhook (engage's event-recorded hook).
"""

from __future__ import annotations

import datetime as dt
import decimal
import zoneinfo
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import Model, Q
from django.utils import timezone

from crm.feed.rows import ROW_CLASSES, rows_validate
from crm.models import (
    Booking,
    Channel,
    Company,
    Contact,
    Customer,
    Event,
    Lead,
    Pipeline,
    Service,
    Stage,
    User,
    Worker,
)
from crm.services import (
    BOOKING_CREATED,
    booking_created_payload,
    company_webhook_secret_set,
    consent_revoke,
    customers_last_booking_advance,
    events_record,
    lead_move_to_stage,
    phone_normalize,
    pipeline_get_or_create_default,
)
from shokti.db.copy import model_new, objects_insert

BULK_MAX_ROWS = 1000
BOOKING_COMPLETED = "booking.completed"
CUSTOMER_UPDATED = "customer.updated"
LEAD_CREATED = "lead.created"

CREATED, UPDATED, UNCHANGED, ERROR = "created", "updated", "unchanged", "error"
UPSERT, CREATE, UPDATE = "upsert", "create", "update"

CONSENT_CHANNEL = {
    "is_email_consented": Channel.EMAIL,
    "is_sms_consented": Channel.SMS,
    "is_whatsapp_consented": Channel.WHATSAPP_CLOUD,
}
CONTACT_FIELDS = ("name", "phone", "email", "locale", "timezone", *CONSENT_CHANNEL)


@dataclass
class RowResult:
    """What happened to one row of a batch (`row` is its index in the batch)."""

    row: int
    status: str
    id: int | None = None
    external_id: str = ""
    errors: dict[str, list[str]] = field(default_factory=dict)
    code: str = ""

    def as_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {"row": self.row, "status": self.status, "id": self.id, "external_id": self.external_id}
        if self.errors:
            result["errors"] = self.errors
        return result


class RowErrors(Exception):
    """A row's field errors, raised while judging it; `code` is `conflict` or `not_found` where it fits."""

    def __init__(self, errors: dict[str, list[str] | str], code: str = "invalid"):
        super().__init__(errors)
        self.errors = {key: value if isinstance(value, list) else [value] for key, value in errors.items()}
        self.code = code


def company_datetime(*, company: Company, value: dt.datetime | None) -> dt.datetime | None:
    """`value` as an aware datetime: a naive one is read in the company's time zone."""
    if value is None or timezone.is_aware(value):
        return value
    return timezone.make_aware(value, zoneinfo.ZoneInfo(company.timezone))


def rows_write(
    *,
    company: Company,
    kind: str,
    rows: list[Any],
    mode: str = UPSERT,
    text: bool = False,
    actor: User | None = None,
    source: str = "api",
    dry_run: bool = False,
    parsed: tuple[list[dict], dict[int, dict]] | None = None,
) -> list[RowResult]:
    """Parse and write a batch of `kind` rows for `company` in one transaction; one RowResult per row, in order.

    `mode`: upsert (match or create), create (a match is a conflict) or update (no match is not found).
    `text`: the rows come from a file (every value a string, empty means not given).
    `dry_run`: do everything, then roll back: what the import preview shows.
    `parsed`: what `rows_validate` made of `rows`, when it was done already (in another process).
    """
    if kind not in WRITERS:
        raise ValidationError({"kind": f"Unknown kind {kind!r}."})
    valid, parse_errors = parsed if parsed is not None else rows_validate(ROW_CLASSES[kind], rows, text=text)
    results: dict[int, RowResult] = {
        index: RowResult(row=index, status=ERROR, errors=errors, code="invalid",
                         external_id=str(_get(rows[index], "external_id") or ""))
        for index, errors in parse_errors.items()
    }
    if valid:
        writer = WRITERS[kind]
        written = _retrying(
            lambda: writer(company=company, rows=valid, mode=mode, actor=actor, source=source), dry_run=dry_run
        )
        results.update({result.row: result for result in written})
    return [results[index] for index in range(len(rows))]


def _get(data: Any, key: str) -> Any:
    return data.get(key) if isinstance(data, dict) else None


def _retrying(write: Callable[[], list[RowResult]], *, dry_run: bool) -> list[RowResult]:
    # A concurrent writer may insert one of our keys between our read and our insert: its unique
    # constraint stops us, the batch rolls back, and the second pass finds the row and updates it.
    for attempt in range(3):
        try:
            with transaction.atomic():
                results = write()
                if dry_run:
                    transaction.set_rollback(True)
                return results
        except IntegrityError:
            if attempt == 2:
                raise
        except OperationalError as error:
            # Two batches locking the same rows in another order: PostgreSQL stops one; it goes again.
            if attempt == 2 or getattr(error.__cause__, "sqlstate", None) != "40P01":
                raise
    raise AssertionError("unreachable")


# --- matching ---------------------------------------------------------------------------------


def among(field: str, values: Iterable) -> Q:
    """`field` is one of `values`: `= ANY(array)` on PostgreSQL, `IN (...)` elsewhere."""
    values = list(values)
    if connection.vendor == "postgresql" and values:
        return Q(**{f"{field}__any_of": values})
    return Q(**{f"{field}__in": values})


def by_keys(queryset, *, ids: Iterable = (), external_ids: Iterable = (), natural_lookup: str = "",
            naturals: Iterable = (), company: Company | None = None) -> list:
    """Rows of `queryset` with one of `ids`, `external_ids` or natural keys, each once.

    One indexed query per kind of key, never one query with OR: the company condition stays outside
    an OR, and PostgreSQL then cannot use the (company, external_id) index for its arm (a batch on a
    table of a million bookings scanned it). `external_id <> ''` is spelt out: it is the predicate of
    the partial unique index, which the planner does not infer from a list of values (and written as
    SQL, not a parameter: `NotBlank`).

    `company` (the one `queryset` is filtered by): on PostgreSQL, external ids are then looked up one
    by one through that index (`_by_external_ids`), whatever the table's statistics say.
    """
    parts = []
    found, seen = [], set()
    if ids:
        parts.append(among("pk", ids))
    if external_ids:
        rows = _by_external_ids(queryset, external_ids=external_ids, company=company)
        if rows is None:
            parts.append(among("external_id", external_ids) & Q(external_id__not_blank=True))
        else:
            for row in rows:
                key = row[0] if isinstance(row, tuple) else row.pk
                if key not in seen:
                    seen.add(key)
                    found.append(row)
    if naturals:
        parts.append(among(natural_lookup, naturals) & Q(**{f"{natural_lookup}__not_blank": True}))
    # No ORDER BY (the models order by -id): with one, a prepared statement's generic plan walked the
    # primary key of a million bookings to keep the order instead of looking the keys up.
    queryset = queryset.order_by()
    for part in parts:
        for row in queryset.filter(part):
            key = row[0] if isinstance(row, tuple) else row.pk
            if key not in seen:
                seen.add(key)
                found.append(row)
    return found


def _by_external_ids(queryset, *, external_ids: Iterable, company: Company | None) -> list | None:
    """`queryset`'s rows with these external ids, on PostgreSQL: one probe of the (company, external_id)
    index per id (a LATERAL join), so the plan cannot depend on statistics. None: ask the ORM instead.

    `company_id = %s AND external_id = ANY(%s)` lets the planner choose, and where the table's
    statistics are stale (a first load, a cluster without autovacuum) it chose to read every booking
    of the company and filter them: 0.2 s a batch at 266,000 bookings, growing with the table. Only
    for plain querysets (all columns, or `values_list` of columns) of a model with `company` and
    `external_id`; FOR UPDATE is kept, and locks only the rows found.
    """
    if company is None or connection.vendor != "postgresql":
        return None
    query = queryset.query
    model = queryset.model
    if query.select_related or len(query.where.children) != 1 or query.where.negated or query.distinct \
            or query.extra or query.annotations:
        return None
    names = {field.attname: field.column for field in model._meta.concrete_fields}
    if "company_id" not in names or "external_id" not in names:
        return None
    # The queryset's one condition must be the company (so the rows returned are exactly its rows).
    condition = query.where.children[0]
    if getattr(getattr(condition, "lhs", None), "target", None) is not model._meta.get_field("company") or \
            getattr(condition, "rhs", None) not in (company, company.pk):
        return None
    quote = connection.ops.quote_name
    values_fields = list(getattr(query, "values_select", ()) or ())
    if values_fields:
        columns = [names["id"] if name == "pk" else names.get(name) for name in values_fields]
        if None in columns:
            return None
        select = ", ".join(f"found.{quote(column)}" for column in columns)
        inner_select = ", ".join(f"row_.{quote(column)}" for column in columns)
    else:
        select, inner_select = "found.*", "row_.*"
    lock = ""
    if query.select_for_update:
        if query.select_for_update_nowait or query.select_for_update_skip_locked or query.select_for_no_key_update:
            return None
        lock = " FOR UPDATE"
    sql = (
        f"SELECT {select} FROM unnest(%s::varchar[]) AS wanted(external_id) CROSS JOIN LATERAL ("
        f"SELECT {inner_select} FROM {quote(model._meta.db_table)} AS row_"
        f" WHERE row_.{quote(names['company_id'])} = %s AND row_.{quote(names['external_id'])} = wanted.external_id"
        f" AND row_.{quote(names['external_id'])} <> '' LIMIT 1{lock}) AS found"
    )
    params = [sorted(set(external_ids)), company.pk]
    if not values_fields:
        return list(model._default_manager.raw(sql, params))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if getattr(queryset, "_fields", None) and len(values_fields) == 1 and queryset._iterable_class.__name__ == (
            "FlatValuesListIterable"):
        return [row[0] for row in rows]
    return [tuple(row) for row in rows]


def _match(
    *,
    rows: list[dict],
    queryset,
    natural_key: str | None = None,
    natural_lookup: str | None = None,
    row_natural: Callable[[dict], Any] | None = None,
    company: Company | None = None,
) -> tuple[dict[int, Model], dict[int, RowErrors]]:
    """Existing rows for each row (by id, external_id, then natural key) and rows with matching errors.

    The matches are locked (SELECT ... FOR UPDATE on PostgreSQL) until the batch commits. Two batches
    locking common rows in another order may deadlock: PostgreSQL stops one, `_retrying` runs it again.
    """
    matches: dict[int, Model] = {}
    errors: dict[int, RowErrors] = {}
    ids = {row["id"] for row in rows if row.get("id")}
    external_ids = {row["external_id"] for row in rows if row.get("external_id") and not row.get("id")}
    naturals: set = set()
    if natural_key:
        naturals = {row_natural(row) for row in rows if not row.get("id") and row_natural(row)}
    found = by_keys(queryset.select_for_update(of=("self",)), ids=ids, external_ids=external_ids,
                    natural_lookup=natural_lookup or "", naturals=naturals, company=company)
    by_id = {row.pk: row for row in found}
    by_external = {row.external_id: row for row in found if row.external_id}
    by_natural: dict = {}
    if natural_key:
        for row in found:
            value = _attribute(row, natural_lookup)
            if value:
                by_natural[value] = row
    seen: dict[Any, int] = {}
    for row in rows:
        index = row["_row"]
        key_of_row = ("id", row["id"]) if row.get("id") else ("external_id", row["external_id"]) if row.get(
            "external_id") else (natural_key, row_natural(row)) if natural_key and row_natural(row) else None
        if key_of_row is not None:
            if key_of_row in seen:
                errors[index] = RowErrors({key_of_row[0]: f"Also in row {seen[key_of_row] + 1} of this batch."})
                continue
            seen[key_of_row] = index
        if row.get("id"):
            match = by_id.get(row["id"])
            if match is None:
                errors[index] = RowErrors({"id": "No such row in your company."}, code="not_found")
                continue
            matches[index] = match
            continue
        match = by_external.get(row.get("external_id") or "")
        if match is None and natural_key and row_natural(row):
            candidate = by_natural.get(row_natural(row))
            if candidate is not None:
                if candidate.external_id and row.get("external_id") and candidate.external_id != row["external_id"]:
                    errors[index] = RowErrors(
                        {natural_key: f"Taken by the row with external_id {candidate.external_id!r}."}, code="conflict"
                    )
                    continue
                match = candidate
        if match is not None:
            matches[index] = match
    return matches, errors


def _attribute(row: Model, lookup: str) -> Any:
    value: Any = row
    for part in lookup.split("__"):
        value = getattr(value, part, None)
    return value


def _row_match(*, index: int, matches: dict, match_errors: dict, mode: str) -> Any:
    """The row's existing object (None: a new one), or RowErrors: its key matched wrongly, or the mode refuses
    it (CREATE of an existing object, UPDATE of a missing one)."""
    if index in match_errors:
        raise match_errors[index]
    matched = matches.get(index)
    if mode == CREATE and matched is not None:
        raise RowErrors({"external_id": "Exists already: PUT it to update it."}, code="conflict")
    if mode == UPDATE and matched is None:
        raise RowErrors({"id": "Not found."}, code="not_found")
    return matched


def _error(index: int, error: RowErrors, row: dict) -> RowResult:
    return RowResult(row=index, status=ERROR, errors=error.errors, code=error.code,
                     external_id=row.get("external_id") or "")


def _apply(instance: Model, values: dict[str, Any]) -> list[str]:
    """Set `values` on `instance`; the names of the fields that changed."""
    changed = []
    for name, value in values.items():
        if getattr(instance, name) != value:
            setattr(instance, name, value)
            changed.append(name)
    return changed


def _phone(*, company: Company, row: dict) -> None:
    """Normalise the row's phone in place (E.164 in the company's region); RowErrors if it is not one."""
    if row.get("phone"):
        try:
            row["phone"] = phone_normalize(phone=row["phone"], region=company.default_region)
        except ValidationError as error:
            raise RowErrors({"phone": error.message_dict["phone"]}) from None


# --- contacts and their profiles (customers, workers) -----------------------------------------


@dataclass(frozen=True)
class _Profile:
    model: type[Model] | None  # None: the contact itself
    fields: tuple[str, ...]
    event_type: str = ""


_PROFILES = {
    "contacts": _Profile(None, ()),
    "customers": _Profile(Customer, ("is_active",), CUSTOMER_UPDATED),
    "workers": _Profile(Worker, ("is_active", "skills", "zones", "ratings_avg")),
}


def _write_people(*, kind: str, company: Company, rows: list[dict], mode: str, actor, source: str) -> list[RowResult]:
    profile = _PROFILES[kind]
    results: list[RowResult] = []
    now = timezone.now()
    judged: list[dict] = []
    for row in rows:
        try:
            _phone(company=company, row=row)
        except RowErrors as error:
            results.append(_error(row["_row"], error, row))
            continue
        judged.append(row)
    if profile.model is None:
        queryset = Contact.objects.filter(company=company)
        natural_lookup = "phone"
    else:
        queryset = profile.model.objects.filter(company=company).select_related("contact")
        natural_lookup = "contact__phone"
    matches, match_errors = _match(
        rows=judged, queryset=queryset, natural_key="phone", natural_lookup=natural_lookup,
        row_natural=lambda row: row.get("phone") or None,
    )
    # Contacts that already have the phones of new rows (a lead's contact becomes a customer).
    new_phones = {row["phone"] for row in judged if row["_row"] not in matches and row.get("phone")}
    changed_phones = {
        row["phone"] for row in judged
        if row["_row"] in matches and row.get("phone") and row["phone"] != _contact_of(matches[row["_row"]]).phone
    }
    contacts_by_phone = {
        contact.phone: contact
        for contact in Contact.objects.filter(among("phone", new_phones | changed_phones), company=company,
                                              phone__not_blank=True).order_by()
        .select_related(*([kind[:-1]] if profile.model is not None else []))
    }
    service_ids = _typical_services(company=company, rows=judged) if kind == "customers" else {}

    contacts_new: list[Contact] = []
    contacts_changed: dict[int, tuple[Contact, set[str]]] = {}
    profiles_new: list[tuple[dict, Model, Contact]] = []
    profiles_changed: list[tuple[dict, Model, list[str]]] = []
    unchanged: list[tuple[dict, Model]] = []
    revocations: list[tuple[Contact, str]] = []
    claimed_contacts: dict[int, int] = {}
    phones_claimed: dict[str, int] = {}
    contacts_created: list[tuple[dict, Contact]] = []
    for row in judged:
        index = row["_row"]
        try:
            matched = _row_match(index=index, matches=matches, match_errors=match_errors, mode=mode)
            contact_values = {name: row[name] for name in CONTACT_FIELDS if name in row}
            profile_values = {name: row[name] for name in profile.fields if name in row}
            if row.get("external_id"):
                (contact_values if profile.model is None else profile_values)["external_id"] = row["external_id"]
            if "typical_service_ids" in row or "typical_service_external_ids" in row:
                row["_services"] = _services_of_row(row, service_ids)
            if matched is None:
                contact = None
                if row.get("phone"):
                    contact = contacts_by_phone.get(row["phone"])
                    if contact is not None and profile.model is not None and hasattr(contact, kind[:-1]):
                        raise RowErrors({"phone": f"This phone belongs to another {kind[:-1]}."}, code="conflict")
                    if contact is not None and profile.model is None:
                        raise RowErrors({"phone": "Another contact has this phone."}, code="conflict")
                _phone_claim(phones_claimed, row, index)
                if contact is None:
                    if not row.get("phone") and not row.get("email"):
                        raise RowErrors({"phone": "A new row needs a phone or an email."})
                    contact = Contact(company=company, timezone=company.timezone, **{
                        name: value for name, value in contact_values.items() if name not in CONSENT_CHANNEL
                    })
                    contact.consent_updated_at = None
                    contacts_new.append(contact)
                elif contact.pk in claimed_contacts:
                    raise RowErrors({"phone": f"Also in row {claimed_contacts[contact.pk] + 1} of this batch."})
                if contact.pk is not None:
                    claimed_contacts[contact.pk] = index
                    changed = _contact_changes(contact, contact_values, revocations, now)
                    if changed:
                        contacts_changed[contact.pk] = (contact, changed)
                for name, value in contact_values.items():
                    if name in CONSENT_CHANNEL and contact.pk is None:
                        setattr(contact, name, value)
                        contact.consent_updated_at = now
                if profile.model is None:
                    if contact.pk is not None:  # cannot happen: a contact with the phone matched above
                        raise RowErrors({"phone": "Another contact has this phone."}, code="conflict")
                    contacts_created.append((row, contact))
                    continue
                instance = profile.model(company=company, **profile_values, created_at=now, updated_at=now)
                profiles_new.append((row, instance, contact))
                continue
            contact = _contact_of(matched)
            if row.get("phone") and row["phone"] != contact.phone:
                other = contacts_by_phone.get(row["phone"])
                if other is not None and other.pk != contact.pk:
                    raise RowErrors({"phone": "Another contact has this phone."}, code="conflict")
                _phone_claim(phones_claimed, row, index)
            changed_contact = _contact_changes(contact, contact_values, revocations, now)
            if changed_contact:
                contacts_changed[contact.pk] = (contact, changed_contact)
            changed = sorted(changed_contact)
            if profile.model is not None:
                changed += _apply(matched, profile_values)
                if "_services" in row:
                    current = set(matched.typical_services.values_list("pk", flat=True))
                    if current != set(row["_services"]):
                        changed.append("typical_services")
            revoked = [name for (revoked_contact, name) in revocations if revoked_contact.pk == contact.pk]
            if changed or revoked:
                profiles_changed.append((row, matched, changed + revoked))
            else:
                unchanged.append((row, matched))
        except RowErrors as error:
            results.append(_error(index, error, row))

    # Writes: contacts first (profiles point at them), then profiles, then what follows from them.
    Contact.objects.bulk_create(contacts_new)
    for contact, changed in contacts_changed.values():
        contact.save(update_fields=[*changed, "updated_at"])
    for contact, name in revocations:
        consent_revoke(contact=contact, channel=CONSENT_CHANNEL[name], reason="api", source=source)
    if profile.model is None:
        for row, contact in contacts_created:
            results.append(RowResult(row=row["_row"], status=CREATED, id=contact.pk, external_id=contact.external_id))
        for row, matched in unchanged:
            results.append(RowResult(row=row["_row"], status=UNCHANGED, id=matched.pk, external_id=matched.external_id))
        for row, matched, _ in profiles_changed:
            results.append(RowResult(row=row["_row"], status=UPDATED, id=matched.pk, external_id=matched.external_id))
        return results
    for _row, instance, contact in profiles_new:
        instance.contact = contact
    profile.model.objects.bulk_create([instance for _, instance, _ in profiles_new])
    for _row, instance, changed in profiles_changed:
        profile_changed = [name for name in changed if name in profile.fields or name == "external_id"]
        instance.updated_at = now
        instance.save(update_fields=[*profile_changed, "updated_at"])
    if kind == "customers":
        _typical_services_set(
            [(instance, row["_services"]) for row, instance, _ in profiles_new if "_services" in row]
            + [(instance, row["_services"]) for row, instance, changed in profiles_changed if "typical_services" in changed],
        )
    events = []
    for row, instance, _contact in profiles_new:
        results.append(RowResult(row=row["_row"], status=CREATED, id=instance.pk, external_id=instance.external_id))
        if profile.event_type:
            events.append(_profile_event(profile, company, instance, created=True, fields=sorted(row), source=source,
                                         actor=actor))
    for row, instance, changed in profiles_changed:
        results.append(RowResult(row=row["_row"], status=UPDATED, id=instance.pk, external_id=instance.external_id))
        if profile.event_type:
            events.append(_profile_event(profile, company, instance, created=False, fields=changed, source=source,
                                         actor=actor))
    for row, instance in unchanged:
        results.append(RowResult(row=row["_row"], status=UNCHANGED, id=instance.pk, external_id=instance.external_id))
    if events:
        events_record(events=events)
    return results


def _phone_claim(claimed: dict[str, int], row: dict, index: int) -> None:
    """Two rows of one batch giving one phone to two people: the second is refused (one phone, one contact)."""
    phone = row.get("phone")
    if not phone:
        return
    if phone in claimed and claimed[phone] != index:
        raise RowErrors({"phone": f"Also in row {claimed[phone] + 1} of this batch."})
    claimed[phone] = index


def _contact_of(matched: Model) -> Contact:
    return matched if isinstance(matched, Contact) else matched.contact


def _contact_changes(contact: Contact, values: dict, revocations: list, now: dt.datetime) -> set[str]:
    """Apply contact values; consent withdrawn is left to `consent_revoke` (it records the opt-out)."""
    changed: set[str] = set()
    for name, value in values.items():
        if getattr(contact, name) == value:
            continue
        if name in CONSENT_CHANNEL:
            if value is False:
                revocations.append((contact, name))
                continue
            contact.consent_updated_at = now
            changed.add("consent_updated_at")
        setattr(contact, name, value)
        changed.add(name)
    return changed


def _profile_event(profile: _Profile, company: Company, instance: Model, *, created: bool, fields: Iterable[str],
                   source: str, actor) -> Event:
    fields = sorted({name for name in fields if not name.startswith("_") and name not in ("id",)})
    event = Event(
        company=company, type=profile.event_type, contact_id=instance.contact_id, source=source, actor=actor,
        payload={"customer_id": instance.pk, "external_id": instance.external_id, "created": created,
                 "fields": fields, "is_active": instance.is_active},
    )
    event.target_type = ContentType.objects.get_for_model(profile.model)
    event.target_id = str(instance.pk)
    return event


def _typical_services(*, company: Company, rows: list[dict]) -> dict[tuple[str, Any], int]:
    ids = {value for row in rows for value in row.get("typical_service_ids", [])}
    external_ids = {value for row in rows for value in row.get("typical_service_external_ids", [])}
    if not ids and not external_ids:
        return {}
    found = by_keys(Service.objects.filter(company=company).values_list("pk", "external_id"), ids=ids,
                    external_ids=external_ids, company=company)
    mapping: dict[tuple[str, Any], int] = {}
    for pk, external_id in found:
        mapping[("id", pk)] = pk
        if external_id:
            mapping[("external_id", external_id)] = pk
    return mapping


def _services_of_row(row: dict, mapping: dict) -> list[int]:
    services, unknown = [], []
    for key, values in (("id", row.get("typical_service_ids", [])),
                        ("external_id", row.get("typical_service_external_ids", []))):
        for value in values:
            if (key, value) in mapping:
                services.append(mapping[(key, value)])
            else:
                unknown.append(str(value))
    if unknown:
        raise RowErrors({"typical_services": f"No such service in your company: {', '.join(unknown)}."})
    return sorted(set(services))


def _typical_services_set(pairs: list[tuple[Customer, list[int]]]) -> None:
    if not pairs:
        return
    through = Customer.typical_services.through
    through.objects.filter(customer_id__in=[customer.pk for customer, _ in pairs]).delete()
    through.objects.bulk_create(
        [through(customer_id=customer.pk, service_id=service_id) for customer, services in pairs
         for service_id in services]
    )


# --- services -----------------------------------------------------------------------------------


SERVICE_FIELDS = ("external_id", "name", "name_bn", "category", "base_price", "duration_minutes", "is_active")


def _write_services(*, company: Company, rows: list[dict], mode: str, actor, source: str) -> list[RowResult]:
    now = timezone.now()
    matches, match_errors = _match(
        rows=rows, queryset=Service.objects.filter(company=company), natural_key="name", natural_lookup="name",
        row_natural=lambda row: row.get("name"), company=company,
    )
    names_taken = dict(
        Service.objects.filter(company=company, name__in={row["name"] for row in rows if row.get("name")})
        .values_list("name", "pk")
    )
    results, new, changed_rows = [], [], []
    names_in_batch: dict[str, int] = {}
    for row in rows:
        index = row["_row"]
        try:
            matched = _row_match(index=index, matches=matches, match_errors=match_errors, mode=mode)
            values = {name: row[name] for name in SERVICE_FIELDS if name in row}
            if row.get("name"):
                if row["name"] in names_in_batch:
                    raise RowErrors({"name": f"Also in row {names_in_batch[row['name']] + 1} of this batch."})
                names_in_batch[row["name"]] = index
            if matched is None:
                missing = [name for name in ("name", "category", "base_price") if name not in row]
                if missing:
                    raise RowErrors({name: "Required for a new service." for name in missing})
                if row["name"] in names_taken:
                    raise RowErrors({"name": "Another service has this name."}, code="conflict")
                new.append((row, Service(company=company, updated_at=now, **values)))
                continue
            if row.get("name") and names_taken.get(row["name"], matched.pk) != matched.pk:
                raise RowErrors({"name": "Another service has this name."}, code="conflict")
            changed = _apply(matched, values)
            if changed:
                matched.updated_at = now
                changed_rows.append((row, matched, changed))
            else:
                results.append(RowResult(row=index, status=UNCHANGED, id=matched.pk, external_id=matched.external_id))
        except RowErrors as error:
            results.append(_error(index, error, row))
    Service.objects.bulk_create([service for _, service in new])
    for row, service in new:
        results.append(RowResult(row=row["_row"], status=CREATED, id=service.pk, external_id=service.external_id))
    for row, service, changed in changed_rows:
        service.save(update_fields=[*changed, "updated_at"])
        results.append(RowResult(row=row["_row"], status=UPDATED, id=service.pk, external_id=service.external_id))
    return results


# --- bookings -----------------------------------------------------------------------------------


BOOKING_TIMES = ("scheduled_at", "arrived_at", "started_at", "finished_at", "cancelled_at", "created_at")
BOOKING_FIELDS = (
    "external_id", "status", "scheduled_at", "arrived_at", "started_at", "finished_at", "cancelled_at",
    "cancelled_by", "cancellation_reason", "rating", "price", "zone", "correlation_id", "created_at",
)
BOOKING_UPDATE_FIELDS = (*BOOKING_FIELDS, "customer_id", "worker_id", "service_id", "updated_at")


def _references(*, model: type[Model], company: Company, rows: list[dict], name: str) -> dict[tuple[str, Any], tuple]:
    """{("id", pk) or ("external_id", value): (pk, contact_id or None, external_id)} of the rows `name` references."""
    ids = {row[f"{name}_id"] for row in rows if row.get(f"{name}_id")}
    external_ids = {row[f"{name}_external_id"] for row in rows if row.get(f"{name}_external_id")}
    if not ids and not external_ids:
        return {}
    columns = ["pk", "external_id", "contact_id"] if name in ("customer", "worker") else ["pk", "external_id"]
    found: dict[tuple[str, Any], tuple] = {}
    for values in by_keys(model.objects.filter(company=company).values_list(*columns), ids=ids,
                          external_ids=external_ids, company=company):
        reference = (values[0], values[2] if len(values) > 2 else None, values[1])
        found[("id", values[0])] = reference
        if values[1]:
            found[("external_id", values[1])] = reference
    return found


def _reference(row: dict, name: str, found: dict, *, required: bool) -> tuple | bool | None:
    """The (pk, contact_id, external_id) a row names for `name`; None to clear it; False when the row does not say."""
    cleared = (f"{name}_id" in row and row[f"{name}_id"] is None) or (
        f"{name}_external_id" in row and row[f"{name}_external_id"] is None
    )
    if cleared:
        if required:
            raise RowErrors({f"{name}_id": "Required."})
        return None
    if row.get(f"{name}_id"):
        key, label = ("id", row[f"{name}_id"]), f"{name}_id"
        given = row.get(f"{name}_external_id")
        if key in found and given and found[key][2] != given:
            # Both given (an exported file carries both): they must name the same row.
            raise RowErrors({f"{name}_external_id": f"Names another {name} than {name}_id."})
    elif row.get(f"{name}_external_id"):
        key, label = ("external_id", row[f"{name}_external_id"]), f"{name}_external_id"
    else:
        return False
    if key not in found:
        raise RowErrors({label: f"No such {name} in your company."})
    return found[key]


def _write_bookings(*, company: Company, rows: list[dict], mode: str, actor, source: str) -> list[RowResult]:
    now = timezone.now()
    zone = zoneinfo.ZoneInfo(company.timezone)
    matches, match_errors = _match(rows=rows, queryset=Booking.objects.filter(company=company), company=company)
    customers = _references(model=Customer, company=company, rows=rows, name="customer")
    workers = _references(model=Worker, company=company, rows=rows, name="worker")
    services = _references(model=Service, company=company, rows=rows, name="service")
    contact_of_customer = {reference[0]: reference[1] for reference in customers.values()}
    contact_of_customer.update(
        Customer.objects.filter(among("pk", {booking.customer_id for booking in matches.values()}
                                      - set(contact_of_customer))).order_by()
        .values_list("pk", "contact_id")
    )
    results: list[RowResult] = []
    new: list[tuple[dict, Booking]] = []
    changed_rows: list[tuple[dict, Booking, list[str], str]] = []
    for row in rows:
        index = row["_row"]
        try:
            matched = _row_match(index=index, matches=matches, match_errors=match_errors, mode=mode)
            for name in BOOKING_TIMES:
                value = row.get(name)
                # company_datetime, with the zone looked up once a batch
                if value is not None and value.utcoffset() is None:
                    row[name] = value.replace(tzinfo=zone)
            values = {name: row[name] for name in BOOKING_FIELDS if name in row}
            if "cancelled_by" in values and values["cancelled_by"] is None:
                values["cancelled_by"] = ""
            errors: dict[str, list[str] | str] = {}
            for name, found, required in (("customer", customers, True), ("worker", workers, False),
                                          ("service", services, True)):
                try:
                    reference = _reference(row, name, found, required=required)
                except RowErrors as error:
                    errors.update(error.errors)
                    continue
                if reference is not False:
                    values[f"{name}_id"] = reference[0] if reference else None
            if errors:
                raise RowErrors(errors)
            if matched is None:
                missing = [label for label, name in (("customer_id", "customer_id"), ("service_id", "service_id"),
                                                     ("scheduled_at", "scheduled_at")) if values.get(name) is None]
                if missing:
                    raise RowErrors({name: "Required for a new booking." for name in missing})
                booking = model_new(Booking, {"company_id": company.pk, "updated_at": now, **values})
                _booking_status_defaults(booking, now=now)
                if "created_at" not in values:
                    booking.created_at = min(now, booking.scheduled_at)
                new.append((row, booking))
                continue
            previous_status = matched.status
            changed = _apply(matched, values)
            if "status" in changed:
                changed += [name for name in _booking_status_defaults(matched, now=now) if name not in changed]
            if changed:
                matched.updated_at = now
                changed_rows.append((row, matched, changed, previous_status))
            else:
                results.append(RowResult(row=index, status=UNCHANGED, id=matched.pk, external_id=matched.external_id))
        except RowErrors as error:
            results.append(_error(index, error, row))

    objects_insert([booking for _, booking in new])
    if changed_rows:
        Booking.objects.bulk_update([booking for _, booking, _, _ in changed_rows], BOOKING_UPDATE_FIELDS)
    finished: dict[int, dt.datetime] = {}
    events: list[Event] = []
    booking_type = ContentType.objects.get_for_model(Booking)
    reported = _bookings_reported_by_app(company=company, bookings=[booking for _, booking in new],
                                         contact_of_customer=contact_of_customer)
    for row, booking in new:
        results.append(RowResult(row=row["_row"], status=CREATED, id=booking.pk, external_id=booking.external_id))
        _finished_note(finished, booking)
        if booking.pk in reported:
            continue
        events.append(model_new(Event, {
            "company_id": company.pk, "type": BOOKING_CREATED, "contact_id": contact_of_customer.get(booking.customer_id),
            "payload": booking_created_payload(booking_id=booking.pk, service_id=booking.service_id,
                                               scheduled_at=booking.scheduled_at, status=booking.status),
            "source": source, "actor_id": actor.pk if actor else None, "correlation_id": booking.correlation_id,
            "occurred_at": booking.created_at, "target_type_id": booking_type.pk, "target_id": str(booking.pk),
        }, related={"company": company}))
    for row, booking, changed, previous_status in changed_rows:
        results.append(RowResult(row=row["_row"], status=UPDATED, id=booking.pk, external_id=booking.external_id))
        if booking.status == Booking.Status.COMPLETED and previous_status != Booking.Status.COMPLETED:
            events.append(Event(
                company=company, type=BOOKING_COMPLETED, contact_id=contact_of_customer.get(booking.customer_id),
                payload=booking_completed_payload(booking=booking), source=source, actor=actor,
                target_type=booking_type, target_id=str(booking.pk),
            ))
        if {"status", "finished_at", "customer_id"} & set(changed):
            _finished_note(finished, booking)
    customers_last_booking_advance(finished_by_customer=finished)
    if events:
        events_record(events=events)
    return results


# The app can only report a booking id it was shown, so an early report concerns a booking made one at a
# time (the console, the API); a bulk load makes ids nobody has seen. Checking every contact of a large
# batch read all their booking events (a customer's history grows with each booking).
APP_REPORT_CHECK_MAX = 50


def _bookings_reported_by_app(*, company: Company, bookings: list[Booking], contact_of_customer: dict) -> set[int]:
    """Ids of new bookings whose `booking_created` the customer app reported first (see crm.services.event_record):
    one event per booking, whoever reports it first."""
    contacts = {contact_of_customer.get(booking.customer_id) for booking in bookings} - {None}
    if not contacts or len(bookings) > APP_REPORT_CHECK_MAX:
        return set()
    # The app's reports are the booking_created events not about a booking row (the CRM's own are):
    # a few per contact, read by the contact index, and matched here.
    reported = Event.objects.filter(
        among("contact__id", contacts), company=company, type=BOOKING_CREATED,
    ).exclude(target_type=ContentType.objects.get_for_model(Booking)).order_by().values_list("payload", flat=True)
    ids = {booking.pk for booking in bookings}
    booking_ids = (str(payload.get("booking_id", "")) for payload in reported if isinstance(payload, dict))
    return {int(value) for value in booking_ids if value.isdigit() and int(value) in ids}


def booking_rows_write(
    *, company: Company, rows: list[dict[str, Any]], mode: str = UPSERT, actor: User | None = None,
    source: str = "admin",
) -> list[RowResult]:
    """Bookings from Python values (a form, a service) rather than JSON or text: checked by the model's
    field validators, then written by the same writer as every other row."""
    typed, refused = [], {}
    for index, row in enumerate(rows):
        fields = {name: value for name, value in row.items() if name in BOOKING_FIELDS and name != "external_id"}
        try:
            Booking(**fields).clean_fields(exclude=[
                name for name in (f.name for f in Booking._meta.fields) if name not in fields
            ])
        except ValidationError as error:
            refused[index] = RowResult(row=index, status=ERROR, errors=error.message_dict, code="invalid")
            continue
        typed.append({**row, "_row": index})
    written = {result.row: result for result in _retrying(
        lambda: _write_bookings(company=company, rows=typed, mode=mode, actor=actor, source=source), dry_run=False
    )} if typed else {}
    return [refused.get(index) or written[index] for index in range(len(rows))]


def _booking_status_defaults(booking: Booking, *, now: dt.datetime) -> list[str]:
    """A completed booking has a finish time and a cancelled one a cancellation time (now, unless given)."""
    if booking.status == Booking.Status.COMPLETED and booking.finished_at is None:
        booking.finished_at = now
        return ["finished_at"]
    if booking.status == Booking.Status.CANCELLED and booking.cancelled_at is None:
        booking.cancelled_at = now
        return ["cancelled_at"]
    return []


def _finished_note(finished: dict[int, dt.datetime], booking: Booking) -> None:
    if booking.status == Booking.Status.COMPLETED and booking.finished_at is not None:
        latest = finished.get(booking.customer_id)
        if latest is None or booking.finished_at > latest:
            finished[booking.customer_id] = booking.finished_at


def booking_completed_payload(*, booking: Booking) -> dict[str, Any]:
    """The payload of `booking.completed` (and the `data` of its webhook delivery)."""
    return {
        "booking_id": booking.pk,
        "external_id": booking.external_id,
        "customer_id": booking.customer_id,
        "worker_id": booking.worker_id,
        "service_id": booking.service_id,
        "finished_at": booking.finished_at.isoformat() if booking.finished_at else None,
        "rating": booking.rating,
        "price": str(booking.price) if booking.price is not None else None,
    }


# --- leads and pipelines ----------------------------------------------------------------------


LEAD_FIELDS = ("external_id", "channel", "source", "summary", "score")


def _write_leads(*, company: Company, rows: list[dict], mode: str, actor, source: str) -> list[RowResult]:
    matches, match_errors = _match(
        rows=rows, queryset=Lead.objects.filter(company=company).select_related("contact", "pipeline", "stage"),
    )
    results = []
    for row in rows:
        index = row["_row"]
        try:
            matched = _row_match(index=index, matches=matches, match_errors=match_errors, mode=mode)
            with transaction.atomic():
                lead, status = _lead_write(company=company, row=row, lead=matched, actor=actor, source=source)
            results.append(RowResult(row=index, status=status, id=lead.pk, external_id=lead.external_id))
        except RowErrors as error:
            results.append(_error(index, error, row))
    return results


def _lead_write(*, company: Company, row: dict, lead: Lead | None, actor, source: str) -> tuple[Lead, str]:
    values = {name: row[name] for name in LEAD_FIELDS if name in row}
    if lead is None:
        contact = _lead_contact(company=company, row=row)
        pipeline = _lead_pipeline(company=company, row=row)
        stage = _lead_stage(pipeline=pipeline, row=row) or pipeline.stages.order_by("order").first()
        if stage is None:
            raise RowErrors({"pipeline_id": "The pipeline has no stages."})
        lead = Lead.objects.create(
            company=company, contact=contact, pipeline=pipeline, stage=stage,
            status={Stage.Kind.WON: Lead.Status.WON, Stage.Kind.LOST: Lead.Status.LOST}.get(stage.kind, Lead.Status.OPEN),
            **values,
        )
        events_record(events=[Event(
            company=company, type=LEAD_CREATED, contact=contact, source=source, actor=actor,
            payload={"lead_id": lead.pk, "channel": lead.channel, "source": lead.source},
            target_type=ContentType.objects.get_for_model(Lead), target_id=str(lead.pk),
        )])
        return lead, CREATED
    if any(row.get(name) for name in ("pipeline_id", "pipeline_external_id")):
        if _lead_pipeline(company=company, row=row).pk != lead.pipeline_id:
            raise RowErrors({"pipeline_id": "A lead stays in its pipeline."})
    if any(row.get(name) for name in ("contact_id", "contact_external_id")):
        if _lead_contact(company=company, row=row).pk != lead.contact_id:
            raise RowErrors({"contact_id": "A lead stays with its contact."})
    changed = _apply(lead, values)
    if changed:
        lead.save(update_fields=[*changed, "updated_at"])
    stage = _lead_stage(pipeline=lead.pipeline, row=row)
    moved = stage is not None and stage.pk != lead.stage_id
    if moved:
        lead_move_to_stage(lead=lead, stage=stage, actor=actor, source=source)
        lead.refresh_from_db()
    return lead, UPDATED if changed or moved else UNCHANGED


def _lead_contact(*, company: Company, row: dict) -> Contact:
    if row.get("contact_id"):
        contact = Contact.objects.filter(company=company, pk=row["contact_id"]).first()
        if contact is None:
            raise RowErrors({"contact_id": "No such contact in your company."})
        return contact
    if row.get("contact_external_id"):
        contact = Contact.objects.filter(company=company, external_id=row["contact_external_id"]).first()
        if contact is None:
            raise RowErrors({"contact_external_id": "No such contact in your company."})
        return contact
    if row.get("phone"):
        _phone(company=company, row=row)
        contact, _ = Contact.objects.get_or_create(
            company=company, phone=row["phone"], defaults={"name": row.get("name", ""), "timezone": company.timezone}
        )
        return contact
    raise RowErrors({"contact_id": "A new lead needs contact_id, contact_external_id or phone."})


def _lead_pipeline(*, company: Company, row: dict) -> Pipeline:
    if row.get("pipeline_id"):
        pipeline = Pipeline.objects.filter(company=company, pk=row["pipeline_id"]).first()
    elif row.get("pipeline_external_id"):
        pipeline = Pipeline.objects.filter(company=company, external_id=row["pipeline_external_id"]).first()
    else:
        return pipeline_get_or_create_default(company=company)
    if pipeline is None:
        raise RowErrors({"pipeline_id": "No such pipeline in your company."})
    return pipeline


def _lead_stage(*, pipeline: Pipeline, row: dict) -> Stage | None:
    if row.get("stage_id"):
        stage = Stage.objects.filter(pipeline=pipeline, pk=row["stage_id"]).first()
    elif row.get("stage"):
        stage = Stage.objects.filter(pipeline=pipeline, name=row["stage"]).first()
    else:
        return None
    if stage is None:
        raise RowErrors({"stage_id" if row.get("stage_id") else "stage": "No such stage in the lead's pipeline."})
    return stage


def _write_pipelines(*, company: Company, rows: list[dict], mode: str, actor, source: str) -> list[RowResult]:
    matches, match_errors = _match(
        rows=rows, queryset=Pipeline.objects.filter(company=company), natural_key="name", natural_lookup="name",
        row_natural=lambda row: row.get("name"), company=company,
    )
    results = []
    for row in rows:
        index = row["_row"]
        try:
            matched = _row_match(index=index, matches=matches, match_errors=match_errors, mode=mode)
            with transaction.atomic():
                pipeline, status = _pipeline_write(company=company, row=row, pipeline=matched)
            results.append(RowResult(row=index, status=status, id=pipeline.pk, external_id=pipeline.external_id))
        except RowErrors as error:
            results.append(_error(index, error, row))
        except IntegrityError:
            results.append(_error(index, RowErrors({"name": "Another pipeline has this name."}, code="conflict"), row))
    return results


def _pipeline_write(*, company: Company, row: dict, pipeline: Pipeline | None) -> tuple[Pipeline, str]:
    values = {name: row[name] for name in ("external_id", "name") if name in row}
    created = pipeline is None
    if row.get("is_default"):
        Pipeline.objects.filter(company=company, is_default=True).exclude(pk=getattr(pipeline, "pk", None)) \
            .update(is_default=False)
    if pipeline is None:
        if "name" not in row:
            raise RowErrors({"name": "Required for a new pipeline."})
        pipeline = Pipeline.objects.create(company=company, is_default=bool(row.get("is_default")), **values)
        changed = True
    else:
        if row.get("is_default") is False and pipeline.is_default:
            raise RowErrors({"is_default": "Make another pipeline the default instead."})
        changed = bool(_apply(pipeline, {**values, **({"is_default": True} if row.get("is_default") else {})}))
        if changed:
            pipeline.save()
    if "stages" in row:
        changed = _stages_write(pipeline=pipeline, stages=row["stages"]) or changed
    return pipeline, CREATED if created else UPDATED if changed else UNCHANGED


def _stages_write(*, pipeline: Pipeline, stages: list[dict]) -> bool:
    """The listed stages in this order (matched by external_id, then name); unlisted stages follow, as they were."""
    names = [stage["name"] for stage in stages]
    if len(set(names)) != len(names):
        raise RowErrors({"stages": "Two stages with one name."})
    existing = list(pipeline.stages.select_for_update().order_by("order"))
    names_before = {stage.pk: stage.name for stage in existing}
    kinds_before = {stage.pk: stage.kind for stage in existing}
    externals_before = {stage.pk: stage.external_id for stage in existing}
    by_external = {stage.external_id: stage for stage in existing if stage.external_id}
    by_name = {stage.name: stage for stage in existing}
    listed: list[Stage] = []
    for wanted in stages:
        stage = by_external.get(wanted.get("external_id") or "") or by_name.get(wanted["name"])
        if stage is None:
            stage = Stage(pipeline=pipeline, name=wanted["name"])
        if stage in listed:
            raise RowErrors({"stages": f"Stage {stage.name!r} is listed twice."})
        stage.name = wanted["name"]
        stage.kind = wanted.get("kind", stage.kind or Stage.Kind.OPEN)
        if wanted.get("external_id"):
            stage.external_id = wanted["external_id"]
        listed.append(stage)
    order = [*listed, *[stage for stage in existing if stage not in listed]]
    before = [(stage.pk, names_before[stage.pk], kinds_before[stage.pk], externals_before[stage.pk], stage.order)
              for stage in existing]
    after = [(stage.pk, stage.name, stage.kind, stage.external_id, position)
             for position, stage in enumerate(order, start=1)]
    if before == after:
        return False
    # Out of the way first: (pipeline, order) and (pipeline, name) are unique at every statement.
    for offset, stage in enumerate(existing):
        Stage.objects.filter(pk=stage.pk).update(order=10000 + offset, name=f"\x01{stage.pk}")
    for position, stage in enumerate(order, start=1):
        stage.order = position
        stage.save()
    return True


# --- single objects, company settings ----------------------------------------------------------


def row_write(
    *, company: Company, kind: str, data: Any, mode: str = UPSERT, actor: User | None = None, source: str = "api"
) -> RowResult:
    """Write one object; its RowResult (status `error` with field errors when it was refused)."""
    return rows_write(company=company, kind=kind, rows=[data], mode=mode, actor=actor, source=source)[0]


def company_settings_update(
    *,
    company: Company,
    default_region: str | None = None,
    timezone_name: str | None = None,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
) -> Company:
    """Change what integrators set themselves: phone region, time zone, webhook URL and secret."""
    changed = []
    if default_region is not None:
        import phonenumbers

        region = default_region.upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValidationError({"default_region": f"Not a region phone numbers know: {default_region!r}."})
        company.default_region = region
        changed.append("default_region")
    if timezone_name is not None:
        if timezone_name not in zoneinfo.available_timezones():
            raise ValidationError({"timezone": f"Unknown time zone {timezone_name!r}."})
        company.timezone = timezone_name
        changed.append("timezone")
    if webhook_url is not None:
        company.webhook_url = webhook_url
        changed.append("webhook_url")
    with transaction.atomic():
        if changed:
            company.save(update_fields=changed)
        if webhook_secret is not None:
            company_webhook_secret_set(company=company, secret=webhook_secret)
        elif company.webhook_url and not company.webhook_secret:
            company_webhook_secret_set(company=company)
    return company


WRITERS: dict[str, Callable[..., list[RowResult]]] = {
    "contacts": lambda **kwargs: _write_people(kind="contacts", **kwargs),
    "customers": lambda **kwargs: _write_people(kind="customers", **kwargs),
    "workers": lambda **kwargs: _write_people(kind="workers", **kwargs),
    "services": _write_services,
    "bookings": _write_bookings,
    "leads": _write_leads,
    "pipelines": _write_pipelines,
}


# --- one booking at a time: the console and the services of other apps ---------------------------


def booking_create(
    *,
    company: Company,
    customer: Customer,
    service: Service,
    scheduled_at: dt.datetime,
    worker: Worker | None = None,
    status: str = Booking.Status.SCHEDULED,
    price: decimal.Decimal | None = None,
    arrived_at: dt.datetime | None = None,
    finished_at: dt.datetime | None = None,
    rating: int | None = None,
    actor: User | None = None,
    source: str = "admin",
    **fields: Any,
) -> Booking:
    """Create a booking and record `booking_created` (the customer's contact, at the booking's creation).

    The attribution funnel counts that event: a booking made in the CRM converts for the message the
    customer clicked before, as one the customer app reports does (both reports of one booking are
    one event, see `event_record`). A booking created completed moves the customer's `last_booking_at`.
    The feed's booking writer does the work (`booking_rows_write`), so the console, the API and imports
    follow one set of rules. `fields`: the booking's other fields (started_at, zone, external_id, ...).
    """
    for name, row in (("customer", customer), ("service", service), ("worker", worker)):
        if row is not None and row.company_id != company.pk:
            raise ValidationError({name: f"The {name} belongs to another company."})
    row = {
        "customer_id": customer.pk, "service_id": service.pk, "worker_id": worker.pk if worker else None,
        "status": status, "scheduled_at": scheduled_at, "price": price, "arrived_at": arrived_at,
        "finished_at": finished_at, "rating": rating, **fields,
    }
    return _booking_write(company=company, row=row, mode="create", actor=actor, source=source)


def booking_update(
    *, booking: Booking, changes: dict[str, Any], actor: User | None = None, source: str = "admin"
) -> Booking:
    """Change a booking's fields (`customer_id`, `status`, `finished_at`, ...) the one way: a booking that
    becomes completed moves its customer's `last_booking_at` forward and records `booking.completed`."""
    return _booking_write(
        company=booking.company, row={**changes, "id": booking.pk}, mode="update", actor=actor, source=source
    )


def booking_complete(
    *, booking: Booking, finished_at: dt.datetime | None = None, actor: User | None = None, source: str = "admin"
) -> Booking:
    """Mark a booking completed and keep its customer's denormalised `last_booking_at` (segmentation reads it)."""
    status = Booking.objects.filter(pk=booking.pk).values_list("status", flat=True).first()
    if status == Booking.Status.CANCELLED:
        raise ValidationError({"status": "A cancelled booking cannot be completed."})
    if status == Booking.Status.COMPLETED:
        return Booking.objects.get(pk=booking.pk)
    changes: dict[str, Any] = {"status": Booking.Status.COMPLETED}
    if finished_at is not None:
        changes["finished_at"] = finished_at
    return booking_update(booking=booking, changes=changes, actor=actor, source=source)


def _booking_write(*, company: Company, row: dict[str, Any], mode: str, actor: User | None, source: str) -> Booking:
    result = booking_rows_write(company=company, rows=[row], mode=mode, actor=actor, source=source)[0]
    if result.errors:
        raise ValidationError(result.errors)
    return Booking.objects.select_related("company", "customer__contact").get(pk=result.id)
