"""The job ledger over REST: `GET /queue/stats` and `POST /admin/dlq/replay`."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.authentication import JWTAuthentication

from crm.tenancy.api import ApiKeyAuthentication, IsApiKeyOrStaffUser, IsStaffUser, request_company
from engage.ledger.selectors import queue_stats
from engage.ledger.services import dlq_replay
from shokti.api.serializers import StrictInputMixin


class QueueStatsApi(APIView):
    """GET /queue/stats: the caller's company's job counts (API key, staff JWT or a console session, with
    `company_id` when the person works for several)."""

    # A logged-in console session may read it too (a GET: nothing to forge, so no CSRF concern).
    authentication_classes = [JWTAuthentication, ApiKeyAuthentication, SessionAuthentication]
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

    authentication_classes = [JWTAuthentication]
    permission_classes = [IsStaffUser]

    class InputSerializer(StrictInputMixin, serializers.Serializer):
        max_jobs = serializers.IntegerField(min_value=1, max_value=1000, default=10)
        company_id = serializers.IntegerField(required=False, min_value=1)

    @extend_schema(
        request=InputSerializer,
        operation_id="dlq_replay",
        responses={200: inline_serializer("DlqReplay", {
            "replayed": serializers.IntegerField(),
            "job_ids": serializers.ListField(child=serializers.IntegerField()),
            "refused": inline_serializer("DlqReplayRefused", {
                "job_id": serializers.IntegerField(), "reason": serializers.CharField(),
            }, many=True),
            "company_id": serializers.IntegerField(),
        })},
    )
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        company = request_company(request, requested_id=serializer.validated_data.get("company_id"))
        result = dlq_replay(company=company, max_jobs=serializer.validated_data["max_jobs"])
        return Response({
            "replayed": len(result.replayed), "job_ids": result.replayed, "company_id": company.pk,
            "refused": [{"job_id": job_id, "reason": reason} for job_id, reason in result.refused],
        })
