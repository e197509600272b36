"""POST /api/safety/check: the safety filter as a service, for integrators and bulk evaluation."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.tenancy.api import IsApiKeyOrStaffUser, request_company
from engage.ai.reasons import REASON_CODES
from engage.ai.services import CHECK_CHANNELS, CHECK_MESSAGE_TYPES, safety_text_check


class StrictCharField(serializers.CharField):
    """Text only: a number or a list is refused, not turned into text."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer only: "12", 12.0 and true are refused."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictChoiceField(serializers.ChoiceField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid_choice", input=data)
        return super().to_internal_value(data)


class SafetyCheckReasonSerializer(serializers.Serializer):
    code = serializers.ChoiceField(choices=sorted(REASON_CODES))
    message = serializers.CharField()


class SafetyCheckApi(APIView):
    """POST /api/safety/check: judge a text exactly as a send would (company API key, or staff JWT with company_id)."""

    permission_classes = [IsApiKeyOrStaffUser]

    class InputSerializer(serializers.Serializer):
        text = StrictCharField(max_length=20000, trim_whitespace=False)
        channel = StrictChoiceField(choices=CHECK_CHANNELS)
        locale = StrictChoiceField(choices=("bn", "en"), default="bn")
        message_type = StrictChoiceField(choices=CHECK_MESSAGE_TYPES, default="reply")
        contact_id = StrictIntegerField(required=False, min_value=1, help_text="The recipient: their name, phone and email are their own.")
        link = serializers.URLField(required=False, allow_blank=True, default="", max_length=2000,
                                    help_text="The booking link the text must carry (on one of the company's link hosts).")
        promo_code = StrictCharField(required=False, allow_blank=True, default="", max_length=40,
                                     help_text="The campaign's promo code: the only code the text may name.")
        service_id = StrictIntegerField(required=False, min_value=1, help_text="The service whose price the text may state.")
        company_id = StrictIntegerField(required=False, min_value=1, help_text="Staff in several companies: which one.")

        def validate(self, attrs):
            unknown = set(self.initial_data) - set(self.fields)
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in sorted(unknown)})
            return attrs

    class OutputSerializer(serializers.Serializer):
        safe = serializers.BooleanField()
        reasons = SafetyCheckReasonSerializer(many=True)

    @extend_schema(
        operation_id="safety_check",
        request=InputSerializer,
        responses={200: OutputSerializer},
        description=(
            "Judges `text` as a send on `channel` to `contact_id` would: length and script, banned phrases, other "
            "people's phone numbers and emails, offline moderation (profanity, insults, threats, sexual, political "
            "and religious content), credential requests, AI self-talk, a wrong recipient, placeholders, markup, "
            "invisible characters, links (only the company's link hosts), promises (prices, percentages, offers, "
            "guarantees and promo codes only as `service_id` and `promo_code` allow), shouting, tone (proactive "
            "messages) and the coaching rules; with a model key, the moderation endpoint and the tone judge too. "
            "Every reason is listed. Reason codes: " + ", ".join(sorted(REASON_CODES)) + "."
        ),
        examples=[
            OpenApiExample("A rejected text", response_only=True, value={
                "safe": False, "reasons": [
                    {"code": "credential_request", "message": "Asks for a secret (bkash pin) in “Send your bKash PIN to "
                     "confirm.”. We never ask customers or workers for a PIN, OTP, password or card number: remove the "
                     "request."},
                ]}),
        ],
    )
    def post(self, request):
        if not isinstance(request.data, dict):
            raise serializers.ValidationError({"non_field_errors": ["Expected a JSON object."]})
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        company = request_company(request, requested_id=data.get("company_id"))
        try:
            result = safety_text_check(
                company=company, text=data["text"], channel=data["channel"], locale=data["locale"],
                message_type=data["message_type"], contact_id=data.get("contact_id"), link=data["link"],
                promo_code=data["promo_code"], service_id=data.get("service_id"),
            )
        except DjangoValidationError as error:
            raise serializers.ValidationError(error.message_dict) from None
        return Response(result.verdict.as_dict())
