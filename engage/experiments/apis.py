"""Experiments' REST endpoints (read-only), for a company's staff (JWT) or its API key:

    GET /api/experiments/                 the company's experiments, newest first
    GET /api/experiments/{id}/results     per variant counts and rates, uplift with its always-valid 95% interval,
                                          the sample-ratio check (results hidden below p = 0.001), guardrails,
                                          the uplift over time and the verdict in one sentence
"""

from __future__ import annotations

from django.utils import translation
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.tenancy.api import IsApiKeyOrStaffUser, request_company
from engage.experiments.selectors import experiment_results, experiments_for


class _VariantSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.CharField()
    weight = serializers.IntegerField()
    template_version_id = serializers.IntegerField(allow_null=True)
    settings = serializers.DictField()


class ExperimentListApi(APIView):
    """GET /api/experiments/: the company's experiments with their variants."""

    permission_classes = [IsApiKeyOrStaffUser]

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        name = serializers.CharField()
        hypothesis = serializers.CharField()
        unit = serializers.CharField()
        applies_to = serializers.CharField()
        campaign_id = serializers.IntegerField(allow_null=True)
        primary_metric = serializers.CharField()
        guardrails = serializers.ListField(child=serializers.CharField())
        status = serializers.CharField()
        started_at = serializers.DateTimeField(allow_null=True)
        stopped_at = serializers.DateTimeField(allow_null=True)
        variants = _VariantSerializer(many=True, source="variants.all")

    @extend_schema(operation_id="experiments_list", responses={200: OutputSerializer(many=True)})
    def get(self, request):
        experiments = experiments_for(company=request_company(request)).order_by("-created_at", "-id")[:200]
        return Response(self.OutputSerializer(experiments, many=True).data)


class ExperimentResultsApi(APIView):
    """GET /api/experiments/{id}/results: the latest phase's results (`?phase=N` for an earlier one)."""

    permission_classes = [IsApiKeyOrStaffUser]

    class OutputSerializer(serializers.Serializer):
        experiment_id = serializers.IntegerField()
        name = serializers.CharField()
        status = serializers.CharField()
        primary_metric = serializers.CharField()
        phase = serializers.IntegerField(allow_null=True)
        outcomes_refreshed_at = serializers.DateTimeField(allow_null=True)
        is_hidden = serializers.BooleanField(help_text="True when the sample-ratio check failed: no uplift is shown.")
        verdict = serializers.CharField()
        srm = serializers.DictField(allow_null=True, help_text="p_value, is_mismatch, counts, expected_shares.")
        variants = serializers.ListField(child=serializers.DictField())
        comparisons = serializers.ListField(
            child=serializers.DictField(), help_text="Each variant against control: uplift, uplift_low, uplift_high ..."
        )
        guardrail_breaches = serializers.ListField(child=serializers.DictField())
        timeline = serializers.ListField(child=serializers.DictField(), help_text="Cumulative uplift and interval a day.")

    @extend_schema(
        operation_id="experiment_results", responses={200: OutputSerializer},
        parameters=[OpenApiParameter("phase", int, required=False)],
    )
    def get(self, request, pk: int):
        experiment = experiments_for(company=request_company(request)).filter(pk=pk).first()
        if experiment is None:
            raise exceptions.NotFound()
        phase = request.query_params.get("phase")
        if phase is not None and not phase.isdigit():
            raise exceptions.ValidationError({"phase": ["A phase number."]})
        with translation.override("en"):  # the API's texts stay English, whatever the caller's Accept-Language
            results = experiment_results(experiment=experiment, phase_number=int(phase) if phase else None)
        return Response(self.OutputSerializer(results).data)
