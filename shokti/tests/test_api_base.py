"""The API base: API-key and JWT authentication, the one error shape, throttling, schema and docs."""

import datetime as dt

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from crm.models import ApiKey, Contact
from crm.services import api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db

PASSWORD = "pass-word-123"  # crm.tests.factories.UserFactory's


def error(response) -> dict:
    """The error object, after checking the response is exactly {"error": {code, message, fields}}."""
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"code", "message", "fields"} <= set(body["error"]), body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


# --- API key -------------------------------------------------------------------------------


def test_api_key_in_authorization_header_is_accepted(api_key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key[1]}")

    response = client.get("/api/contacts/")

    assert response.status_code == 200
    api_key[0].refresh_from_db()
    assert api_key[0].last_used_at is not None


def test_api_key_in_x_api_key_header_is_accepted(api_key):
    response = APIClient().get("/api/contacts/", HTTP_X_API_KEY=api_key[1])

    assert response.status_code == 200


def test_last_used_at_is_not_written_on_every_request(api_key):
    recently = timezone.now() - dt.timedelta(seconds=5)
    ApiKey.objects.filter(pk=api_key[0].pk).update(last_used_at=recently)

    APIClient().get("/api/contacts/", HTTP_X_API_KEY=api_key[1])

    api_key[0].refresh_from_db()
    assert api_key[0].last_used_at == recently


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda raw: raw[:-1] + ("A" if raw[-1] != "A" else "B"), id="wrong secret"),
        pytest.param(lambda raw: "sk_000000000000_" + raw.split("_", 2)[2], id="unknown prefix"),
        pytest.param(lambda raw: "sk_short", id="not a key"),
        pytest.param(lambda raw: raw.replace("sk_", "pk_", 1), id="wrong kind"),
    ],
)
def test_wrong_api_key_is_401(api_key, mangle):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {mangle(api_key[1])}")

    response = client.get("/api/contacts/")

    assert response.status_code == 401
    assert error(response) == {"code": "authentication_failed", "message": "Invalid API key.", "fields": {}}


def test_revoked_api_key_is_401(api_key):
    api_key_revoke(api_key=api_key[0])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key[1]}")

    response = client.get("/api/contacts/")

    assert response.status_code == 401
    assert error(response)["message"] == "This API key is revoked or its company is inactive."


def test_api_key_of_an_inactive_company_is_401(company, api_key):
    company.is_active = False
    company.save(update_fields=["is_active"])

    response = APIClient().get("/api/contacts/", HTTP_X_API_KEY=api_key[1])

    assert response.status_code == 401


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"HTTP_AUTHORIZATION": "Api-Key"}, id="keyword alone"),
        pytest.param({"HTTP_AUTHORIZATION": "Api-Key sk_a sk_b"}, id="two keys"),
        pytest.param({"HTTP_X_API_KEY": ""}, id="empty X-Api-Key"),
        pytest.param({"HTTP_X_API_KEY": "Api-Key sk_abc"}, id="keyword inside X-Api-Key"),
    ],
)
def test_malformed_api_key_header_is_401(api_key, headers):
    response = APIClient().get("/api/contacts/", **headers)

    assert response.status_code == 401
    assert error(response)["code"] == "authentication_failed"
    assert "Malformed" in error(response)["message"]


def test_no_credentials_is_401_with_a_challenge():
    response = APIClient().get("/api/contacts/")

    assert response.status_code == 401
    assert error(response) == {
        "code": "not_authenticated",
        "message": "Authentication credentials were not provided.",
        "fields": {},
    }
    assert response["WWW-Authenticate"].startswith("Bearer")


# --- JWT -----------------------------------------------------------------------------------


def test_token_obtain_with_email_and_password_then_use_it(staff_user):
    client = APIClient()

    tokens = client.post("/api/token/", {"email": "alice@alpha.test", "password": PASSWORD}, format="json")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens.json()['access']}")
    listed = client.get("/api/contacts/")

    assert tokens.status_code == 200
    assert set(tokens.json()) == {"access", "refresh"}
    assert listed.status_code == 200


def test_token_obtain_with_a_wrong_password_is_401(staff_user):
    response = APIClient().post("/api/token/", {"email": "alice@alpha.test", "password": "nope"}, format="json")

    assert response.status_code == 401
    assert error(response)["code"] == "no_active_account"


def test_token_obtain_without_fields_is_400(staff_user):
    response = APIClient().post("/api/token/", {}, format="json")

    assert response.status_code == 400
    assert set(error(response)["fields"]) == {"email", "password"}


def test_refresh_rotates_and_blacklists_the_old_refresh_token(staff_user):
    client = APIClient()
    first = client.post("/api/token/", {"email": "alice@alpha.test", "password": PASSWORD}, format="json").json()

    rotated = client.post("/api/token/refresh/", {"refresh": first["refresh"]}, format="json")
    replayed = client.post("/api/token/refresh/", {"refresh": first["refresh"]}, format="json")

    assert rotated.status_code == 200
    assert set(rotated.json()) == {"access", "refresh"}
    assert rotated.json()["refresh"] != first["refresh"]
    assert replayed.status_code == 401
    assert error(replayed)["code"] == "token_not_valid"


def test_a_forged_bearer_token_is_401_with_one_message():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer not.a.jwt")

    response = client.get("/api/contacts/")

    assert response.status_code == 401
    body = error(response)
    assert body["code"] == "token_not_valid"
    assert body["message"] == "Given token not valid for any token type"


# --- the error shape for each status -------------------------------------------------------


def test_400_malformed_json_body(key_client):
    response = key_client.post("/api/contacts/", data='{"phone": ', content_type="application/json")

    assert response.status_code == 400
    assert error(response)["code"] == "parse_error"
    assert Contact.objects.count() == 0


def test_403_permission_denied(company, other_staff_user):
    client = APIClient()
    client.force_authenticate(other_staff_user)

    response = client.get("/api/contacts/", {"company_id": company.pk})

    assert response.status_code == 403
    assert error(response)["code"] == "permission_denied"


@pytest.mark.parametrize("path", ["/api/no-such-endpoint/", "/no-such-page"])
def test_404_outside_the_admin_is_json(path):
    response = Client().get(path)

    assert response.status_code == 404
    assert error(response) == {"code": "not_found", "message": "Not found.", "fields": {}}


def test_404_inside_the_admin_stays_html(staff_user):
    client = Client()
    client.force_login(staff_user)

    response = client.get("/admin/crm/no-such-model/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.urls("shokti.tests.urls_errors")
def test_404_raised_inside_an_api_view():
    response = Client().get("/api/missing/")

    assert response.status_code == 404
    assert error(response)["code"] == "not_found"


def test_405_method_not_allowed(key_client):
    response = key_client.delete("/api/contacts/")

    assert response.status_code == 405
    assert error(response) == {"code": "method_not_allowed", "message": 'Method "DELETE" not allowed.', "fields": {}}


def test_409_conflict(company, key_client):
    key_client.post("/api/contacts/", {"phone": "01712345678"}, format="json")

    response = key_client.post("/api/contacts/", {"phone": "+8801712345678"}, format="json")

    assert response.status_code == 409
    assert error(response)["code"] == "conflict"


def test_415_unsupported_media_type(key_client):
    response = key_client.post("/api/contacts/", data="phone=0171", content_type="text/plain")

    assert response.status_code == 415
    assert error(response)["code"] == "unsupported_media_type"
    assert Contact.objects.count() == 0


@pytest.mark.urls("shokti.tests.urls_errors")
@pytest.mark.parametrize("path", ["/crash", "/api/crash/"])
def test_500_is_json_outside_the_admin(path):
    response = Client(raise_request_exception=False).get(path)

    assert response.status_code == 500
    assert error(response) == {"code": "server_error", "message": "Internal server error.", "fields": {}}


# --- throttling ----------------------------------------------------------------------------


@pytest.fixture
def tiny_rates(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "anon": "2/minute",
            "user": "2/minute",
            "api_key": "2/minute",
        },
    }


def test_api_key_throttle_is_per_key_and_answers_429(company, api_key, tiny_rates):
    _, other_raw_key = api_key_create(company=company, name="second")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key[1]}")

    statuses = [client.get("/api/contacts/").status_code for _ in range(3)]
    throttled = client.get("/api/contacts/")
    other_key = APIClient().get("/api/contacts/", HTTP_X_API_KEY=other_raw_key)

    assert statuses == [200, 200, 429]
    assert throttled.status_code == 429
    body = error(throttled)
    assert body["code"] == "throttled"
    assert 0 < body["retry_after_seconds"] <= 60
    assert int(throttled["Retry-After"]) == body["retry_after_seconds"]
    assert other_key.status_code == 200


def test_user_throttle_answers_429(staff_user, jwt_client, tiny_rates):
    statuses = [jwt_client.get("/api/contacts/").status_code for _ in range(3)]

    assert statuses == [200, 200, 429]


def test_anonymous_throttle_answers_429(tiny_rates):
    # The token endpoint is open to anonymous callers, so it is the one password guessing hits.
    credentials = {"email": "nobody@example.test", "password": "guess"}
    responses = [APIClient().post("/api/token/", credentials, format="json") for _ in range(3)]

    assert [response.status_code for response in responses] == [401, 401, 429]
    assert error(responses[2])["code"] == "throttled"


# --- schema and docs -----------------------------------------------------------------------


def test_schema_names_the_api_key_and_jwt_security_schemes():
    response = Client().get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    schema = response.json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["ApiKey"]["type"] == "apiKey"
    assert (schemes["ApiKey"]["in"], schemes["ApiKey"]["name"]) == ("header", "X-Api-Key")
    assert (schemes["jwtAuth"]["type"], schemes["jwtAuth"]["scheme"]) == ("http", "bearer")
    contacts = schema["paths"]["/api/contacts/"]
    assert set(contacts) >= {"get", "post"}
    assert {"ApiKey": []} in contacts["post"]["security"]
    assert {"jwtAuth": []} in contacts["post"]["security"]
    assert "/api/leads/" in schema["paths"]
    assert "/api/token/" in schema["paths"]
    # HackSoft's nested serializers of different views do not collide
    assert {"ContactCreateInput", "ContactOutput", "LeadListOutput"} <= set(schema["components"]["schemas"])


def test_the_schema_stays_english_for_a_bengali_caller():
    english = Client().get("/api/schema/", {"format": "json"}).content.decode()
    bengali = Client(HTTP_ACCEPT_LANGUAGE="bn").get("/api/schema/", {"format": "json"}).content.decode()

    assert bengali == english
    assert "what upserts match on" in bengali and "আপসার্ট" not in bengali


def test_swagger_ui_renders_from_local_static_files():
    response = Client().get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower()


def test_collectstatic_then_static_files_are_served_with_debug_off(settings, tmp_path):
    # given: a production-like run, DEBUG off, files collected
    settings.DEBUG = False
    settings.STATIC_ROOT = str(tmp_path / "static")
    call_command("collectstatic", interactive=False, verbosity=0)

    # when: a new client, so WhiteNoise indexes the freshly collected folder
    response = Client().get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    compressed = Client().get(
        "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js", HTTP_ACCEPT_ENCODING="gzip"
    )

    # then
    assert response.status_code == 200
    assert b"SwaggerUIBundle" in b"".join(response.streaming_content)
    assert compressed["Content-Encoding"] == "gzip"


def test_nested_serializers_are_named_after_their_view_and_documented_without_extend_schema():
    from django.urls import path
    from drf_spectacular.generators import SchemaGenerator
    from rest_framework import serializers
    from rest_framework.views import APIView

    class WidgetCreateApi(APIView):
        class InputSerializer(serializers.Serializer):
            name = serializers.CharField()

        class OutputSerializer(serializers.Serializer):
            id = serializers.IntegerField()

        def post(self, request): ...

    class WidgetListApi(APIView):
        class OutputSerializer(serializers.Serializer):
            name = serializers.CharField()

        def get(self, request): ...

    generator = SchemaGenerator(
        patterns=[path("widgets/", WidgetCreateApi.as_view()), path("widgets/all/", WidgetListApi.as_view())]
    )

    schema = generator.get_schema(request=None, public=True)

    assert {"WidgetCreateInput", "WidgetCreateOutput", "WidgetListOutput"} <= set(schema["components"]["schemas"])
    post = schema["paths"]["/widgets/"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/WidgetCreateInput"
    }
    listed = schema["paths"]["/widgets/all/"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert listed == {"type": "array", "items": {"$ref": "#/components/schemas/WidgetListOutput"}}
