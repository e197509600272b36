"""/api/reports/...: the dashboard's numbers for integrations (staff JWT or the company's API key).

The company comes from the credentials (`request_company`: an API key's own company, or the staff member's
chosen with `company_id`). A staff member sees the cards of their role (Marketing: engagement only); an API key,
the company's integration, sees every card. Bad filters are 400 with the one error shape.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.tenancy.api import ApiKeyPrincipal, IsApiKeyOrStaffUser, request_company
from reports import selectors
from shokti.api.serializers import StrictInputMixin

COMPANY_PARAMETER = OpenApiParameter(
    "company_id", int, description="For staff in several companies: which one. Ignored for API keys (must match)."
)
ALL_DIMENSIONS = sorted({name for dimensions in selectors.DIMENSIONS.values() for name in dimensions})


class PeriodFilter(StrictInputMixin, serializers.Serializer):
    period = serializers.ChoiceField(choices=list(selectors.PERIODS), required=False,
                                     default=selectors.DEFAULT_PERIOD,
                                     help_text="today, 7d, 30d or 90d (local days of the company, ending today).")
    company_id = serializers.IntegerField(required=False, min_value=1)


class BreakdownFilter(PeriodFilter):
    card = serializers.ChoiceField(choices=list(selectors.DIMENSIONS))
    dimension = serializers.ChoiceField(choices=ALL_DIMENSIONS, help_text="engagement: channel, template_version, "
                                        "campaign, service_category, cohort; workers: zone, service_category, coached.")


class CardOutputSerializer(serializers.Serializer):
    card = serializers.CharField()
    period = serializers.CharField()
    first = serializers.DateField(help_text="First local day of the period.")
    last = serializers.DateField(help_text="Last local day of the period (today in the company's time zone).")
    data_as_of = serializers.DateTimeField(allow_null=True, help_text="When the rollups last read the raw rows.")
    totals = serializers.DictField(required=False, help_text="metric -> {value, previous, change (%)}.")
    series = serializers.DictField(required=False, help_text="labels (first day of each bucket), datasets.")
    time_in_stage = serializers.ListField(
        child=serializers.DictField(), required=False,
        help_text="leads card: per stage, the leads that left it in the period (stays) and the median and p90 of "
                  "their local days in it (median_days, p90_days).")


class BreakdownOutputSerializer(serializers.Serializer):
    card = serializers.CharField()
    dimension = serializers.CharField()
    period = serializers.CharField()
    first = serializers.DateField()
    last = serializers.DateField()
    data_as_of = serializers.DateTimeField(allow_null=True)
    rows = serializers.ListField(child=serializers.DictField(), help_text="segment and the card's metrics.")


def _check_card(request, company, card: str) -> None:
    if isinstance(request.user, ApiKeyPrincipal):
        return
    if card not in selectors.cards_for_user(user=request.user, company=company):
        raise exceptions.PermissionDenied("Your role does not show this card.")


def _validation(error: DjangoValidationError) -> exceptions.ValidationError:
    return exceptions.ValidationError(error.message_dict)


class ReportCardApi(APIView):
    """GET /api/reports/cards/{card}/: one dashboard card (engagement, ai, leads, workers, operations)."""

    permission_classes = [IsApiKeyOrStaffUser]

    @extend_schema(operation_id="reports_card", parameters=[PeriodFilter], responses={200: CardOutputSerializer})
    def get(self, request, card: str):
        if card not in selectors.CARDS:
            raise exceptions.ValidationError({"card": [f"One of {', '.join(selectors.CARDS)}."]})
        filters = PeriodFilter(data=request.query_params)
        filters.is_valid(raise_exception=True)
        company = request_company(request)
        _check_card(request, company, card)
        try:
            return Response(selectors.card(company=company, card=card, period=filters.validated_data["period"]))
        except DjangoValidationError as error:
            raise _validation(error) from error


class ReportBreakdownApi(APIView):
    """GET /api/reports/breakdown/: a card's metrics by one segment dimension."""

    permission_classes = [IsApiKeyOrStaffUser]

    @extend_schema(operation_id="reports_breakdown", parameters=[BreakdownFilter],
                   responses={200: BreakdownOutputSerializer})
    def get(self, request):
        filters = BreakdownFilter(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        company = request_company(request)
        _check_card(request, company, data["card"])
        try:
            return Response(selectors.breakdown(company=company, card=data["card"], dimension=data["dimension"],
                                                period=data["period"]))
        except DjangoValidationError as error:
            raise _validation(error) from error
