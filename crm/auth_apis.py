"""App-facing APIs of the CRM: OTP login, token refresh, the service catalogue.

Mounted at the root by shokti/urls.py: POST /auth/request-otp, POST /auth/verify-otp,
POST /auth/refresh, GET /services.
"""

from __future__ import annotations

import hashlib
import re

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.urls import path
from rest_framework import exceptions, serializers, status
from rest_framework.exceptions import APIException
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer, TokenRefreshSerializer
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from crm.auth import (
    USER_TYPE_CUSTOMER,
    USER_TYPES,
    OtpDeliveryFailed,
    OtpRateLimited,
    app_user_company,
    email_normalize,
    login_user_describe,
    otp_request,
    otp_verify,
)
from crm.lockouts import LockedOut
from crm.models import Company, User
from crm.selectors import service_list
from crm.tenancy.api import request_company
from shokti.api.exceptions import ApplicationError
from shokti.api.serializers import StrictInputMixin
from shokti.api.throttling import SimpleRateThrottle

PERIOD_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class WindowRateThrottle(SimpleRateThrottle):
    """DRF's sliding-window throttle, with rates like "3/15m" (N per k units) and read at each request."""

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def parse_rate(self, rate: str | None) -> tuple[int | None, int | None]:
        if rate is None:
            return None, None
        number, period = rate.split("/")
        match = re.fullmatch(r"(\d*)\s*([smhd])[a-z]*", period.strip())
        if match is None:
            raise ValueError(f"Unreadable throttle rate {rate!r}")
        return int(number), int(match.group(1) or 1) * PERIOD_SECONDS[match.group(2)]


class IpThrottle(WindowRateThrottle):
    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class EmailThrottle(WindowRateThrottle):
    """Keyed on the submitted email (hashed), known or not: the same limits for every address."""

    def get_cache_key(self, request, view) -> str | None:
        try:
            data = request.data
        except APIException as error:
            # A body that cannot be read has no email to count: the IP throttle still counted it, and
            # the view raises this error once every throttle has had its say (a 429 wins).
            request.unreadable_body_error = error
            return None
        email = data.get("email") if hasattr(data, "get") else None
        if not isinstance(email, str) or not email.strip():
            return None
        ident = hashlib.sha256(email_normalize(email=email).encode()).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": ident}


class ThrottledBeforeBodyMixin:
    """For views whose throttles read the body: every throttle counts the request first, then a body
    that could not be read is answered (400/413) as it would have been without them."""

    def check_throttles(self, request):
        super().check_throttles(request)
        error = getattr(request, "unreadable_body_error", None)
        if error is not None:
            raise error


class OtpRequestIpThrottle(IpThrottle):
    scope = "otp_request_ip"


class OtpRequestEmailThrottle(EmailThrottle):
    scope = "otp_request_email"


class OtpVerifyIpThrottle(IpThrottle):
    scope = "otp_verify_ip"


class OtpVerifyEmailThrottle(EmailThrottle):
    scope = "otp_verify_email"


class AuthRefreshIpThrottle(IpThrottle):
    scope = "anon"


SENT_MESSAGE = "If this email belongs to an account, a login code is on its way."


class OtpRequestApi(ThrottledBeforeBodyMixin, APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [OtpRequestIpThrottle, OtpRequestEmailThrottle]
    error_responses = {503: "`email_unavailable`: the code could not be emailed."}

    class OutputSerializer(serializers.Serializer):
        status = serializers.CharField()
        message = serializers.CharField()

    class InputSerializer(StrictInputMixin, serializers.Serializer):
        email = serializers.EmailField(max_length=254)
        user_type = serializers.ChoiceField(choices=USER_TYPES, default=USER_TYPE_CUSTOMER)

    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            otp_request(**serializer.validated_data)
        except OtpRateLimited:
            # What the email throttle says too, for known and unknown emails alike.
            raise exceptions.Throttled(wait=settings.OTP_CODES_WINDOW_MINUTES * 60) from None
        except OtpDeliveryFailed:
            raise ApplicationError(
                "The login code could not be emailed right now. Try again in a few minutes.",
                code="email_unavailable",
                status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            ) from None
        return Response({"status": "sent", "message": SENT_MESSAGE})


def _token_answer(*, access: str, refresh: str) -> dict:
    return {
        "access_token": access,
        "refresh_token": refresh,
        "token_type": "bearer",
        "expires_in": int(settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds()),
    }


class TokenPairSerializer(serializers.Serializer):
    access_token = serializers.CharField()
    refresh_token = serializers.CharField()
    token_type = serializers.CharField()
    expires_in = serializers.IntegerField()


class LoginUserSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    name = serializers.CharField()
    user_type = serializers.CharField()
    contact_id = serializers.IntegerField()
    company_id = serializers.IntegerField()
    customer_id = serializers.IntegerField(required=False, allow_null=True)
    worker_id = serializers.IntegerField(required=False, allow_null=True)
    locale = serializers.CharField()
    timezone = serializers.CharField()


class OtpVerifyApi(ThrottledBeforeBodyMixin, APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [OtpVerifyIpThrottle, OtpVerifyEmailThrottle]

    class OutputSerializer(TokenPairSerializer):
        user = LoginUserSerializer()

    class InputSerializer(StrictInputMixin, serializers.Serializer):
        email = serializers.EmailField(max_length=254)
        code = serializers.RegexField(r"^\d{6}$", error_messages={"invalid": "The code is 6 digits."})
        user_type = serializers.ChoiceField(choices=USER_TYPES, default=USER_TYPE_CUSTOMER)

    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            login = otp_verify(**serializer.validated_data)
        except DjangoValidationError as error:
            messages = error.message_dict.get("code", error.messages)
            raise ApplicationError(messages[0], code="invalid_code", fields={"code": messages}) from None
        return Response(
            {
                **_token_answer(access=login.access_token, refresh=login.refresh_token),
                "user": login_user_describe(user=login.user, contact=login.contact, user_type=login.user_type),
            }
        )


class AuthRefreshApi(APIView):
    """Rotate a refresh token: the old one is blacklisted, a new pair comes back."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [AuthRefreshIpThrottle]
    error_responses = {401: "The refresh token is invalid, expired or already used."}

    class OutputSerializer(TokenPairSerializer):
        pass

    class InputSerializer(StrictInputMixin, serializers.Serializer):
        refresh_token = serializers.CharField(max_length=4000)

    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        raw = serializer.validated_data["refresh_token"]
        try:
            with transaction.atomic():
                # Lock the outstanding row: two concurrent refreshes of one token cannot both rotate it.
                jti = RefreshToken(raw).get("jti")
                list(OutstandingToken.objects.select_for_update(of=("self",)).filter(jti=jti).order_by().values_list("pk", flat=True))
                refresh = TokenRefreshSerializer(data={"refresh": raw})
                refresh.is_valid(raise_exception=True)
        except (TokenError, InvalidToken) as error:
            raise ApplicationError(
                f"The refresh token is not valid: {error.args[0]}", code="not_authenticated", status_code=401
            ) from None
        except User.DoesNotExist:
            raise ApplicationError("The token's user no longer exists.", code="not_authenticated", status_code=401) from None
        return Response(_token_answer(access=refresh.validated_data["access"], refresh=refresh.validated_data["refresh"]))


class StrictTokenObtainPairSerializer(StrictInputMixin, TokenObtainPairSerializer):
    """simplejwt's email + password serializer, refusing non-text values instead of coercing them."""


class StrictTokenRefreshSerializer(StrictInputMixin, TokenRefreshSerializer):
    pass


class TokenObtainApi(TokenObtainPairView):
    """POST /api/token/: staff email + password → {"access", "refresh"}.

    Failed passwords are counted by django-axes per account and per client IP (crm/lockouts.py): the
    LOGIN_FAILURE_LIMIT-th failure (6) and every attempt after it, right password or not, is a 429
    `locked_out` with Retry-After until the lockout ends or an operator unlocks it.
    """

    serializer_class = StrictTokenObtainPairSerializer
    error_responses = {401: "`no_active_account`: wrong email or password.", 429: "Or `locked_out`: too many failed logins."}

    def post(self, request, *args, **kwargs):
        try:
            return super().post(request, *args, **kwargs)
        except exceptions.AuthenticationFailed:
            # axes flags the request it refused (locked), or whose failure reached the limit.
            if getattr(request, "axes_locked_out", False):
                raise LockedOut() from None
            raise


class TokenRefreshApi(TokenRefreshView):
    """POST /api/token/refresh/: a refresh token → a new pair (the old refresh token is blacklisted)."""

    serializer_class = StrictTokenRefreshSerializer
    error_responses = {401: "The refresh token is invalid, expired or blacklisted."}


class ServiceListApi(APIView):
    """The service catalogue of the caller's company (a customer's or worker's, through their contact; or staff's)."""

    authentication_classes = [JWTAuthentication]
    permission_classes = [IsAuthenticated]

    class FilterSerializer(StrictInputMixin, serializers.Serializer):
        category = serializers.CharField(max_length=100, required=False)
        include_inactive = serializers.BooleanField(required=False, default=False)

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        name = serializers.CharField()
        name_bn = serializers.CharField()
        category = serializers.CharField()
        base_price = serializers.DecimalField(max_digits=10, decimal_places=2)
        duration_minutes = serializers.IntegerField()
        is_active = serializers.BooleanField()

    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        company: Company | None
        if request.user.is_staff:
            company = request_company(request)
        else:
            company = app_user_company(user=request.user)
            if company is None:
                raise exceptions.PermissionDenied("Your login is not linked to a company.")
        services = service_list(company=company, **filters.validated_data)
        return Response(self.OutputSerializer(services, many=True).data)


urlpatterns = [
    path("auth/request-otp", OtpRequestApi.as_view(), name="auth-request-otp"),
    path("auth/verify-otp", OtpVerifyApi.as_view(), name="auth-verify-otp"),
    path("auth/refresh", AuthRefreshApi.as_view(), name="auth-refresh"),
    path("services", ServiceListApi.as_view(), name="service-list"),
]
