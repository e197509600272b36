"""OpenAPI schema: the API-key and internal-token security schemes, and the AutoSchema for our API style.

Imported from ShoktiConfig.ready() so the extension is registered before any schema is built;
settings.REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"] points at AutoSchema.
"""

from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.generics import GenericAPIView


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
    name = "InternalToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "The platform's own callers (schedulers): `Authorization: Bearer <INTERNAL_API_TOKEN>`.",
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

    def get_response_serializers(self):
        nested = self._nested("OutputSerializer")
        if nested is None:
            if self._nested("InputSerializer") is not None:
                return None  # documented by its request; no body worth guessing
            return super().get_response_serializers()
        # A GET on a path without an id ({pk}, {slug} ...) answers a list.
        is_list = self.method == "GET" and "{" not in self.path
        return nested(many=True) if is_list else nested
