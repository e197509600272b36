"""SmartEngage's REST endpoints (the seed's paths): admin send-single / send-bulk, internal run-segment.

Mounted at the site root through engage/urls.py:
    POST /admin/smartengage/send-single      staff JWT
    POST /admin/smartengage/send-bulk        staff JWT
    POST /internal/ai/smartengage/run-segment   `Authorization: Bearer <INTERNAL_API_TOKEN>` or a company API key
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.authentication import JWTAuthentication

from crm.models import Channel, Company, Customer, Service
from crm.tenancy.api import ApiKeyAuthentication, ApiKeyPrincipal, IsApiKey, IsStaffUser, request_company
from engage.campaigns.deeplinks import MAX_TTL_HOURS, PROMO_CODE_MAX_LENGTH
from engage.campaigns.models import Campaign, CampaignRun
from engage.campaigns.runs import (
    SMARTENGAGE_DISABLED,
    SmartEngageDisabled,
    campaign_for_segment,
    campaign_run_trigger,
    campaign_smartengage_check,
    segment_customers,
)
from engage.campaigns.smartengage.pipeline import smartengage_bulk_send, smartengage_reminder_send
from engage.campaigns.smartengage.planning import customers_for_company
from shokti.api.authentication import InternalTokenAuthentication, IsInternal
from shokti.api.exceptions import Conflict
from shokti.api.serializers import StrictInputMixin

BYPASS_PERMISSION = "engage.bypass_frequency_caps"
SYNC_MAX_CUSTOMERS = 1000


def _service_for(*, company: Company, service_id: int | None) -> Service | None:
    if service_id is None:
        return None
    service = Service.objects.filter(company=company, pk=service_id).first()
    if service is None:
        raise exceptions.ValidationError({"service_id": ["Unknown service."]})
    return service


def _check_bypass(request, wanted: bool) -> None:
    if wanted and not request.user.has_perm(BYPASS_PERMISSION):
        raise exceptions.PermissionDenied("Bypassing the frequency caps needs the engage.bypass_frequency_caps permission.")


class _SendInput(StrictInputMixin, serializers.Serializer):
    company_id = serializers.IntegerField(required=False, min_value=1)
    service_id = serializers.IntegerField(required=False, allow_null=True, min_value=1, default=None)
    promo_code = serializers.CharField(required=False, allow_blank=True, default="", max_length=PROMO_CODE_MAX_LENGTH)
    ttl_hours = serializers.IntegerField(required=False, min_value=1, max_value=MAX_TTL_HOURS, default=None)
    channel = serializers.ChoiceField(choices=Channel.choices, required=False, default=Channel.EMAIL)
    bypass_frequency_caps = serializers.BooleanField(required=False, default=False)


class SmartEngageSendSingleApi(APIView):
    """POST /admin/smartengage/send-single: remind one customer now."""

    error_responses = {404: "Unknown customer (or another company's)."}

    authentication_classes = [JWTAuthentication]  # staff logins; API keys are not accepted here (401)
    permission_classes = [IsStaffUser]

    class InputSerializer(_SendInput):
        customer_id = serializers.IntegerField(min_value=1)
        message_type = serializers.ChoiceField(choices=["reminder"], required=False, default="reminder")

    class OutputSerializer(serializers.Serializer):
        success = serializers.BooleanField()
        customer_id = serializers.IntegerField()
        status = serializers.CharField()
        reason = serializers.CharField()
        correlation_id = serializers.CharField()
        message_id = serializers.IntegerField(allow_null=True)
        template_version_id = serializers.IntegerField(allow_null=True)
        body = serializers.CharField()
        error = serializers.CharField()

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer}, operation_id="smartengage_send_single")
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        company = request_company(request, requested_id=data.get("company_id"))
        _check_bypass(request, data["bypass_frequency_caps"])
        customer = (
            Customer.objects.select_related("contact__company", "company")
            .filter(company=company, pk=data["customer_id"])
            .first()
        )
        if customer is None:  # another company's customer looks exactly like a missing one
            raise exceptions.NotFound("Unknown customer.")
        outcome = smartengage_reminder_send(
            company=company,
            customer=customer,
            service=_service_for(company=company, service_id=data["service_id"]),
            promo_code=data["promo_code"],
            ttl_hours=data["ttl_hours"],
            channel=data["channel"],
            bypass_frequency_caps=data["bypass_frequency_caps"],
            actor=request.user,
        )
        return Response(self.OutputSerializer(outcome.as_dict()).data)


class SmartEngageSendBulkApi(APIView):
    """POST /admin/smartengage/send-bulk: remind listed customers, or the eligible segment, now (at most 1000)."""

    authentication_classes = [JWTAuthentication]  # staff logins; API keys are not accepted here (401)
    permission_classes = [IsStaffUser]

    class InputSerializer(_SendInput):
        customer_ids = serializers.ListField(
            child=serializers.IntegerField(min_value=1), required=False, allow_empty=False, max_length=SYNC_MAX_CUSTOMERS
        )
        booking_cadence_days = serializers.IntegerField(required=False, min_value=1, max_value=365)
        batch_size = serializers.IntegerField(required=False, min_value=1, max_value=500, default=100)
        dry_run = serializers.BooleanField(required=False, default=False)

        def validate(self, attrs):
            if not attrs.get("customer_ids") and not attrs.get("booking_cadence_days"):
                raise serializers.ValidationError(
                    {"customer_ids": ["Give customer_ids, or booking_cadence_days to remind the eligible segment."]}
                )
            return attrs

    class OutputSerializer(serializers.Serializer):
        total_eligible = serializers.IntegerField()
        sent = serializers.IntegerField()
        failed = serializers.IntegerField()
        skipped = serializers.IntegerField()
        rendered = serializers.IntegerField()
        queued = serializers.IntegerField(help_text="Sent by another process (a worker) that had not finished yet.")
        duration_seconds = serializers.FloatField()

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer}, operation_id="smartengage_send_bulk")
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        company = request_company(request, requested_id=data.get("company_id"))
        _check_bypass(request, data["bypass_frequency_caps"])
        service = _service_for(company=company, service_id=data["service_id"])
        if data.get("customer_ids"):
            customers = customers_for_company(company=company, customer_ids=data["customer_ids"])
        else:
            customers = segment_customers(
                company=company, cadence_days=data["booking_cadence_days"], channel=data["channel"],
                limit=SYNC_MAX_CUSTOMERS,
            )
        result = smartengage_bulk_send(
            company=company,
            customers=customers,
            channel=data["channel"],
            service=service,
            promo_code=data["promo_code"],
            ttl_hours=data["ttl_hours"],
            batch_size=data["batch_size"],
            bypass_frequency_caps=data["bypass_frequency_caps"],
            dry_run=data["dry_run"],
        )
        return Response(self.OutputSerializer(result.as_dict()).data)


class SmartEngageRunSegmentApi(APIView):
    """POST /internal/ai/smartengage/run-segment: queue a campaign run (202); 409 while one is under way
    (`locked`) or when the company's policy switches SmartEngage off (`smartengage_disabled`)."""

    authentication_classes = [InternalTokenAuthentication, ApiKeyAuthentication]
    permission_classes = [IsInternal | IsApiKey]
    error_responses = {409: "`locked`: a run is already queued or running; `smartengage_disabled`: off by policy."}

    class InputSerializer(StrictInputMixin, serializers.Serializer):
        company_id = serializers.IntegerField(required=False, min_value=1)
        campaign_id = serializers.IntegerField(required=False, min_value=1)
        preset = serializers.CharField(required=False, max_length=40)
        cadence_days = serializers.IntegerField(required=False, min_value=1, max_value=365)
        send_window = serializers.RegexField(r"^\d{1,2}-\d{1,2}$", required=False)
        batch_size = serializers.IntegerField(required=False, min_value=1, max_value=10000)
        promo_code = serializers.CharField(required=False, allow_blank=True, max_length=PROMO_CODE_MAX_LENGTH)
        dry_run = serializers.BooleanField(required=False, default=False)

        def validate_send_window(self, value: str) -> tuple[int, int]:
            start, end = (int(part) for part in value.split("-"))
            if not 0 <= start < end <= 24:
                raise serializers.ValidationError("A window is start-end in hours, 0 <= start < end <= 24.")
            return start, end

    class OutputSerializer(serializers.Serializer):
        status = serializers.CharField()
        correlation_id = serializers.CharField()
        run_id = serializers.IntegerField()
        campaign_id = serializers.IntegerField()
        dry_run = serializers.BooleanField()

    def _company(self, request, company_id: int | None) -> Company:
        if isinstance(request.user, ApiKeyPrincipal):
            return request_company(request, requested_id=company_id)
        if company_id is None:
            raise exceptions.ValidationError({"company_id": ["Required with the internal token."]})
        company = Company.objects.filter(pk=company_id, is_active=True).first()
        if company is None:
            raise exceptions.ValidationError({"company_id": ["Unknown company."]})
        return company

    @extend_schema(request=InputSerializer, responses={202: OutputSerializer}, operation_id="smartengage_run_segment")
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        company = self._company(request, data.get("company_id"))
        try:
            campaign_smartengage_check(company=company)
        except SmartEngageDisabled:
            # The request is fine; the company's state refuses it, before anything is written or queued.
            raise Conflict(SMARTENGAGE_DISABLED, code="smartengage_disabled") from None
        if data.get("campaign_id"):
            campaign = Campaign.objects.filter(company=company, pk=data["campaign_id"]).first()
            if campaign is None:
                raise exceptions.ValidationError({"campaign_id": ["Unknown campaign."]})
        else:
            campaign = campaign_for_segment(company=company, preset_name=data.get("preset"))
        overrides = {}
        if "cadence_days" in data:
            overrides["cadence_days"] = data["cadence_days"]
        if "batch_size" in data:
            overrides["batch_size"] = data["batch_size"]
        if "send_window" in data:
            overrides["send_window_start_hour"], overrides["send_window_end_hour"] = data["send_window"]
        run = campaign_run_trigger(
            campaign=campaign,
            is_dry_run=data["dry_run"],
            trigger=CampaignRun.Trigger.API,
            preset_name=data.get("preset"),
            promo_code=data.get("promo_code"),
            overrides=overrides,
        )
        if run.status == CampaignRun.Status.LOCKED:
            raise Conflict(
                "A run of this campaign is already queued or running; this one was recorded as locked.",
                code="locked",
            )
        body = {
            "status": "started",
            "correlation_id": str(run.correlation_id),
            "run_id": run.pk,
            "campaign_id": campaign.pk,
            "dry_run": run.is_dry_run,
        }
        return Response(self.OutputSerializer(body).data, status=status.HTTP_202_ACCEPTED)
