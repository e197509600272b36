"""OpenAPI schema: the API-key and internal-token security schemes, and the AutoSchema for our API style.

Imported from ShoktiConfig.ready() so the extension is registered before any schema is built;
settings.REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"] points at AutoSchema. The schema must say what
the API really does, and `openapi-spec-validator` must accept it (shokti/tests/test_schema.py):
every operation lists the error statuses it can answer (in the one error shape), and its security
is the authentication its view really accepts.
"""

from __future__ import annotations

from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny

# Formats whose strings can never be empty: a default of "" for them breaks strict OpenAPI validators.
_FORMATS_WITHOUT_EMPTY = {"email", "uri", "url", "uuid", "date", "date-time", "time", "ipv4", "ipv6", "hostname"}


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Machine-readable: invalid, parse_error, not_authenticated, ...")
    message = serializers.CharField()
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), help_text="Field errors, dotted paths for nesting."
    )
    retry_after_seconds = serializers.IntegerField(required=False, help_text="429 and 503: when to try again.")


class ErrorSerializer(serializers.Serializer):
    """The one error shape of every API error (shokti/api/exceptions.py)."""

    error = ErrorDetailSerializer()


ERROR_DESCRIPTIONS = {
    400: "Invalid input: malformed body, wrong field types or values (`fields` names them).",
    401: "No, wrong, revoked or expired credentials.",
    403: "Not allowed: another company's data, or a role without this permission.",
    404: "Unknown object or link.",
    405: "A method this path does not take (the path's other methods): `Allow` lists the ones it takes.",
    409: "Conflict with the current state.",
    413: "The body is larger than the server accepts.",
    415: "The body is neither JSON nor a form.",
    429: "Too many requests: wait `retry_after_seconds` (Retry-After).",
    503: "A part the request needs is briefly unavailable (the database restarting): retry after Retry-After.",
}


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "crm.tenancy.api.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-Api-Key",
            "description": "A company API key `sk_...` (shown once when created in the admin). "
            "`Authorization: Api-Key sk_...` works too.",
        }


class InternalTokenAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "shokti.api.authentication.InternalTokenAuthentication"
    name = "internalToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "The platform scheduler's `INTERNAL_API_TOKEN` (`Authorization: Bearer ...`); "
            "off when the setting is empty.",
        }


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's AutoSchema, taught our API style (HackSoft's nested serializers).

    - A plain APIView with a nested `InputSerializer` / `OutputSerializer` documents them as its
      request and response without an `@extend_schema` (which still wins when given).
    - Nested serializers are named after their view: `ContactCreateApi.InputSerializer` becomes
      the component `ContactCreateInput`, so two views' `InputSerializer`s never collide.
    """

    def get_serializer_name(self, serializer, direction) -> str:
        cls = serializer if isinstance(serializer, type) else serializer.__class__
        parts = cls.__qualname__.split(".")
        if len(parts) >= 2 and parts[-2] != "<locals>":
            return parts[-2].removesuffix("Api") + parts[-1]
        return super().get_serializer_name(serializer, direction)

    def _nested(self, name: str):
        if isinstance(self.view, GenericAPIView):
            return None
        return getattr(self.view, name, None)

    def get_request_serializer(self):
        nested = self._nested("InputSerializer")
        return nested if nested is not None else super().get_request_serializer()

    def _get_response_bodies(self, direction="response"):
        """The view's own responses, plus every error status it can answer, in the one error shape."""
        responses = super()._get_response_bodies(direction)
        for status_code in sorted(self.error_statuses()):
            description = ERROR_DESCRIPTIONS.get(status_code, "Error.")
            extra = self._view_error_responses().get(status_code)
            if extra:
                description = f"{description} {extra}"
            responses.setdefault(
                str(status_code),
                self._get_response_for_code(
                    OpenApiResponse(response=ErrorSerializer, description=description), str(status_code),
                    ["application/json"], direction,
                ),
            )
        return responses

    def error_statuses(self) -> set[int]:
        """400 and 503 everywhere; 401/403 behind authentication or a permission; 404 with path parameters;
        413/415 with a body; 429 with throttles; plus the view's own `error_responses`."""
        statuses = {400, 503}
        if self.view.get_authenticators() and not all(
            isinstance(permission, AllowAny) for permission in self.view.get_permissions()
        ):
            statuses |= {401, 403}
        if "{" in self.path:
            statuses.add(404)
        if self.method in ("POST", "PUT", "PATCH"):
            statuses |= {413, 415}
        if self.view.get_throttles():
            statuses.add(429)
        statuses |= set(self._view_error_responses())
        return statuses

    def _view_error_responses(self) -> dict[int, str]:
        """A view's `error_responses`: {status: why}, or {"POST": {status: why}} for one method only."""
        declared = getattr(self.view, "error_responses", {}) or {}
        if any(isinstance(key, str) for key in declared):
            return declared.get(self.method, {})
        return declared

    def get_response_serializers(self):
        nested = self._nested("OutputSerializer")
        if nested is None:
            if self._nested("InputSerializer") is not None:
                return None  # documented by its request; no body worth guessing
            return super().get_response_serializers()
        # A GET on a path without an id ({pk}, {slug} ...) answers a list.
        is_list = self.method == "GET" and "{" not in self.path
        return nested(many=True) if is_list else nested


HTTP_METHODS = ("get", "put", "post", "delete", "patch")


def method_not_allowed_responses(result, generator, request, public):
    """POSTPROCESSING_HOOKS: a path that does not take every method answers 405 (with `Allow`) to the others.
    OpenAPI has no place for a path's answer to a method it lacks, so every operation of such a path lists
    405, in the one error shape, with the `Allow` header (DRF sends it on every response)."""
    error = {"$ref": "#/components/schemas/Error"}
    for operations in result.get("paths", {}).values():
        methods = [method for method in operations if method in HTTP_METHODS]
        if not methods or set(HTTP_METHODS) <= set(methods):
            continue
        allowed = ", ".join(method.upper() for method in HTTP_METHODS if method in methods)
        for method in methods:
            operations[method].setdefault("responses", {}).setdefault("405", {
                "description": f"{ERROR_DESCRIPTIONS[405]} This path takes {allowed}.",
                "headers": {"Allow": {"description": "The methods this path takes.", "schema": {"type": "string"}}},
                "content": {"application/json": {"schema": error}},
            })
    return result


def drop_impossible_defaults(result, generator, request, public):
    """POSTPROCESSING_HOOKS: remove `default: ""` from strings whose format cannot be empty (an optional email
    that defaults to blank): the server fills the default in; a validator would reject the schema."""

    def walk(node):
        if isinstance(node, dict):
            if node.get("default") == "" and node.get("format") in _FORMATS_WITHOUT_EMPTY:
                del node["default"]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(result.get("components", {}))
    walk(result.get("paths", {}))
    return result


def lib_doc_excludes() -> list[type]:
    """drf-spectacular's GET_LIB_DOC_EXCLUDES plus our own plumbing: its docstrings say how the code works,
    not what an endpoint or a schema means, and never belong in the API docs."""
    from drf_spectacular.plumbing import get_lib_doc_excludes

    from shokti.api.serializers import ShallowCopiedFieldsMixin, StrictInputMixin

    return [*get_lib_doc_excludes(), ShallowCopiedFieldsMixin, StrictInputMixin]
