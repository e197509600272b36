"""App-facing engage APIs: POST /events, GET /book (deep link), POST /api/deeplinks/verify.

Mounted at the root by shokti/urls.py.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.http import HttpResponseRedirect, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.authentication import JWTAuthentication

from crm.auth import app_user_contact
from crm.tenancy.api import request_company
from engage.campaigns.attribution import USER_EVENT_TYPES, deeplink_follow_record, user_event_record
from engage.campaigns.deeplinks import DeepLinkClaims, DeepLinkInvalid, deeplink_verify, short_link_target
from shokti.api.exceptions import ApplicationError, error_body
from shokti.api.serializers import StrictInputMixin
from shokti.api.throttling import AnonRateThrottle
from shokti.middleware import api_chain

METADATA_MAX_KEYS = 50


class EventCreateApi(APIView):
    """Record what an app user did about a message: 202 {"status": "accepted", "event_id"}."""

    authentication_classes = [JWTAuthentication]
    permission_classes = [IsAuthenticated]

    class InputSerializer(StrictInputMixin, serializers.Serializer):
        event_type = serializers.CharField(max_length=64)
        correlation_id = serializers.UUIDField(required=False, allow_null=True)
        source = serializers.CharField(max_length=64, required=False, default="app")
        metadata = serializers.DictField(required=False, default=dict)
        occurred_at = serializers.DateTimeField(required=False)

        def validate_event_type(self, value: str) -> str:
            if value not in USER_EVENT_TYPES:
                raise serializers.ValidationError(f"Unknown event type; one of {', '.join(USER_EVENT_TYPES)}.")
            return value

        def validate_metadata(self, value: dict) -> dict:
            if len(value) > METADATA_MAX_KEYS:
                raise serializers.ValidationError(f"At most {METADATA_MAX_KEYS} keys.")
            return value

    class OutputSerializer(serializers.Serializer):
        status = serializers.CharField()
        event_id = serializers.IntegerField()

    @extend_schema(request=InputSerializer, responses={202: OutputSerializer}, operation_id="events_create")
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = request.user
        if user.is_staff:
            company = request_company(request)
            contact = None
        else:
            # An app user reports about their own messages only: their contact, read once with its company
            # (a login without a contact, or whose company was deactivated, is a 403, never a 500).
            contact = app_user_contact(user=user)
            if contact is None:
                raise exceptions.PermissionDenied("Your login is not linked to a customer of an active company.")
            company = contact.company
        event = user_event_record(company=company, contact=contact, actor=user, **serializer.validated_data)
        return Response({"status": "accepted", "event_id": event.pk}, status=status.HTTP_202_ACCEPTED)


def _app_url(*, token: str, claims: DeepLinkClaims, utm: dict[str, str]) -> str:
    base = urlsplit(settings.DEEP_LINK_APP_URL)
    query = {"token": token, "type": claims.type}
    if claims.service_id is not None:
        query["service_id"] = str(claims.service_id)
    if claims.promo_code:
        query["promo_code"] = claims.promo_code
    query.update(utm)
    encoded = urlencode(query)
    return urlunsplit((base.scheme, base.netloc, base.path, f"{base.query}&{encoded}" if base.query else encoded, ""))


def _follow(token: str):
    """Verify and record; DeepLinkInvalid or a Django ValidationError when the link cannot be honoured."""
    claims = deeplink_verify(token=token)
    event = deeplink_follow_record(claims=claims)
    return claims, event


@api_chain
@never_cache
@require_GET
def book_redirect(request):
    """GET /book?token=...: record `deeplink_followed` and send the browser to the app's booking page."""
    from django.core.exceptions import ValidationError

    token = request.GET.get("token", "")
    try:
        claims, _ = _follow(token)
    except DeepLinkInvalid as error:
        return JsonResponse(error_body(code=f"link_{error.reason}", message=error.message), status=400)
    except ValidationError as error:
        return JsonResponse(error_body(code="link_invalid", message=error.messages[0]), status=400)
    utm = {key: value for key, value in request.GET.items() if key.startswith("utm_")}
    return HttpResponseRedirect(_app_url(token=token, claims=claims, utm=utm))


@api_chain
@never_cache
@require_GET
def short_link_redirect(request, code: str):
    """GET /l/<code>: the short link in an SMS or WhatsApp reminder; on to its signed link (/book records the follow)."""
    try:
        target = short_link_target(code=code)
    except DeepLinkInvalid as error:
        status = 410 if error.reason == "expired" else 404
        return JsonResponse(error_body(code=f"link_{error.reason}", message=error.message), status=status)
    return HttpResponseRedirect(target)


class DeepLinkVerifyApi(APIView):
    """The API twin of GET /book for apps that open links themselves: verify, record, answer the claims."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [AnonRateThrottle]

    class InputSerializer(StrictInputMixin, serializers.Serializer):
        token = serializers.CharField(max_length=2000)

    class OutputSerializer(serializers.Serializer):
        valid = serializers.BooleanField()
        company_id = serializers.IntegerField()
        customer_id = serializers.IntegerField()
        service_id = serializers.IntegerField(allow_null=True)
        promo_code = serializers.CharField(allow_blank=True)
        type = serializers.CharField()
        expires_at = serializers.DateTimeField()
        correlation_id = serializers.CharField(allow_null=True)
        event_id = serializers.IntegerField()

    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            claims, event = _follow(serializer.validated_data["token"])
        except DeepLinkInvalid as error:
            raise ApplicationError(error.message, code=f"link_{error.reason}") from None
        return Response({"valid": True, **claims.as_dict(), "event_id": event.pk})
