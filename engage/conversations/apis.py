"""The inbound webhook: `POST /inbound-message` (a website form or an integration delivers a lead's message)."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.models import Channel
from crm.services import phone_normalize
from crm.tenancy.api import ApiKeyAuthentication, IsApiKey, request_company
from engage.conversations.inbound import inbound_message_capture, inbound_text_max_length
from shokti.api.serializers import IdField, ShallowCopiedFieldsMixin, StrictInputMixin


class InboundMessageApi(APIView):
    """POST /inbound-message: a website form or integration delivers a lead's message (API key)."""

    # Integrations only: a person's JWT is not accepted here (401), and the schema says so.
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [IsApiKey]
    # A delivery is deduplicated (external_id, or the payload within a window): running it again after a
    # lost database connection answers the same ids (shokti.middleware.DatabaseUnavailableMiddleware).
    is_retry_safe = True

    class InputSerializer(StrictInputMixin, ShallowCopiedFieldsMixin, serializers.Serializer):
        phone_number = serializers.CharField(max_length=32)
        contact_name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
        message_text = serializers.CharField(max_length=100_000)
        channel = serializers.ChoiceField(choices=Channel.choices)
        company_id = IdField(required=False)
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
