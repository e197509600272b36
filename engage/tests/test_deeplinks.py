"""Signed deep links: creation, verification (tampered, expired, wrong type), GET /book and its API twin."""

import datetime as dt
import uuid
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import signing
from django.utils import timezone
from rest_framework.test import APIClient

from crm.models import Event
from crm.tests.factories import CustomerFactory, ServiceFactory
from engage.campaigns.deeplinks import (
    SALT,
    TYPE_BOOKING,
    TYPE_PROMO,
    DeepLinkInvalid,
    deeplink_booking_create,
    deeplink_promo_create,
    deeplink_token_create,
    deeplink_verify,
)
from engage.models import Message


@pytest.fixture
def customer(company):
    return CustomerFactory(company=company)


@pytest.fixture
def service(company):
    return ServiceFactory(company=company)


@pytest.fixture
def message(customer):
    return Message.objects.create(
        company=customer.company, contact=customer.contact, direction=Message.Direction.OUTBOUND,
        channel="email", agent_type="smartengage", message_type="reminder", body="...",
        status=Message.Status.SENT, correlation_id=uuid.uuid4(),
    )


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


def test_booking_link_on_base_url_with_utm_and_verifiable_claims(customer, service, settings):
    settings.DEEP_LINK_BASE_URL = "https://app.example.test/book"
    correlation_id = uuid.uuid4()

    url = deeplink_booking_create(
        customer=customer, service=service, promo_code="SAVE20", ttl_hours=48, correlation_id=correlation_id
    )

    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://app.example.test/book"
    assert query["utm_source"] == ["smartengage"]
    assert query["utm_medium"] == ["message"]
    assert query["utm_campaign"] == ["smartengage_reminder"]
    claims = deeplink_verify(token=query["token"][0])
    assert (claims.customer_id, claims.company_id, claims.service_id) == (customer.pk, customer.company_id, service.pk)
    assert (claims.promo_code, claims.type, claims.correlation_id) == ("SAVE20", TYPE_BOOKING, str(correlation_id))
    expected_expiry = timezone.now() + dt.timedelta(hours=48)
    assert abs((claims.expires_at - expected_expiry).total_seconds()) < 5


def test_promo_link_without_a_service(customer):
    claims = deeplink_verify(token=token_of(deeplink_promo_create(customer=customer, promo_code="WEEKEND50", ttl_hours=72)))

    assert (claims.type, claims.service_id, claims.promo_code) == (TYPE_PROMO, None, "WEEKEND50")


@pytest.mark.parametrize("secret", ["the-test-secret", "গোপন-key-with-unicode"])
def test_a_token_is_django_signing_s_own_to_the_byte(customer, settings, secret):
    # Signed with the HMAC key derived once: the same token signing.dumps gives at the same second,
    # under whatever SECRET_KEY is in force (a rotated key signs with the new one).
    settings.SECRET_KEY = secret
    service = ServiceFactory(company=customer.company)
    with mock.patch("time.time", return_value=1_800_000_000.7):
        token = deeplink_token_create(customer=customer, service=service, promo_code="ঈদ-২০", correlation_id=uuid.uuid4())
        payload = signing.loads(token, salt=SALT)
        assert token == signing.dumps(payload, salt=SALT)
    assert (payload["c"], payload["s"], payload["p"]) == (customer.pk, service.pk, "ঈদ-২০")
    assert deeplink_verify(token=token).customer_id == customer.pk
    settings.SECRET_KEY = "another-secret"
    with pytest.raises(DeepLinkInvalid):
        deeplink_verify(token=token)


def test_a_link_sent_before_tokens_went_uncompressed_still_verifies(customer):
    # tokens were zlib-compressed until session 5; links already in customers' inboxes keep working
    expires = int((timezone.now() + dt.timedelta(hours=24)).timestamp())
    promo = "SAVE" * 10  # zlib kept a token only when it came out shorter: a repetitive promo code does
    payload = {"co": customer.company_id, "c": customer.pk, "t": TYPE_BOOKING, "e": expires, "p": promo}
    old = signing.dumps(payload, salt=SALT, compress=True)
    new = deeplink_token_create(customer=customer, promo_code=promo)

    assert old.startswith(".") and not new.startswith(".")  # "." marks a compressed token
    claims = [deeplink_verify(token=token) for token in (old, new)]
    assert {(claim.customer_id, claim.type, claim.promo_code) for claim in claims} == {(customer.pk, TYPE_BOOKING, promo)}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"link_type": "admin"},
        {"ttl_hours": 0},
        {"ttl_hours": 24 * 365},
        {"link_type": TYPE_PROMO},  # a promo link needs a code
        {"promo_code": "X" * 41},
    ],
)
def test_bad_creation_arguments_raise(customer, kwargs):
    with pytest.raises(ValueError):
        deeplink_token_create(customer=customer, **kwargs)


def test_a_service_of_another_company_is_refused(customer, other_company):
    with pytest.raises(ValueError):
        deeplink_token_create(customer=customer, service=ServiceFactory(company=other_company))


def test_tampered_tokens_are_rejected(customer):
    token = deeplink_token_create(customer=customer)
    # Flip one character of the signature, then of the payload.
    flipped_signature = token[:-1] + ("A" if token[-1] != "A" else "B")
    signature = token.rpartition(":")[2]
    forged_payload = signing.dumps({"co": customer.company_id, "c": customer.pk + 1, "t": "booking", "e": 9999999999}, salt=SALT)
    spliced = forged_payload.rpartition(":")[0] + ":" + signature
    other_salt = signing.dumps({"co": 1, "c": 1, "t": "booking", "e": 9999999999}, salt="someone.else")

    for bad in (flipped_signature, spliced, other_salt):
        with pytest.raises(DeepLinkInvalid) as error:
            deeplink_verify(token=bad)
        assert error.value.reason == "tampered"


def test_expired_tokens_are_rejected(customer):
    token = deeplink_token_create(customer=customer, ttl_hours=1)
    later = timezone.now() + dt.timedelta(hours=1, seconds=1)

    with mock.patch("engage.campaigns.deeplinks.timezone.now", return_value=later), pytest.raises(DeepLinkInvalid) as error:
        deeplink_verify(token=token)

    assert error.value.reason == "expired"


def test_wrong_type_tokens_are_rejected(customer):
    promo = deeplink_token_create(customer=customer, link_type=TYPE_PROMO, promo_code="P")
    # Correctly signed with our salt, but a type we never issue.
    strange = signing.dumps({"co": customer.company_id, "c": customer.pk, "t": "password_reset", "e": 9999999999}, salt=SALT)

    with pytest.raises(DeepLinkInvalid) as first:
        deeplink_verify(token=promo, allowed_types=(TYPE_BOOKING,))
    with pytest.raises(DeepLinkInvalid) as second:
        deeplink_verify(token=strange)

    assert first.value.reason == second.value.reason == "wrong_type"


@pytest.mark.parametrize("token", ["", "x", "a" * 3000, "not:a:token"])
def test_malformed_tokens_are_rejected(token):
    with pytest.raises(DeepLinkInvalid):
        deeplink_verify(token=token)


# --- GET /book and POST /api/deeplinks/verify -----------------------------------------------------


def test_book_records_the_follow_with_the_message_correlation_and_redirects(customer, service, message, settings):
    settings.DEEP_LINK_APP_URL = "https://app.example.test/booking"
    url = deeplink_booking_create(customer=customer, service=service, promo_code="SAVE20", correlation_id=message.correlation_id)
    token = token_of(url)

    response = APIClient().get("/book", parse_qs(urlsplit(url).query) | {"token": token})

    assert response.status_code == 302
    target = urlsplit(response["Location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == "https://app.example.test/booking"
    query = parse_qs(target.query)
    assert query["service_id"] == [str(service.pk)]
    assert query["promo_code"] == ["SAVE20"]
    assert query["utm_campaign"] == ["smartengage_reminder"]
    event = Event.objects.get(type="deeplink_followed")
    assert event.correlation_id == message.correlation_id
    assert event.contact == customer.contact
    assert event.target == message
    assert event.payload["service_id"] == service.pk


@pytest.mark.parametrize("reason", ["tampered", "expired", "missing"])
def test_book_with_a_bad_token_is_400_json_and_records_nothing(customer, reason):
    token = deeplink_token_create(customer=customer, ttl_hours=1)
    if reason == "tampered":
        token = token[:-2] + "zz"
    elif reason == "missing":
        token = ""
    with mock.patch("engage.campaigns.deeplinks.timezone.now", return_value=timezone.now() + dt.timedelta(hours=2 if reason == "expired" else 0)):
        response = APIClient().get("/book", {"token": token})

    assert response.status_code == 400
    assert response.json()["error"]["code"].startswith("link_")
    assert not Event.objects.filter(type="deeplink_followed").exists()


def test_a_link_of_a_deleted_customer_is_400(customer):
    token = deeplink_token_create(customer=customer)
    customer.delete()

    response = APIClient().get("/book", {"token": token})

    assert response.status_code == 400
    assert not Event.objects.filter(type="deeplink_followed").exists()


def test_api_twin_verifies_and_records(customer, message):
    token = deeplink_token_create(customer=customer, correlation_id=message.correlation_id)

    response = APIClient().post("/api/deeplinks/verify", {"token": token}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["valid"] is True
    assert body["customer_id"] == customer.pk
    assert body["correlation_id"] == str(message.correlation_id)
    assert Event.objects.get(pk=body["event_id"]).type == "deeplink_followed"


def test_api_twin_rejects_bad_tokens(db):
    response = APIClient().post("/api/deeplinks/verify", {"token": "nope"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] in ("link_tampered", "link_malformed")
    assert not Event.objects.exists()


def test_a_link_without_a_message_is_still_recorded_without_correlation(customer):
    token = deeplink_token_create(customer=customer, correlation_id=uuid.uuid4())

    assert APIClient().get("/book", {"token": token}).status_code == 302

    event = Event.objects.get(type="deeplink_followed")
    assert event.correlation_id is None
    assert event.contact == customer.contact
