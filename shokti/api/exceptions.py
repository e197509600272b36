"""One error shape for every API error: {"error": {"code", "message", "fields"}}."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response

logger = logging.getLogger(__name__)


class ApplicationError(exceptions.APIException):
    """A business rule said no. Raise with a code and a status."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, status_code: int | None = None, fields=None):
        super().__init__(detail=message, code=code or self.default_code)
        if status_code is not None:
            self.status_code = status_code
        self.fields = fields or {}


class Conflict(ApplicationError):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class RequestTooLarge(exceptions.APIException):
    """413: the body is over DATA_UPLOAD_MAX_MEMORY_SIZE (refused before it is read whole)."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"

    def __init__(self, detail=None, code=None):
        limit = getattr(settings, "DATA_UPLOAD_MAX_MEMORY_SIZE", None)
        super().__init__(detail or f"The request body is larger than {limit} bytes.", code)


class ServiceUnavailable(exceptions.APIException):
    """503 with Retry-After: a part the request needs (the database) is briefly away; retrying is safe."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "unavailable"
    default_detail = "The service is briefly unavailable (the database is restarting?); retry in a few seconds."


def retry_after_seconds() -> int:
    return int(getattr(settings, "SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS", 5))


CODE_BY_STATUS = {
    400: "invalid",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    429: "throttled",
    503: "unavailable",
}


def flatten_errors(detail) -> dict[str, list[str]]:
    """DRF's nested error detail as {"field": ["message", ...]}, nested fields as dotted paths (`stages.0.kind`).

    A nested serializer's own error (`stages` given a word instead of a list) is reported under its field.
    """
    fields: dict[str, list[str]] = {}

    def walk(prefix: str, value) -> None:
        if isinstance(value, Mapping):
            for key, inner in value.items():
                if prefix and key in ("non_field_errors", "non_field_error"):
                    walk(prefix, inner)
                else:
                    walk(f"{prefix}.{key}" if prefix else str(key), inner)
        elif isinstance(value, list) and value and not all(isinstance(item, str) for item in value):
            for index, inner in enumerate(value):
                if inner:
                    walk(f"{prefix}.{index}" if prefix else str(index), inner)
        else:
            items = value if isinstance(value, list) else [value]
            fields.setdefault(prefix or "non_field_errors", []).extend(str(item) for item in items)

    walk("", detail)
    return fields


def error_body(*, code: str, message: str, fields: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def exception_handler(exc, context):
    # Imported here: rest_framework.views loads the parser classes, which import this module.
    from rest_framework.views import exception_handler as drf_exception_handler

    if isinstance(exc, RequestDataTooBig):
        exc = RequestTooLarge()
    elif isinstance(exc, SuspiciousOperation):
        # Too many form fields, a malformed multipart body ...: the client's fault, never a 500.
        exc = exceptions.ParseError(str(exc) or "Malformed request.")
    elif isinstance(exc, OperationalError | InterfaceError):
        # A connection lost mid-request (PostgreSQL restarting, a terminated backend): left to
        # shokti.middleware.DatabaseUnavailableMiddleware, which retries what is safe to retry, else 503.
        return None
    elif isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        exc = exceptions.ValidationError(detail=detail)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None

    code = CODE_BY_STATUS.get(response.status_code, "error")
    fields: dict = {}
    if isinstance(exc, exceptions.ValidationError):
        fields = flatten_errors(exc.detail)
        message = "Some fields are invalid." if set(fields) != {"non_field_errors"} else fields["non_field_errors"][0]
    else:
        detail = exc.detail
        if isinstance(detail, dict) and "detail" in detail:
            # simplejwt's InvalidToken: {"detail": ..., "code": ..., "messages": [...]}.
            message = str(detail["detail"])
            code = str(detail.get("code") or code)
        elif isinstance(detail, (list, dict)):
            message = "; ".join(message for messages in flatten_errors(detail).values() for message in messages)
        else:
            message = str(detail)
            # DRF's own codes say more than the status: parse_error, authentication_failed ...
            code = str(exc.get_codes()) if isinstance(exc.get_codes(), str) else code
        if isinstance(exc, ApplicationError):
            code = str(exc.get_codes())
            fields = exc.fields
    body = error_body(code=code, message=message, fields=fields)
    headers = dict(response.headers.items())
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        body["error"]["retry_after_seconds"] = int(exc.wait)
    elif isinstance(exc, ServiceUnavailable):
        body["error"]["retry_after_seconds"] = retry_after_seconds()
        headers["Retry-After"] = str(retry_after_seconds())
    return Response(body, status=response.status_code, headers=headers)


def _wants_html(request) -> bool:
    return request.path.startswith("/admin/")


def json_not_found(request, exception=None):
    if _wants_html(request):
        return defaults.page_not_found(request, exception)
    return JsonResponse(error_body(code="not_found", message="Not found."), status=404)


def json_error_response(*, status_code: int, message: str, code: str | None = None, **extra) -> JsonResponse:
    body = error_body(code=code or CODE_BY_STATUS.get(status_code, "error"), message=message)
    body["error"].update(extra)
    return JsonResponse(body, status=status_code)


def json_bad_request(request, exception=None):
    """Django's own 400s (a body over DATA_UPLOAD_MAX_MEMORY_SIZE is a 413), in the one error shape."""
    too_large = isinstance(exception, RequestDataTooBig)
    if _wants_html(request):
        response = defaults.bad_request(request, exception)
        if too_large:
            response.status_code = 413
        return response
    if too_large:
        return json_error_response(status_code=413, message=str(RequestTooLarge().detail))
    return json_error_response(status_code=400, message="Bad request.")


def json_permission_denied(request, exception=None):
    if _wants_html(request):
        return defaults.permission_denied(request, exception)
    return json_error_response(status_code=403, message="You do not have permission to perform this action.")


def json_service_unavailable(request=None) -> JsonResponse:
    """503 + Retry-After in the one error shape (the database is away; retrying is safe)."""
    seconds = retry_after_seconds()
    response = json_error_response(
        status_code=503, message=str(ServiceUnavailable.default_detail), retry_after_seconds=seconds
    )
    response["Retry-After"] = str(seconds)
    return response


def json_server_error(request):
    if isinstance(sys.exc_info()[1], OperationalError | InterfaceError):
        # Raised outside a view (a middleware's session or user lookup): the database is away, not a bug.
        return json_service_unavailable(request)
    if _wants_html(request):
        return defaults.server_error(request)
    return JsonResponse(error_body(code="server_error", message="Internal server error."), status=500)
