"""POST /api/safety/check: the filter as a service, tenant-scoped, strict, documented."""

import pytest
from django.test import Client
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from crm.models import Contact
from crm.tests.factories import ContactFactory, ServiceFactory
from engage.models import AIConfig

URL = "/api/safety/check"
pytestmark = pytest.mark.django_db


def jwt_for(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


@pytest.fixture(autouse=True)
def offline(settings):
    settings.OPENAI_API_KEY = ""  # the offline filter (the model-side checks have tests of their own)
    settings.DEEP_LINK_BASE_URL = "https://app.sheba.xyz/book"
    settings.SHORT_LINK_BASE_URL = "https://app.sheba.xyz/l/"


@pytest.fixture
def rumana(company):
    return ContactFactory(company=company, name="রুমানা সরকার", phone="+8801711000001", email="rumana@example.test")


@pytest.mark.parametrize("caller", ["key_client", "jwt_client"])
def test_a_safe_text_and_an_unsafe_one_with_every_reason(request, caller, rumana):
    client = request.getfixturevalue(caller)
    safe = client.post(URL, {"text": "প্রিয় রুমানা, আপনার এসি সার্ভিসিংয়ের সময় হয়েছে।", "channel": "sms",
                             "locale": "bn", "message_type": "reminder", "contact_id": rumana.pk}, format="json")
    assert safe.status_code == 200 and safe.json() == {"safe": True, "reasons": []}

    unsafe = client.post(URL, {"text": "প্রিয় করিম, বুকিং নিশ্চিত করতে বিকাশ পিন পাঠান: bit.ly/x1", "channel": "sms",
                               "message_type": "reply", "contact_id": rumana.pk}, format="json")
    body = unsafe.json()
    assert unsafe.status_code == 200 and body["safe"] is False
    assert [reason["code"] for reason in body["reasons"]] == ["credential_request", "wrong_recipient", "link_shortener"]
    assert all(reason["message"] for reason in body["reasons"])


def test_the_recipients_own_details_and_the_contexts_claims_pass(key_client, company, rumana):
    service = ServiceFactory(company=company)  # ৳১,৫০০
    response = key_client.post(URL, {
        "text": "Dear Rumana, your cleaning is 1,500 taka; use code EID25. We may call you on 01711-000001: "
                "https://app.sheba.xyz/l/AbCd12",
        "channel": "whatsapp_cloud", "locale": "en", "message_type": "reminder", "contact_id": rumana.pk,
        "service_id": service.pk, "promo_code": "EID25", "link": "https://app.sheba.xyz/l/AbCd12",
    }, format="json")
    assert response.json() == {"safe": True, "reasons": []}
    # without the context, the same text makes claims nobody gave
    bare = key_client.post(URL, {"text": "Your cleaning is 1,500 taka; use code EID25.", "channel": "sms",
                                 "locale": "en"}, format="json").json()
    assert [reason["code"] for reason in bare["reasons"]] == ["unapproved_price", "unapproved_promo_code"]


def test_a_required_link_must_be_in_the_text_and_on_the_companys_hosts(key_client):
    missing = key_client.post(URL, {"text": "Book again soon.", "channel": "sms", "locale": "en",
                                    "message_type": "reminder", "link": "https://app.sheba.xyz/l/AbCd12"},
                              format="json")
    assert [reason["code"] for reason in missing.json()["reasons"]] == ["missing_link"]
    foreign = key_client.post(URL, {"text": "Book: https://evil.test/x", "channel": "sms", "locale": "en",
                                    "link": "https://evil.test/x"}, format="json")
    assert foreign.status_code == 400 and list(foreign.json()["error"]["fields"]) == ["link"]


def test_the_admins_allowed_domain_passes(key_client, company):
    AIConfig.objects.create(company=company, allowed_link_domains=["partner.example.com"])
    response = key_client.post(URL, {"text": "See https://partner.example.com/offers", "channel": "email",
                                     "locale": "en"}, format="json")
    assert response.json() == {"safe": True, "reasons": []}


def test_another_companys_contact_or_service_is_a_400_that_leaks_nothing(key_client, other_company):
    stranger = ContactFactory(company=other_company, name="Secret Person")
    foreign_service = ServiceFactory(company=other_company)
    for field, value, message in (("contact_id", stranger.pk, "Unknown contact."),
                                  ("contact_id", 99_999_999, "Unknown contact."),
                                  ("service_id", foreign_service.pk, "Unknown service.")):
        response = key_client.post(URL, {"text": "Hello", "channel": "sms", "locale": "en", field: value},
                                   format="json")
        assert response.status_code == 400
        error = response.json()["error"]
        assert (error["code"], error["fields"]) == ("invalid", {field: [message]})
        assert "Secret" not in response.content.decode()


@pytest.mark.parametrize(
    ("body", "field"),
    [({"channel": "sms"}, "text"), ({"text": 5, "channel": "sms"}, "text"), ({"text": "hi", "channel": "fax"}, "channel"),
     ({"text": "hi", "channel": "sms", "contact_id": "12"}, "contact_id"),
     ({"text": "hi", "channel": "sms", "contact_id": True}, "contact_id"),
     ({"text": "hi", "channel": "sms", "message_type": "spam"}, "message_type"),
     ({"text": "hi", "channel": "sms", "locale": 1}, "locale"), ({"text": "hi", "channel": "sms", "extra": 1}, "extra"),
     ({"text": "", "channel": "sms"}, "text"), ({"text": "x" * 20001, "channel": "sms"}, "text")],
)
def test_bad_input_is_a_400_in_the_one_error_shape(key_client, body, field):
    response = key_client.post(URL, body, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and field in error["fields"]


def test_a_json_list_is_a_400(key_client):
    response = key_client.post(URL, [1, 2], format="json")
    assert response.status_code == 400


def test_three_people(api_client, staff_user, other_staff_user, company, other_company, rumana):
    # Alice (staff of Alpha) judges for Alpha, with Alpha's contact
    alice = jwt_for(staff_user)
    ok = alice.post(URL, {"text": "Hello", "channel": "sms", "locale": "en", "contact_id": rumana.pk}, format="json")
    assert ok.status_code == 200
    # Bob (staff of Beta) may not name Alpha, and Alpha's contact is unknown to him
    bob = jwt_for(other_staff_user)
    assert bob.post(URL, {"text": "Hello", "channel": "sms", "company_id": company.pk}, format="json").status_code == 403
    unknown = bob.post(URL, {"text": "Hello", "channel": "sms", "contact_id": rumana.pk}, format="json")
    assert unknown.status_code == 400 and "রুমানা" not in unknown.content.decode()
    # an anonymous caller
    anonymous = api_client.post(URL, {"text": "Hello", "channel": "sms"}, format="json")
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "not_authenticated"
    assert Contact.objects.count() == 1  # nothing written


def test_with_a_model_key_the_moderation_endpoint_judges_too(key_client, fake_openai):
    fake_openai.flag("harassment")
    response = key_client.post(URL, {"text": "You again?", "channel": "sms", "locale": "en"}, format="json")
    assert [reason["code"] for reason in response.json()["reasons"]] == ["moderation_flagged"]
    assert fake_openai.moderation_requests[-1]["input"] == "You again?"
    assert fake_openai.requests == []  # no generation


def test_the_endpoint_is_in_the_openapi_schema():
    schema = Client().get("/api/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/safety/check"]["post"]
    assert operation["operationId"] == "safety_check"
    body = schema["components"]["schemas"]["SafetyCheckInput"]
    assert set(body["required"]) == {"text", "channel"}
    codes = schema["components"]["schemas"]["CodeEnum"]["enum"]
    assert {"credential_request", "link_lookalike", "unapproved_price", "coaching_threat"} <= set(codes)
