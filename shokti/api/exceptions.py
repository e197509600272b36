"""One error shape for every API error: {"error": {"code", "message", "fields"}}."""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

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


CODE_BY_STATUS = {
    400: "invalid",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    415: "unsupported_media_type",
    429: "throttled",
}


def _flatten(detail) -> dict:
    """DRF's nested error detail as {"field": ["message", ...]} with dotted paths for nesting."""
    fields: dict[str, list[str]] = {}

    def walk(prefix: str, value) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
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
    if isinstance(exc, DjangoValidationError):
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
        fields = _flatten(exc.detail)
        message = "Some fields are invalid." if set(fields) != {"non_field_errors"} else fields["non_field_errors"][0]
    else:
        detail = exc.detail
        if isinstance(detail, dict) and "detail" in detail:
            # simplejwt's InvalidToken: {"detail": ..., "code": ..., "messages": [...]}.
            message = str(detail["detail"])
            code = str(detail.get("code") or code)
        elif isinstance(detail, (list, dict)):
            message = "; ".join(message for messages in _flatten(detail).values() for message in messages)
        else:
            message = str(detail)
            # DRF's own codes say more than the status: parse_error, authentication_failed ...
            code = str(exc.get_codes()) if isinstance(exc.get_codes(), str) else code
        if isinstance(exc, ApplicationError):
            code = str(exc.get_codes())
            fields = exc.fields
    body = error_body(code=code, message=message, fields=fields)
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        body["error"]["retry_after_seconds"] = int(exc.wait)
    return Response(body, status=response.status_code, headers=dict(response.headers.items()))


def _wants_html(request) -> bool:
    return request.path.startswith("/admin/")


def json_not_found(request, exception=None):
    if _wants_html(request):
        return defaults.page_not_found(request, exception)
    return JsonResponse(error_body(code="not_found", message="Not found."), status=404)


def json_server_error(request):
    if _wants_html(request):
        return defaults.server_error(request)
    return JsonResponse(error_body(code="server_error", message="Internal server error."), status=500)
