"""The API keeps its contract: a valid OpenAPI 3 schema that states each operation's real authentication and
every status it answers, strict input types, and a company_id the caller cannot act for is 403 everywhere.

Schemathesis drives every operation of the schema in process (WSGI), once with a company API key and once
with a staff JWT: a fixed number of examples per operation, derandomized (the same cases every run), and
every response checked: no server error, a documented status, a documented content type, a body that
matches the schema.
"""

import json
import re

import hypothesis
import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck
from openapi_spec_validator import validate
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from crm.models import Contact, Lead
from crm.services import api_key_create
from crm.tests.factories import ContactFactory, CustomerFactory, LeadFactory, ServiceFactory
from engage.models import Job, Message

pytestmark = pytest.mark.django_db

EXAMPLES_PER_OPERATION = 10
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def raw_schema() -> dict:
    response = APIClient().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return json.loads(response.content)


# --- the schema ------------------------------------------------------------------------------------


def test_the_schema_is_valid_openapi_3():
    validate(raw_schema())  # raises with the first violation


def security_of(schema: dict, path: str, method: str) -> set[str]:
    return {name for requirement in schema["paths"][path][method].get("security", []) for name in requirement}


def test_each_operation_states_the_authentication_its_view_really_accepts():
    schema = raw_schema()

    assert security_of(schema, "/inbound-message", "post") == {"ApiKey"}
    assert security_of(schema, "/admin/dlq/replay", "post") == {"jwtAuth"}
    assert security_of(schema, "/admin/smartengage/send-single", "post") == {"jwtAuth"}
    assert security_of(schema, "/admin/smartengage/send-bulk", "post") == {"jwtAuth"}
    assert security_of(schema, "/internal/ai/smartengage/run-segment", "post") == {"internalToken", "ApiKey"}
    assert security_of(schema, "/queue/stats", "get") == {"jwtAuth", "ApiKey", "cookieAuth"}
    assert security_of(schema, "/services", "get") == {"jwtAuth"}
    assert schema["components"]["securitySchemes"]["internalToken"] == {
        "type": "http", "scheme": "bearer",
        "description": "The platform scheduler's `INTERNAL_API_TOKEN` (`Authorization: Bearer ...`); off when the "
        "setting is empty.",
    }


def test_each_operation_documents_its_error_statuses_in_the_one_error_shape():
    schema = raw_schema()
    error_ref = {"$ref": "#/components/schemas/Error"}

    responses = schema["paths"]["/inbound-message"]["post"]["responses"]
    assert set(responses) == {"202", "400", "401", "403", "405", "413", "415", "429", "503"}
    assert responses["429"]["content"]["application/json"]["schema"] == error_ref
    assert set(schema["paths"]["/api/contacts/"]["post"]["responses"]) >= {"409"}
    assert "409" not in schema["paths"]["/api/contacts/"]["get"]["responses"]
    assert set(schema["paths"]["/internal/ai/smartengage/run-segment"]["post"]["responses"]) >= {"409"}
    assert set(schema["paths"]["/api/token/"]["post"]["responses"]) == {
        "200", "400", "401", "405", "413", "415", "429", "503"
    }
    assert set(schema["paths"]["/channels/sms/{token}/status"]["post"]["responses"]) == {
        "204", "400", "403", "404", "405", "413", "415", "503"
    }
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert {"400", "503"} <= set(operation["responses"]), (method, path)


# --- strict input types ------------------------------------------------------------------------------


@pytest.fixture
def key_and_staff(company, api_key, staff_user):
    key = APIClient()
    key.credentials(HTTP_X_API_KEY=api_key[1])
    staff = APIClient()
    staff.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(staff_user).access_token}")
    return key, staff


def _json_body_fields(schema: dict, operation: dict) -> dict[str, dict]:
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    if not body:
        return {}
    if "$ref" in body:
        body = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
    return body.get("properties", {})


WRONG_TYPE = {"string": 12345, "integer": "12", "boolean": 1, "number": "1.5", "array": "x", "object": "x"}


def test_every_json_body_field_refuses_a_value_of_the_wrong_type(key_and_staff):
    # Every operation taking a JSON body, every property: the wrong JSON type is a 400 naming that field.
    schema = raw_schema()
    key, staff = key_and_staff
    callers = {"/inbound-message": key, "/api/contacts/": key, "/internal/ai/smartengage/run-segment": key,
               "/internal/ai/coachnova/run": key}
    checked = 0
    for path, operations in schema["paths"].items():
        if "{" in path or "post" not in operations:
            continue
        for name, field in _json_body_fields(schema, operations["post"]).items():
            kind = field.get("type")
            if kind not in WRONG_TYPE or field.get("readOnly"):
                continue
            client = callers.get(path, staff if "jwtAuth" in security_of(schema, path, "post") else APIClient())
            # A decimal is read from a JSON string or number alike (documented as a string): a boolean is wrong for both.
            wrong = True if field.get("format") == "decimal" else WRONG_TYPE[kind]
            response = client.post(path, {name: wrong}, format="json")
            assert response.status_code == 400, (path, name, response.status_code, response.content[:300])
            assert name in response.json()["error"]["fields"], (path, name, response.json())
            checked += 1
    assert checked >= 40  # the walk really covered the API's inputs


@pytest.mark.parametrize(
    "company_id", [{"id": 1}, [1], True, 1.5, "one"], ids=["object", "list", "boolean", "fraction", "word"]
)
def test_a_company_id_that_is_not_an_id_is_400_and_writes_nothing(key_and_staff, company_id):
    key, staff = key_and_staff
    before = (Contact.objects.count(), Message.objects.count(), Job.objects.count())

    answers = [
        key.post("/inbound-message", {"phone_number": "+8801711000001", "message_text": "hi", "channel": "console",
                                      "company_id": company_id}, format="json"),
        key.post("/api/contacts/", {"phone": "+8801711000002", "company_id": company_id}, format="json"),
        staff.post("/admin/dlq/replay", {"company_id": company_id}, format="json"),
    ]

    for response in answers:
        assert response.status_code == 400, response.content
        assert "company_id" in response.json()["error"]["fields"]
    assert (Contact.objects.count(), Message.objects.count(), Job.objects.count()) == before


def test_a_json_number_for_phone_number_is_400(key_client, company):
    response = key_client.post(
        "/inbound-message", {"phone_number": 8801712345678, "message_text": "hi", "channel": "console"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"phone_number": ["Must be text."]}
    assert Lead.objects.count() == 0


# --- a foreign company_id ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/contacts/", "/api/leads/", "/queue/stats"])
def test_an_api_key_asking_for_another_company_is_403_on_every_read(key_client, other_company, company, path):
    ContactFactory(company=company)

    by_query = key_client.get(path, {"company_id": other_company.pk})
    by_header = key_client.get(path, HTTP_X_COMPANY_ID=str(other_company.pk))
    own = key_client.get(path, {"company_id": company.pk})
    unknown = key_client.get(path, {"company_id": 987654321})

    for response in (by_query, by_header, unknown):
        assert response.status_code == 403, response.content
        assert response.json()["error"]["code"] == "permission_denied"
    assert own.status_code == 200


def test_the_three_callers_of_queue_stats(key_client, jwt_client, other_staff_user, company):
    bob = APIClient()
    bob.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(other_staff_user).access_token}")

    assert key_client.get("/queue/stats").json()["company_id"] == company.pk
    assert jwt_client.get("/queue/stats", {"company_id": company.pk}).status_code == 200
    assert bob.get("/queue/stats", {"company_id": company.pk}).status_code == 403
    assert APIClient().get("/queue/stats").status_code == 401


# --- schemathesis over every operation ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def in_process_wsgi():
    """Django's WSGI handler inside the test's transaction: like django.test.Client, it must not close the
    test's connection at each request's start and end. One handler for the module: schemathesis keeps the
    constants it reads from the application's code per application object (a few hundred ms to build)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield WSGIHandler()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture(scope="module")
def served_schema(in_process_wsgi):
    """The schema as the application serves it at /api/schema/, fetched once for the module's operations."""
    return schemathesis.openapi.from_wsgi("/api/schema/?format=json", in_process_wsgi)


@pytest.fixture
def world(company, staff_user, settings, in_process_wsgi):
    """Data for the operations to find (contacts, leads, customers, services), throttles out of the way."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": dict.fromkeys(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "100000/minute"),
    }
    settings.INTERNAL_API_TOKEN = "internal-test-token"
    for _ in range(3):
        LeadFactory(company=company)
        CustomerFactory(company=company)
    ServiceFactory(company=company)
    _, raw_key = api_key_create(company=company, name="schemathesis")
    return {
        "app": in_process_wsgi,
        "key": {"X-Api-Key": raw_key},
        "staff": {"Authorization": f"Bearer {RefreshToken.for_user(staff_user).access_token}"},
    }


def operations():
    schema = schemathesis.openapi.from_dict(_schema_for_collection())
    return [result.ok() for result in schema.get_all_operations()]


def _schema_for_collection() -> dict:
    """The schema as the app serves it, built at collection time (no database needed)."""
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer

    return json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True)))


OPERATIONS = {f"{operation.method.upper()} {operation.path}": operation for operation in operations()}


def test_schemathesis_covers_every_operation():
    assert len(OPERATIONS) == sum(len(ops) for ops in _schema_for_collection()["paths"].values())


@pytest.mark.parametrize("caller", ["key", "staff"])
@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_schemathesis_finds_no_server_error_no_undocumented_status_and_no_schema_violation(
    world, served_schema, label, caller
):
    operation = served_schema[OPERATIONS[label].path][OPERATIONS[label].method]
    headers = world[caller]

    @hypothesis.settings(
        max_examples=EXAMPLES_PER_OPERATION, derandomize=True, database=None, deadline=None,
        suppress_health_check=list(HealthCheck), phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )
    @hypothesis.given(case=operation.as_strategy())
    def run(case):
        response = case.call(headers=headers)
        case.validate_response(response, checks=CHECKS, headers=headers)

    run()


# --- 405: the methods a path does not take ------------------------------------------------------------------

HTTP_METHODS = ("get", "put", "post", "delete", "patch")


def test_every_operation_of_a_path_lacking_a_method_documents_405_with_allow():
    schema = raw_schema()
    error_ref = {"$ref": "#/components/schemas/Error"}

    contacts = schema["paths"]["/api/contacts/"]
    assert set(contacts) >= {"get", "post"} and "delete" not in contacts
    response = contacts["get"]["responses"]["405"]
    assert response["content"]["application/json"]["schema"] == error_ref
    assert "Allow" in response["headers"]
    assert "GET, POST" in response["description"]
    for path, operations in schema["paths"].items():
        methods = {method for method in operations if method in HTTP_METHODS}
        for method in methods:
            assert ("405" in operations[method]["responses"]) == (methods != set(HTTP_METHODS)), (method, path)


def test_every_method_a_path_does_not_take_really_answers_405(key_and_staff, settings):
    # Every path of the schema, every method it does not list, with the credentials it takes: a 405 in the one
    # error shape naming the methods it takes (the schema says so; an undocumented method that worked would fail).
    settings.INTERNAL_API_TOKEN = "internal-test-token"
    schema = raw_schema()
    key, staff = key_and_staff
    checked = 0
    for path, operations in schema["paths"].items():
        methods = {method for method in operations if method in HTTP_METHODS}
        security = {name for operation in operations.values() for requirement in operation.get("security", [{}])
                    for name in requirement}
        client = key if "ApiKey" in security else staff
        url = re.sub(r"\{[^}]+\}", "1", path)  # any value: the method is refused before any lookup
        for method in set(HTTP_METHODS) - methods:
            response = getattr(client, method)(url, format="json")
            assert response.status_code == 405, (method, path, response.status_code, response.content[:300])
            assert response.json()["error"]["code"] == "method_not_allowed"
            assert {allowed.strip() for allowed in response["Allow"].split(",")} >= {m.upper() for m in methods}
            checked += 1
    assert checked > 50


@pytest.mark.django_db
def test_the_api_docs_carry_no_internal_docstrings():
    schema = APIClient().get("/api/schema/", {"format": "json"}).content.decode()

    for internal in ("deep copies", "deep-copies", "shallow copies", "DRF"):
        assert internal not in schema
