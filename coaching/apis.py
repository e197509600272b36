"""CoachNova's API: a worker's punctuality for staff and API keys, a worker's own (OTP login) at /me/..., runs
(trigger, read with impact) for the platform and the company."""

from __future__ import annotations

import re

from django.core.files.storage import default_storage
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.authentication import JWTAuthentication

from coaching.impact import overall_impact
from coaching.models import CoachingRun
from coaching.runs import CoachingRunLocked, CoachNovaDisabled, coaching_run_trigger
from coaching.selectors import worker_coaching, worker_punctuality
from coaching.voice import AUDIO_DIR
from crm.models import Company, Contact, Worker
from crm.tenancy.api import ApiKeyAuthentication, ApiKeyPrincipal, IsApiKey, IsApiKeyOrStaffUser, request_company
from shokti.api.authentication import InternalTokenAuthentication, IsInternal
from shokti.api.exceptions import Conflict
from shokti.api.serializers import StrictInputMixin


class WindowSerializer(serializers.Serializer):
    bookings = serializers.IntegerField()
    on_time = serializers.IntegerField()
    late = serializers.IntegerField(help_text="Late arrivals, no-shows and cancellations by the worker.")
    on_time_rate = serializers.FloatField(allow_null=True, help_text="Percent, excused bookings left out.")
    average_minutes_late = serializers.FloatField(allow_null=True)


class TrendWeekSerializer(serializers.Serializer):
    week_start = serializers.DateField()
    bookings = serializers.IntegerField()
    on_time_rate = serializers.FloatField(allow_null=True)


class BookingOutcomeSerializer(serializers.Serializer):
    booking_id = serializers.IntegerField()
    scheduled_at = serializers.DateTimeField()
    local_date = serializers.DateField()
    outcome = serializers.CharField(help_text="on_time, late, no_show, cancelled_by_worker")
    minutes_late = serializers.IntegerField()
    is_excused = serializers.BooleanField()


class PunctualitySerializer(serializers.Serializer):
    worker_id = serializers.IntegerField()
    as_of = serializers.DateField(allow_null=True, help_text="The last company-local day counted.")
    last_14_days = WindowSerializer()
    last_28_days = WindowSerializer()
    trend_change = serializers.FloatField(allow_null=True, help_text="Last 14 days' on-time rate minus the 14 before.")
    trend = TrendWeekSerializer(many=True, help_text="Weekly on-time rate, the last 12 weeks.")
    recent_bookings = BookingOutcomeSerializer(many=True)


class CoachingSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    run_id = serializers.IntegerField()
    sent_at = serializers.DateTimeField(source="processed_at", allow_null=True)
    text = serializers.CharField()
    booking_ids = serializers.ListField(child=serializers.IntegerField())
    reply_text = serializers.CharField()
    reply_reason = serializers.CharField()
    replied_at = serializers.DateTimeField(allow_null=True)
    accepted_at = serializers.DateTimeField(allow_null=True, help_text="A manager accepted the reason (excused).")


class ImpactSerializer(serializers.Serializer):
    estimate = serializers.FloatField(allow_null=True, help_text="Difference-in-differences, percentage points.")
    ci_low = serializers.FloatField(allow_null=True)
    ci_high = serializers.FloatField(allow_null=True)
    standard_error = serializers.FloatField(allow_null=True)
    coached_n = serializers.IntegerField()
    holdout_n = serializers.IntegerField()
    coached_change = serializers.FloatField(allow_null=True)
    holdout_change = serializers.FloatField(allow_null=True)


class WorkerPunctualityApi(APIView):
    """GET /api/workers/{id}/punctuality: one worker's punctuality (staff of the company or its API key)."""

    permission_classes = [IsApiKeyOrStaffUser]

    @extend_schema(operation_id="worker_punctuality", responses={200: PunctualitySerializer})
    def get(self, request, pk: int):
        company = request_company(request)
        worker = Worker.objects.select_related("company").filter(company=company, pk=pk).first()
        if worker is None:
            raise exceptions.NotFound()
        return Response(PunctualitySerializer(worker_punctuality(worker=worker)).data)


def _own_worker(request) -> Worker:
    user = request.user
    if isinstance(user, ApiKeyPrincipal) or user.is_staff:
        raise exceptions.PermissionDenied("For a worker logged in by OTP.")
    contact = Contact.objects.filter(user=user, company__is_active=True).select_related("company").first()
    worker = Worker.objects.select_related("company").filter(contact=contact).first() if contact else None
    if worker is None:
        raise exceptions.PermissionDenied("Your login is not a worker's.")
    return worker


class MyPunctualityApi(APIView):
    """GET /me/punctuality: the logged-in worker's own punctuality."""

    authentication_classes = [JWTAuthentication]
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="my_punctuality", responses={200: PunctualitySerializer})
    def get(self, request):
        return Response(PunctualitySerializer(worker_punctuality(worker=_own_worker(request))).data)


class MyCoachingApi(APIView):
    """GET /me/coaching: the coaching the logged-in worker received, with their replies (the last 50)."""

    authentication_classes = [JWTAuthentication]
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="my_coaching", responses={200: CoachingSerializer(many=True)})
    def get(self, request):
        rows = worker_coaching(worker=_own_worker(request))[:50]
        return Response(CoachingSerializer(rows, many=True).data)


class RunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    is_dry_run = serializers.BooleanField()
    is_seeded = serializers.BooleanField(help_text="Demo data: its outcomes were written by seed_demo.")
    trigger = serializers.CharField()
    as_of = serializers.DateField()
    counts = serializers.DictField()
    impact = serializers.DictField(help_text="estimate, ci_low, ci_high (95%), coached_n, holdout_n, days_after ...")
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class CoachingRunDetailApi(APIView):
    """GET /api/coaching/runs/{id}: a run, its counts by status and skip reason, and its impact."""

    permission_classes = [IsApiKeyOrStaffUser]

    @extend_schema(operation_id="coaching_run", responses={200: RunSerializer})
    def get(self, request, pk: int):
        run = get_object_or_404(CoachingRun, company=request_company(request), pk=pk)
        return Response(RunSerializer(run).data)


class CoachingImpactApi(APIView):
    """GET /api/coaching/impact: every real run's coached and holdout workers pooled."""

    permission_classes = [IsApiKeyOrStaffUser]

    class OutputSerializer(ImpactSerializer):
        includes_seeded = serializers.BooleanField(help_text="Seeded demo runs are part of it.")

    @extend_schema(operation_id="coaching_impact", responses={200: OutputSerializer})
    def get(self, request):
        return Response(self.OutputSerializer(overall_impact(company=request_company(request))).data)


class CoachNovaRunApi(APIView):
    """POST /internal/ai/coachnova/run: queue a CoachNova run (202); 409 while one is active (`locked`) or when the
    policy switches CoachNova off (`coachnova_disabled`)."""

    authentication_classes = [InternalTokenAuthentication, ApiKeyAuthentication]
    permission_classes = [IsInternal | IsApiKey]
    error_responses = {409: "`locked`: a run is queued, running or paused; `coachnova_disabled`: off by policy."}

    class InputSerializer(StrictInputMixin, serializers.Serializer):
        company_id = serializers.IntegerField(required=False, min_value=1)
        dry_run = serializers.BooleanField(required=False, default=False)

    class OutputSerializer(serializers.Serializer):
        status = serializers.CharField()
        run_id = serializers.IntegerField()
        dry_run = serializers.BooleanField()

    @extend_schema(request=InputSerializer, responses={202: OutputSerializer}, operation_id="coachnova_run")
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if isinstance(request.user, ApiKeyPrincipal):
            company = request_company(request, requested_id=data.get("company_id"))
        else:
            if data.get("company_id") is None:
                raise exceptions.ValidationError({"company_id": ["Required with the internal token."]})
            company = Company.objects.filter(pk=data["company_id"], is_active=True).first()
            if company is None:
                raise exceptions.ValidationError({"company_id": ["Unknown company."]})
        try:
            run = coaching_run_trigger(company=company, is_dry_run=data["dry_run"], trigger="api")
        except CoachNovaDisabled as error:
            raise Conflict(str(error), code="coachnova_disabled") from None
        except CoachingRunLocked as error:
            raise Conflict(str(error), code="locked") from None
        return Response({"status": run.status, "run_id": run.pk, "dry_run": run.is_dry_run},
                        status=status.HTTP_202_ACCEPTED)


def coaching_audio(request, name: str):
    """GET /coaching/audio/<name>: a coaching message's speech (the random name is the key, as a short link's)."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{16,40}\.mp3", name):
        raise Http404()
    path = f"{AUDIO_DIR}/{name}"
    if not default_storage.exists(path):
        raise Http404()
    return FileResponse(default_storage.open(path, "rb"), content_type="audio/mpeg")
