"""Hostile bodies and requests get a 4xx in the one error shape, write nothing and log no error.

Every endpoint that reads a body (the schema's operations with a request body, plus the provider
webhooks), anonymous ones included: JSON nested thousands deep, bodies over the size limit, invalid
UTF-8, NUL characters and lone surrogates (PostgreSQL stores neither). Then the limits that act before
any view: URL length, a declared Content-Length, Django's own 400 for a form over the limit.
"""

import hashlib
import hmac
import io
import logging

import pytest
from django.conf import settings
from django.test import Client
from drf_spectacular.generators import SchemaGenerator
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from channels_app.models import ChannelAccount
from crm.models import Channel, Contact, Event, Lead
from engage.models import Job, Message
from shokti.api.exceptions import RequestTooLarge
from shokti.api.parsers import JSONParser, json_depth_exceeds, json_loads

pytestmark = pytest.mark.django_db

APP_SECRET = "hostile-test-app-secret"


def error(response) -> dict:
    assert response["Content-Type"].startswith("application/json"), (response.status_code, response.content[:200])
    body = response.json()
    assert set(body) == {"error"} and {"code", "message", "fields"} <= set(body["error"]), body
    return body["error"]


def counts() -> tuple[int, ...]:
    return tuple(model.objects.count() for model in (Contact, Lead, Message, Job, Event))


# --- the reader itself -----------------------------------------------------------------------------


def test_depth_is_measured_on_the_raw_bytes_and_brackets_in_strings_do_not_count():
    assert json_depth_exceeds(b"[" * 33 + b"]" * 33, 32)
    assert not json_depth_exceeds(b"[" * 32 + b"]" * 32, 32)
    assert not json_depth_exceeds(b'{"text": "' + b"[{" * 5000 + b'"}', 32)
    assert not json_depth_exceeds(b'{"text": "\\" [[[[", "a": [1]}', 3)
    assert json_depth_exceeds(b'{"a": {"b": {"c": {"d": 1}}}}', 3)


@pytest.mark.parametrize(
    ("raw", "exception"),
    [
        pytest.param(b"[" * 100_000, ParseError, id="deep"),
        pytest.param(b'{"a": "\xff"}', ParseError, id="invalid utf-8"),
        pytest.param(b'{"a": NaN}', ParseError, id="NaN"),
        pytest.param(b'{"a": "x\\u0000y"}', ValidationError, id="nul"),
        pytest.param(b'{"a": ["ok", "\\udfff"]}', ValidationError, id="lone surrogate"),
        pytest.param(b'{"\\u0000": 1}', ValidationError, id="nul key"),
        pytest.param(b'{"a": 1' + b"0" * 5000 + b"}", ParseError, id="a 5,000-digit number"),
    ],
)
def test_the_reader_refuses_what_would_500_later(raw, exception):
    with pytest.raises(exception):
        json_loads(raw)


def test_the_reader_accepts_escaped_text_and_paired_surrogates():
    assert json_loads(b'{"a": "\\u09ac\\u09be\\u0982\\u09b2\\u09be \\ud83d\\ude00", "b": "\\\\u0000"}') == {
        "a": "বাংলা 😀", "b": "\\u0000"
    }


def test_the_parser_stops_reading_past_the_limit(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    stream = io.BytesIO(b'{"a": "' + b"x" * 10_000 + b'"}')

    with pytest.raises(RequestTooLarge):
        JSONParser().parse(stream, "application/json", {})

    assert stream.tell() == 101  # the rest was never read


# --- every endpoint that reads a body ----------------------------------------------------------------

HOSTILE = {
    "deep-array": (b"[" * 5000 + b"]" * 5000, 400),
    "deep-object": (b'{"a":' * 3000 + b"1" + b"}" * 3000, 400),
    "deep-in-a-field": (b'{"message_text": ' + b"[" * 3000 + b"]" * 3000 + b', "email": "a@b.test"}', 400),
    "oversized": (None, 413),  # built at run time from DATA_UPLOAD_MAX_MEMORY_SIZE
    "invalid-utf-8": (b'{"message_text": "caf\xe9 \xff", "email": "x\xc3"}', 400),
    "nul": (b'{"message_text": "a\\u0000b", "email": "\\u0000", "token": "\\u0000", "refresh": "a\\u0000"}', 400),
    "lone-surrogate": (b'{"message_text": "\\ud800", "email": "\\udbff@x.test", "token": "\\udc00"}', 400),
    "nul-key": (b'{"a\\u0000": 1}', 400),
}

# path -> who calls it (None: anonymous); the WhatsApp webhook is signed with its account's secret.
BODY_ENDPOINTS = {
    "/inbound-message": "key",
    "/api/contacts/": "key",
    "/internal/ai/smartengage/run-segment": "key",
    "/internal/ai/coachnova/run": "key",
    "/admin/dlq/replay": "staff",
    "/admin/smartengage/send-single": "staff",
    "/admin/smartengage/send-bulk": "staff",
    "/events": "staff",
    "/api/token/": None,
    "/api/token/refresh/": None,
    "/auth/request-otp": None,
    "/auth/verify-otp": None,
    "/auth/refresh": None,
    "/api/deeplinks/verify": None,
    "/channels/whatsapp/{token}": "signed",
    "/channels/whatsapp": "signed",
    "/channels/email/{token}/events": "email",
    "/api/safety/check": "key",
    "PATCH /api/company/": "key",
    "PATCH /api/contacts/{id}/": "key",
    "PUT /api/contacts/by-external-id/{external_id}/": "key",
    "POST /api/leads/": "key",
    "PATCH /api/leads/{id}/": "key",
    "PUT /api/leads/by-external-id/{external_id}/": "key",
    "POST /api/pipelines/": "key",
    "PATCH /api/pipelines/{id}/": "key",
    "PUT /api/pipelines/by-external-id/{external_id}/": "key",
    "POST /api/customers/": "key",
    "POST /api/customers/bulk/": "key",
    "PATCH /api/customers/{id}/": "key",
    "PUT /api/customers/by-external-id/{external_id}/": "key",
    "POST /api/workers/": "key",
    "POST /api/workers/bulk/": "key",
    "PATCH /api/workers/{id}/": "key",
    "PUT /api/workers/by-external-id/{external_id}/": "key",
    "POST /api/services/": "staff",
    "PATCH /api/services/{id}/": "key",
    "PUT /api/services/by-external-id/{external_id}/": "key",
    "POST /api/bookings/": "key",
    "POST /api/bookings/bulk/": "key",
    "PATCH /api/bookings/{id}/": "key",
    "PUT /api/bookings/by-external-id/{external_id}/": "key",
}


def _method_and_path(endpoint: str) -> tuple[str, str]:
    method, _, path = endpoint.rpartition(" ")
    return method or "POST", path


def test_the_list_covers_every_operation_with_a_body():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    with_body = {
        f"{method.upper()} {path}" for path, operations in schema["paths"].items()
        for method, operation in operations.items() if method in ("post", "put", "patch") and "requestBody" in operation
    }
    # Twilio's form webhooks and the unsubscribe page read forms: tested below, the SMS one with a form body.
    form_only = {"/channels/sms/{token}/status", "/channels/sms/{token}/inbound", "/channels/email/unsubscribe/{token}"}
    form_only = {f"POST {path}" for path in form_only}
    listed = {" ".join(_method_and_path(endpoint)) for endpoint in BODY_ENDPOINTS}
    assert with_body - form_only <= listed, with_body - form_only - listed


@pytest.fixture
def callers(company, api_key, staff_user):
    account = ChannelAccount(company=company, channel=Channel.WHATSAPP_CLOUD, name="wa", settings={})
    account.secrets_set({"app_secret": APP_SECRET, "access_token": "x", "verify_token": "y"})
    account.save()
    key_client = APIClient()
    key_client.credentials(HTTP_X_API_KEY=api_key[1])
    staff_client = APIClient()
    staff_client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(staff_user).access_token}")
    # the rows that the detail paths ({id}) name
    from crm.tests.factories import BookingFactory, ContactFactory, LeadFactory
    booking = BookingFactory(company=company)
    objects = {
        "contacts": ContactFactory(company=company), "leads": LeadFactory(company=company),
        "pipelines": LeadFactory(company=company).pipeline, "customers": booking.customer,
        "workers": booking.worker, "services": booking.service, "bookings": booking,
    }
    email_account = ChannelAccount(company=company, channel=Channel.EMAIL, name="mail", settings={})
    email_account.secrets_set({"webhook_signing_key": "k"})
    email_account.save()
    return {"key": key_client, "staff": staff_client, None: APIClient(), "signed": APIClient(), "email": APIClient(),
            "account": account, "email_account": email_account, "objects": objects}


@pytest.mark.parametrize("endpoint", list(BODY_ENDPOINTS))
@pytest.mark.parametrize("kind", list(HOSTILE))
def test_a_hostile_body_is_a_4xx_in_the_error_shape_writes_nothing_and_logs_no_error(
    callers, endpoint, kind, caplog
):
    raw, expected = HOSTILE[kind]
    if raw is None:
        raw = b'{"message_text": "' + b"x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1) + b'"}'
    who = BODY_ENDPOINTS[endpoint]
    method, path = _method_and_path(endpoint)
    headers = {}
    resource = path.split("/")[2] if path.startswith("/api/") else None
    account = callers["email_account" if who == "email" else "account"]
    url = path.format(token=account.webhook_token, external_id="hostile-1",
                      id=getattr(callers["objects"].get(resource), "pk", None))
    if who == "signed":
        headers["HTTP_X_HUB_SIGNATURE_256"] = "sha256=" + hmac.new(APP_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    before = counts()

    with caplog.at_level(logging.WARNING):
        response = callers[who].generic(method, url, raw, content_type="application/json", **headers)

    assert response.status_code == expected, response.content[:300]
    assert error(response)["code"] in {"parse_error", "invalid", "too_large"}
    assert counts() == before
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


@pytest.mark.parametrize("endpoint", [endpoint for endpoint, who in BODY_ENDPOINTS.items() if who in ("key", "staff")])
def test_anonymous_hostile_bodies_are_refused_before_the_body_is_read(endpoint):
    method, path = _method_and_path(endpoint)
    url = path.format(id=1, external_id="hostile-1")
    response = APIClient().generic(method, url, b"[" * 100_000, content_type="application/json")

    assert response.status_code == 401
    assert error(response)["code"] == "not_authenticated"


def test_the_otp_ip_throttle_counts_hostile_bodies_too(settings, db):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "otp_request_ip": "3/h"},
    }
    client = APIClient()
    answers = [
        client.generic("POST", "/auth/request-otp", b"[" * 10_000, content_type="application/json").status_code
        for _ in range(4)
    ]

    assert answers == [400, 400, 400, 429]
    # and the 400s said why: the body, not a missing field
    response = APIClient(REMOTE_ADDR="10.0.0.8").generic(
        "POST", "/auth/request-otp", b"[" * 10_000, content_type="application/json"
    )
    assert error(response) == {
        "code": "parse_error", "message": "JSON parse error - nested deeper than 32 levels.", "fields": {}
    }


def test_a_form_with_nul_characters_to_a_twilio_webhook_is_400_and_reports_nothing(company):
    account = ChannelAccount(company=company, channel=Channel.SMS, name="sms", settings={})
    account.secrets_set({"auth_token": "t"})
    account.save()

    response = Client().post(
        f"/channels/sms/{account.webhook_token}/inbound", "MessageSid=SM1&From=%2B8801711000001&Body=a%00b",
        content_type="application/x-www-form-urlencoded", HTTP_X_TWILIO_SIGNATURE="whatever",
    )

    assert response.status_code == 400
    assert error(response)["fields"] == {"Body": ["Null characters are not allowed."]}
    assert Message.objects.count() == 0


# --- limits before any view ----------------------------------------------------------------------------


def test_a_url_longer_than_the_limit_is_a_json_414(settings):
    settings.HTTP_MAX_URL_LENGTH = 2000

    response = Client().get("/book", {"token": "x" * 2100})

    assert response.status_code == 414
    assert error(response)["code"] == "uri_too_long"


def test_a_long_book_url_under_the_limit_reaches_the_view_and_is_a_json_400():
    response = Client().get("/book", {"token": "x" * 6000})

    assert response.status_code == 400
    assert error(response)["code"].startswith("link_")


def test_a_declared_body_over_the_limit_is_a_json_413_before_anything_reads_it(api_key, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=api_key[1])

    response = client.post("/inbound-message", {"message_text": "x" * 2000}, format="json")

    assert response.status_code == 413
    assert error(response) == {
        "code": "too_large", "message": "The request body is larger than 1000 bytes.", "fields": {}
    }


def test_an_unreadable_content_length_is_a_json_400():
    response = Client().generic("POST", "/auth/request-otp", b"{}", content_type="application/json",
                                CONTENT_LENGTH="twelve")

    assert response.status_code == 400
    assert error(response)["code"] == "invalid"


@pytest.mark.urls("shokti.tests.urls_errors")
def test_djangos_own_400_for_a_form_over_the_limit_is_a_json_413(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    # multipart: the middleware leaves it to Django, which counts only the non-file fields
    response = Client().post("/form-echo", {"note": "x" * 5000})

    assert response.status_code == 413
    assert error(response)["code"] == "too_large"


@pytest.mark.urls("shokti.tests.urls_errors")
def test_djangos_own_400_and_403_are_json():
    bad = Client().get("/suspicious")
    denied = Client().get("/denied")

    assert (bad.status_code, error(bad)["code"]) == (400, "invalid")
    assert (denied.status_code, error(denied)["code"]) == (403, "permission_denied")
