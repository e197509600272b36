"""The REST API of the CRM graph: customers, workers, services, bookings, pipelines, leads and contacts,
and the company's own settings. Mounted under /api/ by crm/urls.py; see docs/data-api.md.

Every object: `GET /api/<kind>/` (cursor pages, filters), `POST /api/<kind>/` (create), `GET` and
`PATCH /api/<kind>/<id>/`, and `PUT /api/<kind>/by-external-id/<external_id>` (create or update by your
id: replay it as often as you like). Customers, workers and bookings also take
`POST /api/<kind>/bulk` (up to 1,000 rows, an answer per row); customers, workers and services are
soft-deleted with `DELETE` (no longer active), a booking's `DELETE` cancels it.

The company comes from the credentials (crm.tenancy.api.request_company). Writes need an API key,
or staff whose role in the company is owner or operations. The rules live in crm.feed.services; the
views parse, call `rows_write`, and shape the answer.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.apis import COMPANY_PARAMETER, ContactOutputSerializer, LeadListApi
from crm.feed import filters, rows, selectors
from crm.feed.services import (
    BULK_MAX_ROWS,
    CREATE,
    CREATED,
    ERROR,
    UPDATE,
    UPSERT,
    RowResult,
    company_settings_update,
    row_write,
    rows_write,
)
from crm.models import Booking, Company, Membership
from crm.selectors import membership_role
from crm.tenancy.api import ApiKeyPrincipal, request_company
from shokti.api.exceptions import Conflict
from shokti.api.pagination import NewestFirstCursorPagination, get_paginated_response

WRITER_ROLES = (Membership.Role.OWNER, Membership.Role.OPERATIONS)


def request_company_for_write(request) -> Company:
    """The company the request acts for, when the caller may change its data (403 otherwise)."""
    company = request_company(request)
    user = request.user
    if isinstance(user, ApiKeyPrincipal) or user.is_superuser:
        return company
    if membership_role(user=user, company=company) not in WRITER_ROLES:
        raise exceptions.PermissionDenied("Your role in this company cannot change its data.")
    return company


def filter_parameters(filterset_class) -> list[OpenApiParameter]:
    """The FilterSet's filters as documented query parameters."""
    parameters = [COMPANY_PARAMETER]
    for name, filter_ in filterset_class.base_filters.items():
        kind = int if filter_.__class__.__name__ == "NumberFilter" else bool if filter_.__class__.__name__ == (
            "BooleanFilter") else str
        parameters.append(OpenApiParameter(name, kind, description=str(filter_.extra.get("help_text", ""))))
    return parameters


def _raise_for(result: RowResult) -> None:
    if result.status != ERROR:
        return
    if result.code == "conflict":
        first = next(iter(result.errors.values()))[0]
        raise Conflict(first, fields=result.errors)
    if result.code == "not_found":
        raise exceptions.NotFound()
    raise exceptions.ValidationError(result.errors)


# --- outputs --------------------------------------------------------------------------------------


class _PersonOutput(serializers.Serializer):
    id = serializers.IntegerField()
    external_id = serializers.CharField()
    contact_id = serializers.IntegerField()
    name = serializers.CharField(source="contact.name")
    phone = serializers.CharField(source="contact.phone")
    email = serializers.CharField(source="contact.email")
    locale = serializers.CharField(source="contact.locale")
    timezone = serializers.CharField(source="contact.timezone")
    is_email_consented = serializers.BooleanField(source="contact.is_email_consented")
    is_sms_consented = serializers.BooleanField(source="contact.is_sms_consented")
    is_whatsapp_consented = serializers.BooleanField(source="contact.is_whatsapp_consented")
    is_active = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class CustomerOutput(_PersonOutput):
    typical_service_ids = serializers.SerializerMethodField()
    last_booking_at = serializers.DateTimeField(allow_null=True)

    def get_typical_service_ids(self, customer) -> list[int]:
        return sorted(service.pk for service in customer.typical_services.all())


class WorkerOutput(_PersonOutput):
    skills = serializers.ListField(child=serializers.CharField())
    zones = serializers.ListField(child=serializers.CharField())
    ratings_avg = serializers.DecimalField(max_digits=3, decimal_places=2, allow_null=True)


class ServiceOutput(serializers.Serializer):
    id = serializers.IntegerField()
    external_id = serializers.CharField()
    name = serializers.CharField()
    name_bn = serializers.CharField()
    category = serializers.CharField()
    base_price = serializers.DecimalField(max_digits=10, decimal_places=2)
    duration_minutes = serializers.IntegerField()
    is_active = serializers.BooleanField()
    updated_at = serializers.DateTimeField()


class BookingOutput(serializers.Serializer):
    id = serializers.IntegerField()
    external_id = serializers.CharField()
    customer_id = serializers.IntegerField()
    customer_external_id = serializers.CharField()
    worker_id = serializers.IntegerField(allow_null=True)
    worker_external_id = serializers.CharField(allow_null=True)
    service_id = serializers.IntegerField()
    service_external_id = serializers.CharField()
    status = serializers.ChoiceField(choices=Booking.Status.choices)
    scheduled_at = serializers.DateTimeField()
    arrived_at = serializers.DateTimeField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    cancelled_at = serializers.DateTimeField(allow_null=True)
    cancelled_by = serializers.CharField()
    cancellation_reason = serializers.CharField()
    rating = serializers.IntegerField(allow_null=True)
    price = serializers.DecimalField(max_digits=10, decimal_places=2, allow_null=True)
    zone = serializers.CharField()
    correlation_id = serializers.UUIDField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class StageOutput(serializers.Serializer):
    id = serializers.IntegerField()
    external_id = serializers.CharField()
    name = serializers.CharField()
    order = serializers.IntegerField()
    kind = serializers.CharField()


class PipelineOutput(serializers.Serializer):
    id = serializers.IntegerField()
    external_id = serializers.CharField()
    name = serializers.CharField()
    is_default = serializers.BooleanField()
    stages = StageOutput(many=True, source="stages.all")


ContactOutput = ContactOutputSerializer
LeadOutput = LeadListApi.OutputSerializer


class BulkResultOutput(serializers.Serializer):
    row = serializers.IntegerField(help_text="The row's index in `rows`, from 0.")
    status = serializers.ChoiceField(choices=["created", "updated", "unchanged", "error"])
    id = serializers.IntegerField(allow_null=True)
    external_id = serializers.CharField()
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False)


class BulkOutput(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    errors = serializers.IntegerField()
    results = BulkResultOutput(many=True)


# --- the generic operations ------------------------------------------------------------------------


class _FeedApi(APIView):
    kind: str = ""
    OutputSerializer: type[serializers.Serializer]

    def _output(self, company: Company, pk: int) -> dict:
        return self.OutputSerializer(selectors.feed_object_get(company=company, kind=self.kind, pk=pk)).data


class _ListApi(_FeedApi):
    pagination_class = NewestFirstCursorPagination
    selector = None

    def get(self, request):
        company = request_company(request)
        queryset = type(self).selector(company=company, filters_data=request.query_params.dict())
        return get_paginated_response(
            serializer_class=self.OutputSerializer, queryset=queryset, request=request, view=self,
            pagination_class=self.pagination_class,
        )


class _DetailApi(_FeedApi):
    def get(self, request, pk: int):
        company = request_company(request)
        found = selectors.feed_object_get(company=company, kind=self.kind, pk=pk)
        if found is None:
            raise exceptions.NotFound()
        return Response(self.OutputSerializer(found).data)


class _CreateApi(_FeedApi):
    InputSerializer: type[serializers.Serializer]

    def post(self, request):
        company = request_company_for_write(request)
        result = row_write(company=company, kind=self.kind, data=request.data, mode=CREATE, actor=_actor(request))
        _raise_for(result)
        return Response(self._output(company, result.id), status=status.HTTP_201_CREATED)


class _UpdateApi(_FeedApi):
    InputSerializer: type[serializers.Serializer]

    def patch(self, request, pk: int):
        company = request_company_for_write(request)
        data = _object(request.data)
        if "id" in data:
            raise exceptions.ValidationError({"id": ["The id is in the URL."]})
        result = row_write(company=company, kind=self.kind, data={**data, "id": pk}, mode=UPDATE, actor=_actor(request))
        _raise_for(result)
        return Response(self._output(company, result.id))


class _UpsertApi(_FeedApi):
    InputSerializer: type[serializers.Serializer]

    def put(self, request, external_id: str):
        company = request_company_for_write(request)
        data = _object(request.data)
        if "id" in data:
            raise exceptions.ValidationError({"id": ["Rows are matched by the external id in the URL."]})
        if data.get("external_id", external_id) != external_id:
            raise exceptions.ValidationError({"external_id": ["Differs from the one in the URL."]})
        result = row_write(
            company=company, kind=self.kind, data={**data, "external_id": external_id}, mode=UPSERT,
            actor=_actor(request),
        )
        _raise_for(result)
        return Response(
            self._output(company, result.id),
            status=status.HTTP_201_CREATED if result.status == CREATED else status.HTTP_200_OK,
        )


class _DeactivateApi(_FeedApi):
    """DELETE: no longer active (kept, with its history; PATCH `is_active: true` brings it back)."""

    def delete(self, request, pk: int):
        company = request_company_for_write(request)
        result = row_write(company=company, kind=self.kind, data={"id": pk, "is_active": False}, mode=UPDATE,
                           actor=_actor(request))
        _raise_for(result)
        return Response(status=status.HTTP_204_NO_CONTENT)


class _BulkApi(_FeedApi):
    class InputSerializer(serializers.Serializer):
        # Each row is an object the kind's row reads (rows_write answers for each); not validated twice here.
        rows = serializers.ListField(min_length=1, max_length=BULK_MAX_ROWS,
                                     help_text="Up to 1,000 objects, each as the kind's upsert takes it.")
        dry_run = serializers.BooleanField(required=False, default=False,
                                           help_text="Check and report, write nothing.")

    OutputSerializer = BulkOutput

    def post(self, request):
        company = request_company_for_write(request)
        data = _object(request.data)
        unknown = set(data) - {"rows", "dry_run"}
        if unknown:
            raise exceptions.ValidationError({key: ["Unknown field."] for key in sorted(unknown)})
        if not isinstance(data.get("dry_run", False), bool):
            raise exceptions.ValidationError({"dry_run": ["Must be a valid boolean."]})
        serializer = self.InputSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        results = rows_write(
            company=company, kind=self.kind, rows=serializer.validated_data["rows"], mode=UPSERT,
            actor=_actor(request), dry_run=serializer.validated_data["dry_run"],
        )
        counts = {name: 0 for name in ("created", "updated", "unchanged", "error")}
        for result in results:
            counts[result.status] += 1
        return Response({
            "created": counts["created"], "updated": counts["updated"], "unchanged": counts["unchanged"],
            "errors": counts["error"], "results": [result.as_dict() for result in results],
        })


def _actor(request):
    return None if isinstance(request.user, ApiKeyPrincipal) else request.user


def _object(data) -> dict:
    if not isinstance(data, dict):
        raise exceptions.ValidationError({"non_field_errors": ["Expected a JSON object."]})
    return data


# --- customers -------------------------------------------------------------------------------------


class CustomerListApi(_ListApi):
    """GET: the company's customers, newest first."""

    kind = "customers"
    selector = selectors.customer_list
    OutputSerializer = CustomerOutput

    @extend_schema(operation_id="customers_list", parameters=filter_parameters(filters.CustomerFilter),
                   responses={200: CustomerOutput(many=True)})
    def get(self, request):
        return super().get(request)


class CustomerCreateApi(_CreateApi):
    """POST: a new customer (and its contact, or the contact that has its phone)."""

    kind = "customers"
    OutputSerializer = CustomerOutput

    class InputSerializer(rows.CustomerRow):
        id = None

    @extend_schema(operation_id="customers_create", parameters=[COMPANY_PARAMETER], request=InputSerializer,
                   responses={201: CustomerOutput})
    def post(self, request):
        return super().post(request)


class CustomersApi(CustomerListApi, CustomerCreateApi):
    """/api/customers/: GET lists, POST creates."""


class CustomerDetailApi(_DetailApi, _UpdateApi, _DeactivateApi):
    """/api/customers/<id>/: GET reads, PATCH changes the fields given, DELETE deactivates."""

    kind = "customers"
    OutputSerializer = CustomerOutput

    class InputSerializer(rows.CustomerRow):
        id = None

    @extend_schema(operation_id="customers_retrieve", parameters=[COMPANY_PARAMETER], responses={200: CustomerOutput})
    def get(self, request, pk: int):
        return super().get(request, pk)

    @extend_schema(operation_id="customers_update", parameters=[COMPANY_PARAMETER], request=InputSerializer,
                   responses={200: CustomerOutput})
    def patch(self, request, pk: int):
        return super().patch(request, pk)

    @extend_schema(operation_id="customers_deactivate", parameters=[COMPANY_PARAMETER],
                   responses={204: OpenApiResponse(description="Deactivated: never reminded again.")})
    def delete(self, request, pk: int):
        return super().delete(request, pk)


class CustomerUpsertApi(_UpsertApi):
    """PUT: create or update the customer with your id: fields left out keep their values."""

    kind = "customers"
    OutputSerializer = CustomerOutput

    class InputSerializer(rows.CustomerRow):
        id = None

    @extend_schema(operation_id="customers_upsert", parameters=[COMPANY_PARAMETER], request=InputSerializer,
                   responses={200: CustomerOutput, 201: CustomerOutput})
    def put(self, request, external_id: str):
        return super().put(request, external_id)


class CustomerBulkApi(_BulkApi):
    """POST: up to 1,000 customers by external_id (or phone); an answer per row."""

    kind = "customers"

    @extend_schema(operation_id="customers_bulk", parameters=[COMPANY_PARAMETER],
                   request=_BulkApi.InputSerializer, responses={200: BulkOutput})
    def post(self, request):
        return super().post(request)


# --- workers ---------------------------------------------------------------------------------------


class WorkerListApi(_ListApi):
    kind = "workers"
    selector = selectors.worker_list
    OutputSerializer = WorkerOutput

    @extend_schema(operation_id="workers_list", parameters=filter_parameters(filters.WorkerFilter),
                   responses={200: WorkerOutput(many=True)})
    def get(self, request):
        return super().get(request)


class WorkerCreateApi(_CreateApi):
    kind = "workers"
    OutputSerializer = WorkerOutput

    class InputSerializer(rows.WorkerRow):
        id = None

    @extend_schema(operation_id="workers_create", parameters=[COMPANY_PARAMETER], request=InputSerializer,
                   responses={201: WorkerOutput})
    def post(self, request):
        return super().post(request)


class WorkersApi(WorkerListApi, WorkerCreateApi):
    """/api/workers/: GET lists, POST creates."""


class WorkerDetailApi(_DetailApi, _UpdateApi, _DeactivateApi):
    kind = "workers"
    OutputSerializer = WorkerOutput

    class InputSerializer(rows.WorkerRow):
        id = None

    @extend_schema(operation_id="workers_retrieve", parameters=[COMPANY_PARAMETER], responses={200: WorkerOutput})
    def get(self, request, pk: int):
        return super().get(request, pk)

    @extend_schema(operation_id="workers_update", parameters=[COMPANY_PARAMETER], request=InputSerializer,
                   responses={200: WorkerOutput})
    def patch(self, request, pk: int):
        return super().patch(request, pk)

    @extend_schema(operation_id="workers_deactivate", parameters=[COMPANY_PARAMETER],
                   responses={204: OpenApiResponse(description="Deactivated.")})
    def delete(self, request, pk: int):
        return super().delete(request, pk)


class WorkerUpsertApi(_UpsertApi):
    kind = "workers"
    OutputSerializer = WorkerOutput

    class InputSerializer(rows.WorkerRow):
        id = None

    @extend_schema(operation_id="workers_upsert", parameters=[COMPANY_PARAMETER], request=InputSerializer,
                   responses={200: WorkerOutput, 201: WorkerOutput})
    def put(self, request, external_id: str):
        return super().put(request, external_id)


class WorkerBulkApi(_BulkApi):
    kind = "workers"

    @extend_schema(operation_id="workers_bulk", parameters=[COMPANY_PARAMETER],
                   request=_BulkApi.InputSerializer, responses={200: BulkOutput})
    def post(self, request):
        return super().post(request)


# --- services --------------------------------------------------------------------------------------


class ServiceListApi(_ListApi):
    kind = "services"
    selector = selectors.service_list_filtered
    OutputSerializer = ServiceOutput

    @extend_schema(operation_id="catalogue_services_list", parameters=filter_parameters(filters.ServiceFilter),
                   responses={200: ServiceOutput(many=True)})
    def get(self, request):
        return super().get(request)


class ServiceCreateApi(_CreateApi):
    kind = "services"
    OutputSerializer = ServiceOutput

    class InputSerializer(rows.ServiceRow):
        id = None

    @extend_schema(operation_id="catalogue_services_create", parameters=[COMPANY_PARAMETER], request=InputSerializer,
                   responses={201: ServiceOutput})
    def post(self, request):
        return super().post(request)


class ServicesApi(ServiceListApi, ServiceCreateApi):
    """/api/services/: GET lists (inactive ones too), POST creates."""


class ServiceDetailApi(_DetailApi, _UpdateApi, _DeactivateApi):
    kind = "services"
    OutputSerializer = ServiceOutput

    class InputSerializer(rows.ServiceRow):
        id = None

    @extend_schema(operation_id="catalogue_services_retrieve", parameters=[COMPANY_PARAMETER],
                   responses={200: ServiceOutput})
    def get(self, request, pk: int):
        return super().get(request, pk)

    @extend_schema(operation_id="catalogue_services_update", parameters=[COMPANY_PARAMETER], request=InputSerializer,
                   responses={200: ServiceOutput})
    def patch(self, request, pk: int):
        return super().patch(request, pk)

    @extend_schema(operation_id="catalogue_services_deactivate", parameters=[COMPANY_PARAMETER],
                   responses={204: OpenApiResponse(description="Deactivated: no longer offered.")})
    def delete(self, request, pk: int):
        return super().delete(request, pk)


class ServiceUpsertApi(_UpsertApi):
    kind = "services"
    OutputSerializer = ServiceOutput

    class InputSerializer(rows.ServiceRow):
        id = None

    @extend_schema(operation_id="catalogue_services_upsert", parameters=[COMPANY_PARAMETER], request=InputSerializer,
                   responses={200: ServiceOutput, 201: ServiceOutput})
    def put(self, request, external_id: str):
        return super().put(request, external_id)


# --- bookings --------------------------------------------------------------------------------------


class BookingListApi(_ListApi):
    kind = "bookings"
    selector = selectors.booking_list
    OutputSerializer = BookingOutput

    @extend_schema(operation_id="bookings_list", parameters=filter_parameters(filters.BookingFilter),
                   responses={200: BookingOutput(many=True)})
    def get(self, request):
        return super().get(request)


class BookingCreateApi(_CreateApi):
    kind = "bookings"
    OutputSerializer = BookingOutput

    class InputSerializer(rows.BookingRow):
        id = None

    @extend_schema(operation_id="bookings_create", parameters=[COMPANY_PARAMETER], request=InputSerializer,
                   responses={201: BookingOutput})
    def post(self, request):
        return super().post(request)


class BookingsApi(BookingListApi, BookingCreateApi):
    """/api/bookings/: GET lists, POST creates."""


class BookingCancelApi(_FeedApi):
    """DELETE: cancel the booking (by the company, unless `cancelled_by` says otherwise); a completed one is 409."""

    kind = "bookings"

    def delete(self, request, pk: int):
        company = request_company_for_write(request)
        booking = selectors.feed_object_get(company=company, kind="bookings", pk=pk)
        if booking is None:
            raise exceptions.NotFound()
        if booking.status == Booking.Status.COMPLETED:
            raise Conflict("A completed booking cannot be cancelled.")
        data = {"id": pk, "status": Booking.Status.CANCELLED}
        if booking.status != Booking.Status.CANCELLED:
            data["cancelled_by"] = request.query_params.get("cancelled_by") or Booking.CancelledBy.COMPANY
        result = row_write(company=company, kind="bookings", data=data, mode=UPDATE, actor=_actor(request))
        _raise_for(result)
        return Response(status=status.HTTP_204_NO_CONTENT)


class BookingDetailApi(_DetailApi, _UpdateApi, BookingCancelApi):
    kind = "bookings"
    OutputSerializer = BookingOutput

    class InputSerializer(rows.BookingRow):
        id = None

    @extend_schema(operation_id="bookings_retrieve", parameters=[COMPANY_PARAMETER], responses={200: BookingOutput})
    def get(self, request, pk: int):
        return super().get(request, pk)

    @extend_schema(operation_id="bookings_update", parameters=[COMPANY_PARAMETER], request=InputSerializer,
                   responses={200: BookingOutput})
    def patch(self, request, pk: int):
        return super().patch(request, pk)

    @extend_schema(
        operation_id="bookings_cancel",
        parameters=[COMPANY_PARAMETER, OpenApiParameter("cancelled_by", str, enum=Booking.CancelledBy.values)],
        responses={204: OpenApiResponse(description="Cancelled."), 409: OpenApiResponse(description="Completed.")},
    )
    def delete(self, request, pk: int):
        return super().delete(request, pk)


class BookingUpsertApi(_UpsertApi):
    kind = "bookings"
    OutputSerializer = BookingOutput

    class InputSerializer(rows.BookingRow):
        id = None

    @extend_schema(operation_id="bookings_upsert", parameters=[COMPANY_PARAMETER], request=InputSerializer,
                   responses={200: BookingOutput, 201: BookingOutput})
    def put(self, request, external_id: str):
        return super().put(request, external_id)


class BookingBulkApi(_BulkApi):
    kind = "bookings"

    @extend_schema(operation_id="bookings_bulk", parameters=[COMPANY_PARAMETER],
                   request=_BulkApi.InputSerializer, responses={200: BulkOutput})
    def post(self, request):
        return super().post(request)


# --- pipelines -------------------------------------------------------------------------------------


class PipelineListApi(_ListApi):
    kind = "pipelines"
    selector = selectors.pipeline_list
    OutputSerializer = PipelineOutput

    @extend_schema(operation_id="pipelines_list", parameters=filter_parameters(filters.PipelineFilter),
                   responses={200: PipelineOutput(many=True)})
    def get(self, request):
        return super().get(request)


class PipelineCreateApi(_CreateApi):
    kind = "pipelines"
    OutputSerializer = PipelineOutput

    class InputSerializer(rows.PipelineRow):
        id = None

    @extend_schema(operation_id="pipelines_create", parameters=[COMPANY_PARAMETER], request=InputSerializer,
                   responses={201: PipelineOutput})
    def post(self, request):
        return super().post(request)


class PipelinesApi(PipelineListApi, PipelineCreateApi):
    """/api/pipelines/: GET lists with their stages, POST creates."""


class PipelineDetailApi(_DetailApi, _UpdateApi):
    kind = "pipelines"
    OutputSerializer = PipelineOutput

    class InputSerializer(rows.PipelineRow):
        id = None

    @extend_schema(operation_id="pipelines_retrieve", parameters=[COMPANY_PARAMETER], responses={200: PipelineOutput})
    def get(self, request, pk: int):
        return super().get(request, pk)

    @extend_schema(operation_id="pipelines_update", parameters=[COMPANY_PARAMETER], request=InputSerializer,
                   responses={200: PipelineOutput})
    def patch(self, request, pk: int):
        return super().patch(request, pk)


class PipelineUpsertApi(_UpsertApi):
    kind = "pipelines"
    OutputSerializer = PipelineOutput

    class InputSerializer(rows.PipelineRow):
        id = None

    @extend_schema(operation_id="pipelines_upsert", parameters=[COMPANY_PARAMETER], request=InputSerializer,
                   responses={200: PipelineOutput, 201: PipelineOutput})
    def put(self, request, external_id: str):
        return super().put(request, external_id)


# --- leads and contacts (their lists and contact creation are in crm/apis.py) ----------------------


class LeadCreateApi(_CreateApi):
    """POST: a lead for a contact (by id, external id, or phone: created if missing); records `lead.created`."""

    kind = "leads"
    OutputSerializer = LeadOutput

    class InputSerializer(rows.LeadRow):
        id = None

    @extend_schema(operation_id="leads_create", parameters=[COMPANY_PARAMETER], request=InputSerializer,
                   responses={201: LeadOutput})
    def post(self, request):
        return super().post(request)


class LeadsApi(LeadListApi, LeadCreateApi):
    """/api/leads/: GET lists (crm.apis.LeadListApi), POST creates."""

    OutputSerializer = LeadOutput


class LeadDetailApi(_DetailApi, _UpdateApi):
    """GET reads; PATCH changes fields, and a new `stage` or `stage_id` moves the lead (records `stage.changed`)."""

    kind = "leads"
    OutputSerializer = LeadOutput

    class InputSerializer(rows.LeadRow):
        id = None

    @extend_schema(operation_id="leads_retrieve", parameters=[COMPANY_PARAMETER], responses={200: LeadOutput})
    def get(self, request, pk: int):
        return super().get(request, pk)

    @extend_schema(operation_id="leads_update", parameters=[COMPANY_PARAMETER], request=InputSerializer,
                   responses={200: LeadOutput})
    def patch(self, request, pk: int):
        return super().patch(request, pk)


class LeadUpsertApi(_UpsertApi):
    kind = "leads"
    OutputSerializer = LeadOutput

    class InputSerializer(rows.LeadRow):
        id = None

    @extend_schema(operation_id="leads_upsert", parameters=[COMPANY_PARAMETER], request=InputSerializer,
                   responses={200: LeadOutput, 201: LeadOutput})
    def put(self, request, external_id: str):
        return super().put(request, external_id)


class ContactDetailApi(_DetailApi, _UpdateApi):
    kind = "contacts"
    OutputSerializer = ContactOutput

    class InputSerializer(rows.ContactRow):
        id = None

    @extend_schema(operation_id="contacts_retrieve", parameters=[COMPANY_PARAMETER], responses={200: ContactOutput})
    def get(self, request, pk: int):
        return super().get(request, pk)

    @extend_schema(operation_id="contacts_update", parameters=[COMPANY_PARAMETER], request=InputSerializer,
                   responses={200: ContactOutput})
    def patch(self, request, pk: int):
        return super().patch(request, pk)


class ContactUpsertApi(_UpsertApi):
    kind = "contacts"
    OutputSerializer = ContactOutput

    class InputSerializer(rows.ContactRow):
        id = None

    @extend_schema(operation_id="contacts_upsert", parameters=[COMPANY_PARAMETER], request=InputSerializer,
                   responses={200: ContactOutput, 201: ContactOutput})
    def put(self, request, external_id: str):
        return super().put(request, external_id)


# --- the company's own settings -------------------------------------------------------------------


class CompanyOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    slug = serializers.CharField()
    default_region = serializers.CharField(help_text="Phones without a +prefix are read in this country.")
    timezone = serializers.CharField(help_text="Times without an offset are read in this zone.")
    webhook_url = serializers.CharField()
    has_webhook_secret = serializers.SerializerMethodField()

    def get_has_webhook_secret(self, company) -> bool:
        return bool(company.webhook_secret)


class CompanySettingsApi(APIView):
    """GET: the settings an integrator needs; PATCH: change the region, time zone or webhook."""

    OutputSerializer = CompanyOutput

    class InputSerializer(rows.Row):
        default_region = rows.StrictCharField(required=False, min_length=2, max_length=2)
        timezone = rows.StrictCharField(required=False, max_length=64)
        webhook_url = serializers.URLField(required=False, allow_blank=True, max_length=200)
        webhook_secret = rows.StrictCharField(required=False, min_length=16, max_length=128, write_only=True,
                                              help_text="Signs deliveries; never shown again.")

    @extend_schema(operation_id="company_settings_retrieve", parameters=[COMPANY_PARAMETER],
                   responses={200: CompanyOutput})
    def get(self, request):
        return Response(CompanyOutput(request_company(request)).data)

    @extend_schema(operation_id="company_settings_update", parameters=[COMPANY_PARAMETER], request=InputSerializer,
                   responses={200: CompanyOutput})
    def patch(self, request):
        company = request_company_for_write(request)
        serializer = self.InputSerializer(data=_object(request.data))
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        company = company_settings_update(
            company=company, default_region=data.get("default_region"), timezone_name=data.get("timezone"),
            webhook_url=data.get("webhook_url"), webhook_secret=data.get("webhook_secret"),
        )
        return Response(CompanyOutput(company).data)

