"""drf-spectacular extensions: the API-key security scheme in the OpenAPI schema.

Imported from ShoktiConfig.ready() so the extension is registered before any schema is built.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "shokti.api.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-Api-Key",
            "description": "A company API key `sk_...` (shown once when created in the admin). "
            "`Authorization: Api-Key sk_...` works too.",
        }
