"""engage's REST endpoints: the inbound webhook, queue stats and dead-letter replay."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.models import Channel
from crm.services import phone_normalize
from crm.tenancy.api import IsApiKey, IsStaffUser, request_company
from engage.selectors import queue_stats
from engage.services import dlq_replay, inbound_message_capture
from engage.services.inbound import inbound_text_max_length
from shokti.api.serializers import ShallowCopiedFieldsMixin


class IsApiKeyOrStaffUser(IsApiKey):
    message = "This endpoint needs a company API key or a staff login."

    def has_permission(self, request, view) -> bool:
        return super().has_permission(request, view) or IsStaffUser().has_permission(request, view)


class InboundMessageApi(APIView):
    """POST /inbound-message: a website form or integration delivers a lead's message (API key)."""

    permission_classes = [IsApiKey]

    class InputSerializer(ShallowCopiedFieldsMixin, serializers.Serializer):
        phone_number = serializers.CharField(max_length=32)
        contact_name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
        message_text = serializers.CharField(max_length=100_000)
        channel = serializers.ChoiceField(choices=Channel.choices)
        company_id = serializers.CharField(max_length=64, required=False, allow_blank=True, allow_null=True)
        email = serializers.EmailField(max_length=254, required=False, allow_blank=True, default="")
        source = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
        external_id = serializers.CharField(max_length=190, required=False, allow_blank=True, default="")

        def validate_phone_number(self, value: str) -> str:
            try:
                return phone_normalize(phone=value, region=self.context["company"].default_region)
            except DjangoValidationError as error:
                raise serializers.ValidationError(error.messages) from None

        def validate_message_text(self, value: str) -> str:
            if len(value) > inbound_text_max_length():
                raise serializers.ValidationError(f"At most {inbound_text_max_length()} characters.")
            return value

    class OutputSerializer(serializers.Serializer):
        status = serializers.CharField()
        lead_id = serializers.IntegerField()
        message_id = serializers.IntegerField()
        job_id = serializers.IntegerField(allow_null=True)

    @extend_schema(request=InputSerializer, responses={202: OutputSerializer}, operation_id="inbound_message")
    def post(self, request):
        if not isinstance(request.data, dict):
            raise serializers.ValidationError({"non_field_errors": ["Expected a JSON object."]})
        company = request_company(request, requested_id=request.data.get("company_id"))
        serializer = self.InputSerializer(data=request.data, context={"company": company})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        result = inbound_message_capture(
            company=company,
            channel=data["channel"],
            text=data["message_text"],
            phone=data["phone_number"],
            email=data["email"],
            contact_name=data["contact_name"],
            source=data["source"],
            external_id=data["external_id"],
        )
        return Response(
            {"status": "ok", "lead_id": result.lead_id, "message_id": result.message_id, "job_id": result.job_id},
            status=status.HTTP_202_ACCEPTED,
        )


class QueueStatsApi(APIView):
    """GET /queue/stats: the caller's company's job counts (API key, or staff JWT with `company_id`)."""

    permission_classes = [IsApiKeyOrStaffUser]

    @extend_schema(
        operation_id="queue_stats",
        responses={
            200: inline_serializer(
                "QueueStats",
                {
                    "company_id": serializers.IntegerField(),
                    "queued": serializers.IntegerField(),
                    "scheduled": serializers.IntegerField(),
                    "processing": serializers.IntegerField(),
                    "completed": serializers.IntegerField(),
                    "failed": serializers.IntegerField(),
                    "dlq": serializers.IntegerField(),
                    "cancelled": serializers.IntegerField(),
                    "oldest_queued_age_seconds": serializers.FloatField(allow_null=True),
                },
            )
        },
    )
    def get(self, request):
        company = request_company(request)
        return Response(queue_stats(company=company))


class DlqReplayApi(APIView):
    """POST /admin/dlq/replay: staff replay up to `max_jobs` dead jobs of one of their companies."""

    permission_classes = [IsStaffUser]

    class InputSerializer(serializers.Serializer):
        max_jobs = serializers.IntegerField(min_value=1, max_value=1000, default=10)
        company_id = serializers.IntegerField(required=False)

    @extend_schema(
        request=InputSerializer,
        operation_id="dlq_replay",
        responses={200: inline_serializer("DlqReplay", {"replayed": serializers.IntegerField(), "job_ids": serializers.ListField(child=serializers.IntegerField())})},
    )
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        company = request_company(request, requested_id=serializer.validated_data.get("company_id"))
        job_ids = dlq_replay(company=company, max_jobs=serializer.validated_data["max_jobs"])
        return Response({"replayed": len(job_ids), "job_ids": job_ids, "company_id": company.pk})
