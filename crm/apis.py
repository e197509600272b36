"""The CRM's REST API: contacts and leads of the caller's company.

The company comes from the credentials (crm.tenancy.api.request_company): an API key's own
company, or for staff with a JWT the company of their membership (`company_id` / `X-Company-Id`
chooses among several; one they are not in is 403, whether it exists or not).
"""

from __future__ import annotations

import zoneinfo

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.models import Contact, Lead
from crm.selectors import contact_list, lead_list
from crm.services import ContactAlreadyExists, contact_create
from crm.tenancy.api import request_company
from shokti.api.exceptions import Conflict
from shokti.api.pagination import NewestFirstCursorPagination, get_paginated_response
from shokti.api.serializers import StrictInputMixin

COMPANY_PARAMETER = OpenApiParameter(
    "company_id", int, description="For staff in several companies: which one. Ignored for API keys (must match)."
)


class ContactOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Contact
        fields = [
            "id",
            "external_id",
            "name",
            "phone",
            "email",
            "locale",
            "timezone",
            "is_email_consented",
            "is_sms_consented",
            "is_whatsapp_consented",
            "created_at",
            "updated_at",
        ]


class ContactListApi(APIView):
    """GET: the company's contacts, newest first; filter by `phone` or `email`."""

    pagination_class = NewestFirstCursorPagination

    class FilterSerializer(StrictInputMixin, serializers.Serializer):
        phone = serializers.CharField(required=False, max_length=32)
        email = serializers.CharField(required=False, max_length=254)

    @extend_schema(
        operation_id="contacts_list",
        parameters=[
            COMPANY_PARAMETER,
            OpenApiParameter("phone", str, description="E.164, or local to the company's region."),
            OpenApiParameter("email", str, description="Exact, case-insensitive."),
        ],
        responses={200: ContactOutputSerializer(many=True)},
    )
    def get(self, request):
        company = request_company(request)
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        contacts = contact_list(company=company, filters=filters.validated_data)
        return get_paginated_response(
            serializer_class=ContactOutputSerializer,
            queryset=contacts,
            request=request,
            view=self,
            pagination_class=self.pagination_class,
        )


class ContactCreateApi(APIView):
    """POST: create a contact; the phone is normalised to E.164 (409 if the company has it already)."""

    class InputSerializer(StrictInputMixin, serializers.Serializer):
        company_id = serializers.IntegerField(required=False, min_value=1)
        name = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")
        phone = serializers.CharField(max_length=32)
        email = serializers.EmailField(required=False, allow_blank=True, default="")
        locale = serializers.CharField(required=False, max_length=10, default="bn")
        timezone = serializers.CharField(required=False, max_length=64, default="Asia/Dhaka")
        is_email_consented = serializers.BooleanField(required=False, default=False)
        is_sms_consented = serializers.BooleanField(required=False, default=False)
        is_whatsapp_consented = serializers.BooleanField(required=False, default=False)

        def validate_timezone(self, value: str) -> str:
            if value not in zoneinfo.available_timezones():
                raise serializers.ValidationError(f"Unknown time zone {value!r}.")
            return value

    error_responses = {"POST": {409: "The company already has a contact with this phone."}}

    @extend_schema(operation_id="contacts_create", request=InputSerializer, responses={201: ContactOutputSerializer})
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        company = request_company(request, requested_id=data.pop("company_id", None))
        try:
            contact = contact_create(company=company, timezone_name=data.pop("timezone"), **data)
        except ContactAlreadyExists as error:
            raise Conflict(error.message_dict["phone"][0], fields=error.message_dict) from None
        return Response(ContactOutputSerializer(contact).data, status=status.HTTP_201_CREATED)


class ContactsApi(ContactListApi, ContactCreateApi):
    """/api/contacts/: GET lists (ContactListApi), POST creates (ContactCreateApi)."""


class LeadListApi(APIView):
    """GET: the company's leads, newest first; filter by status, stage, pipeline or contact phone."""

    pagination_class = NewestFirstCursorPagination

    class FilterSerializer(StrictInputMixin, serializers.Serializer):
        status = serializers.ChoiceField(choices=Lead.Status.choices, required=False)
        stage = serializers.IntegerField(required=False)
        pipeline = serializers.IntegerField(required=False)
        phone = serializers.CharField(required=False, max_length=32)

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        external_id = serializers.CharField()
        status = serializers.CharField()
        channel = serializers.CharField()
        source = serializers.CharField()
        score = serializers.IntegerField()
        summary = serializers.CharField()
        pipeline = serializers.CharField(source="pipeline.name")
        pipeline_id = serializers.IntegerField()
        stage = serializers.CharField(source="stage.name")
        stage_id = serializers.IntegerField()
        contact = ContactOutputSerializer()
        created_at = serializers.DateTimeField()
        updated_at = serializers.DateTimeField()

    @extend_schema(
        operation_id="leads_list",
        parameters=[COMPANY_PARAMETER, FilterSerializer],
        responses={200: OutputSerializer(many=True)},
    )
    def get(self, request):
        company = request_company(request)
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        leads = lead_list(company=company, filters=filters.validated_data)
        return get_paginated_response(
            serializer_class=self.OutputSerializer,
            queryset=leads,
            request=request,
            view=self,
            pagination_class=self.pagination_class,
        )
