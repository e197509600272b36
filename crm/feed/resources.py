"""Exports: django-import-export resources that write the CRM graph as the rows imports read.

Each resource's columns are its kind's row fields (crm.feed.rows), plus a few read-only ones
(`last_booking_at`, `updated_at` ...) that imports skip, so an exported file imports back unchanged.
Values are text an import reads the same way: times in ISO 8601 with their offset (UTC), booleans
`true`/`false`, lists comma-separated, empty for none. `feed_export_csv` streams a queryset as CSV
a chunk at a time; `feed_export_xlsx` writes a write-only workbook to a spooled file.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import tempfile
from collections.abc import Iterator
from decimal import Decimal

from django.db.models import F, Prefetch, QuerySet
from import_export import fields, resources, widgets

from crm.models import Booking, Contact, Customer, Lead, Service, Worker

EXPORT_CHUNK_ROWS = 2000


class TextWidget(widgets.Widget):
    """Renders any value as the text an import reads back."""

    def render(self, value, obj=None, **kwargs) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, dt.datetime):
            return value.astimezone(dt.UTC).isoformat()
        if isinstance(value, (list, tuple)):
            return ", ".join(str(item) for item in value)
        if isinstance(value, Decimal):
            return f"{value:f}"
        return str(value)


def _fields(*names: str, **paths: str) -> dict[str, fields.Field]:
    """Export columns named `names`, read from the attribute of the same name or from `paths[name]`."""
    return {
        name: fields.Field(attribute=paths.get(name, name), column_name=name, widget=TextWidget(), readonly=True)
        for name in names
    }


class FeedResource(resources.Resource):
    """A read-only resource whose columns are declared by `columns` (name -> Field)."""

    columns: dict[str, fields.Field] = {}

    def get_export_fields(self, selected_fields=None):
        return list(self.columns.values())

    def get_export_headers(self, selected_fields=None) -> list[str]:
        return list(self.columns)

    def export_queryset(self, queryset: QuerySet) -> QuerySet:
        """The queryset with what the columns read joined in."""
        return queryset

    def export_field(self, field, instance, **kwargs):
        if field.dehydrate_method:
            return field.widget.render(getattr(self, field.dehydrate_method)(instance))
        return field.export(instance, **kwargs)


_PERSON = ("name", "phone", "email", "locale", "timezone", "is_email_consented", "is_sms_consented",
           "is_whatsapp_consented")
_PERSON_PATHS = {name: f"contact__{name}" for name in _PERSON}


class CustomerResource(FeedResource):
    columns = {
        **_fields("id", "external_id", *_PERSON, "is_active", **_PERSON_PATHS),
        "typical_service_ids": fields.Field(column_name="typical_service_ids", widget=TextWidget(),
                                            dehydrate_method="dehydrate_typical_service_ids"),
        "typical_service_external_ids": fields.Field(column_name="typical_service_external_ids", widget=TextWidget(),
                                                     dehydrate_method="dehydrate_typical_service_external_ids"),
        **_fields("last_booking_at", "created_at", "updated_at"),
    }

    def export_queryset(self, queryset):
        return queryset.select_related("contact").prefetch_related(
            Prefetch("typical_services", queryset=Service.objects.only("id", "external_id").order_by("id"))
        )

    def dehydrate_typical_service_ids(self, customer: Customer) -> list[int]:
        return [service.pk for service in customer.typical_services.all()]

    def dehydrate_typical_service_external_ids(self, customer: Customer) -> list[str]:
        return [service.external_id for service in customer.typical_services.all() if service.external_id]


class WorkerResource(FeedResource):
    columns = _fields("id", "external_id", *_PERSON, "is_active", "skills", "zones", "ratings_avg", "created_at",
                      "updated_at", **_PERSON_PATHS)

    def export_queryset(self, queryset):
        return queryset.select_related("contact")


class ContactResource(FeedResource):
    columns = _fields("id", "external_id", *_PERSON, "created_at", "updated_at")


class ServiceResource(FeedResource):
    columns = _fields("id", "external_id", "name", "name_bn", "category", "base_price", "duration_minutes",
                      "is_active", "updated_at")


class BookingResource(FeedResource):
    columns = _fields(
        "id", "external_id", "customer_id", "customer_external_id", "worker_id", "worker_external_id", "service_id",
        "service_external_id", "status", "scheduled_at", "arrived_at", "started_at", "finished_at", "cancelled_at",
        "cancelled_by", "cancellation_reason", "rating", "price", "zone", "correlation_id", "created_at", "updated_at",
        customer_external_id="export_customer_external_id", worker_external_id="export_worker_external_id",
        service_external_id="export_service_external_id",
    )

    def export_queryset(self, queryset):
        # The references' external ids by join; the referenced rows are not loaded.
        return queryset.select_related(None).annotate(
            export_customer_external_id=F("customer__external_id"),
            export_worker_external_id=F("worker__external_id"),
            export_service_external_id=F("service__external_id"),
        )


class LeadResource(FeedResource):
    columns = _fields(
        "id", "external_id", "contact_id", "contact_external_id", "phone", "name", "pipeline_id",
        "pipeline_external_id", "stage", "channel", "source", "summary", "score", "created_at", "updated_at",
        contact_external_id="contact__external_id", phone="contact__phone", name="contact__name",
        pipeline_external_id="pipeline__external_id", stage="stage__name",
    )

    def export_queryset(self, queryset):
        return queryset.select_related("contact", "pipeline", "stage")


RESOURCES: dict[str, type[FeedResource]] = {
    "customers": CustomerResource,
    "workers": WorkerResource,
    "contacts": ContactResource,
    "services": ServiceResource,
    "bookings": BookingResource,
    "leads": LeadResource,
}
MODELS = {"customers": Customer, "workers": Worker, "contacts": Contact, "services": Service, "bookings": Booking,
          "leads": Lead}


def _rows(kind: str, queryset: QuerySet) -> Iterator[list[str]]:
    resource = RESOURCES[kind]()
    queryset = resource.export_queryset(queryset)
    for instance in queryset.iterator(chunk_size=EXPORT_CHUNK_ROWS):
        yield resource.export_resource(instance)


def feed_export_headers(kind: str) -> list[str]:
    return RESOURCES[kind]().get_export_headers()


def feed_export_csv(*, kind: str, queryset: QuerySet) -> Iterator[str]:
    """The queryset as CSV text, the header first, then a chunk of rows at a time (for a streaming response)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")  # a BOM, so Excel reads the Bengali as UTF-8
    writer.writerow(feed_export_headers(kind))
    for count, row in enumerate(_rows(kind, queryset), start=1):
        writer.writerow(row)
        if count % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def feed_export_xlsx(*, kind: str, queryset: QuerySet):
    """The queryset as an XLSX workbook in a spooled temporary file (in memory until 16 MB), rewound."""
    import openpyxl

    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet(kind)
    sheet.append(feed_export_headers(kind))
    for row in _rows(kind, queryset):
        sheet.append(row)
    spooled = tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024)
    workbook.save(spooled)
    spooled.seek(0)
    return spooled
