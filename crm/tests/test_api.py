"""The CRM REST API: contacts and leads, scoped to the caller's company."""

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from crm.models import Contact, Membership
from crm.tests.factories import CompanyFactory, ContactFactory, LeadFactory

pytestmark = pytest.mark.django_db


def jwt_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


def error(response) -> dict:
    assert set(response.json()) == {"error"}, response.json()
    body = response.json()["error"]
    assert {"code", "message", "fields"} <= set(body)
    return body


# --- the three people ----------------------------------------------------------------------


def test_contacts_list_alice_sees_only_her_company(company, other_company, staff_user, other_staff_user):
    # given
    mine = ContactFactory(company=company, phone="+8801711000001")
    ContactFactory(company=other_company, phone="+8801711000002")

    # when
    response = jwt_for(staff_user).get("/api/contacts/")

    # then
    assert response.status_code == 200
    assert response.json()["next"] is None
    assert [row["id"] for row in response.json()["results"]] == [mine.pk]


def test_contacts_list_bob_does_not_see_alices_contacts(company, other_company, staff_user, other_staff_user):
    ContactFactory(company=company, phone="+8801711000001")
    bobs = ContactFactory(company=other_company, phone="+8801711000002")

    response = jwt_for(other_staff_user).get("/api/contacts/")

    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [bobs.pk]


def test_contacts_list_bob_asking_for_alices_company_is_403(company, other_staff_user):
    ContactFactory(company=company, phone="+8801711000001")

    response = jwt_for(other_staff_user).get("/api/contacts/", {"company_id": company.pk})

    assert response.status_code == 403
    assert error(response) == {
        "code": "permission_denied",
        "message": "You are not a member of that company.",
        "fields": {},
    }


def test_contacts_unknown_company_is_403_like_a_foreign_one(staff_user):
    response = jwt_for(staff_user).get("/api/contacts/", {"company_id": 987654321})

    assert response.status_code == 403
    assert error(response)["code"] == "permission_denied"


def test_contacts_anonymous_is_401(company, api_client):
    ContactFactory(company=company)

    for response in (api_client.get("/api/contacts/"), api_client.post("/api/contacts/", {"phone": "01712345678"})):
        assert response.status_code == 401
        assert error(response)["code"] == "not_authenticated"
    assert Contact.objects.count() == 1


def test_contacts_create_by_bob_for_alices_company_is_403_and_writes_nothing(company, other_staff_user):
    response = jwt_for(other_staff_user).post(
        "/api/contacts/", {"company_id": company.pk, "phone": "01712345678"}, format="json"
    )

    assert response.status_code == 403
    assert Contact.objects.count() == 0


def test_staff_in_two_companies_must_say_which(company, other_company, staff_user):
    Membership.objects.create(user=staff_user, company=other_company)
    client = jwt_for(staff_user)

    ambiguous = client.get("/api/contacts/")
    chosen = client.get("/api/contacts/", HTTP_X_COMPANY_ID=str(other_company.pk))

    assert ambiguous.status_code == 400
    assert error(ambiguous)["fields"] == {"company_id": ["You belong to several companies: say which one."]}
    assert chosen.status_code == 200


# --- API key ---------------------------------------------------------------------------------


def test_contacts_list_with_api_key_uses_the_keys_company(company, other_company, key_client):
    mine = ContactFactory(company=company, phone="+8801711000001")
    ContactFactory(company=other_company, phone="+8801711000002")

    response = key_client.get("/api/contacts/")

    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [mine.pk]


def test_api_key_cannot_name_another_company(other_company, key_client):
    response = key_client.post("/api/contacts/", {"company_id": other_company.pk, "phone": "01712345678"}, format="json")

    assert response.status_code == 403
    assert Contact.objects.count() == 0


# --- filters ---------------------------------------------------------------------------------


def test_contacts_filter_by_phone_reads_local_numbers_in_the_company_region(company, key_client):
    wanted = ContactFactory(company=company, phone="+8801712345678")
    ContactFactory(company=company, phone="+8801812345678")

    by_local = key_client.get("/api/contacts/", {"phone": "01712345678"})
    by_e164 = key_client.get("/api/contacts/", {"phone": "+8801712345678"})
    by_garbage = key_client.get("/api/contacts/", {"phone": "not-a-phone"})

    assert [row["id"] for row in by_local.json()["results"]] == [wanted.pk]
    assert [row["id"] for row in by_e164.json()["results"]] == [wanted.pk]
    assert by_garbage.json()["results"] == []


def test_contacts_filter_by_email_is_case_insensitive(company, key_client):
    wanted = ContactFactory(company=company, email="rahim@example.test")
    ContactFactory(company=company, email="karim@example.test")

    response = key_client.get("/api/contacts/", {"email": "Rahim@Example.TEST"})

    assert [row["id"] for row in response.json()["results"]] == [wanted.pk]


# --- create ----------------------------------------------------------------------------------


def test_contact_create_normalises_the_phone(company, key_client):
    response = key_client.post(
        "/api/contacts/",
        {"name": "Rahim", "phone": "01712345678", "email": "Rahim@Example.test", "is_sms_consented": True},
        format="json",
    )

    assert response.status_code == 201, response.json()
    contact = Contact.objects.get()
    assert contact.company == company
    assert (contact.phone, contact.email, contact.is_sms_consented) == ("+8801712345678", "rahim@example.test", True)
    assert response.json()["phone"] == "+8801712345678"
    assert response.json()["id"] == contact.pk


def test_contact_create_by_staff_jwt(company, staff_user):
    response = jwt_for(staff_user).post("/api/contacts/", {"phone": "+8801712345678"}, format="json")

    assert response.status_code == 201
    assert Contact.objects.get().company == company


def test_contact_create_malformed_phone_is_400_with_fields_phone(key_client):
    response = key_client.post("/api/contacts/", {"phone": "12ab"}, format="json")

    assert response.status_code == 400
    body = error(response)
    assert body["code"] == "invalid"
    assert list(body["fields"]) == ["phone"]
    assert Contact.objects.count() == 0


def test_contact_create_duplicate_phone_is_409_and_writes_nothing(company, key_client):
    ContactFactory(company=company, phone="+8801712345678")

    response = key_client.post("/api/contacts/", {"phone": "01712345678"}, format="json")

    assert response.status_code == 409
    assert error(response) == {
        "code": "conflict",
        "message": "A contact with phone +8801712345678 already exists.",
        "fields": {"phone": ["A contact with phone +8801712345678 already exists."]},
    }
    assert Contact.objects.count() == 1


def test_same_phone_in_another_company_is_fine(other_company, key_client):
    ContactFactory(company=other_company, phone="+8801712345678")

    response = key_client.post("/api/contacts/", {"phone": "01712345678"}, format="json")

    assert response.status_code == 201


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "phone"),
        ({"phone": "01712345678", "email": "not-an-email"}, "email"),
        ({"phone": "01712345678", "timezone": "Mars/Olympus"}, "timezone"),
        ({"phone": "01712345678", "is_sms_consented": "perhaps"}, "is_sms_consented"),
    ],
)
def test_contact_create_bad_input_is_400_and_writes_nothing(key_client, payload, field):
    response = key_client.post("/api/contacts/", payload, format="json")

    assert response.status_code == 400
    assert field in error(response)["fields"]
    assert Contact.objects.count() == 0


# --- leads -----------------------------------------------------------------------------------


def test_leads_list_scoped_and_filtered(company, other_company, staff_user, django_assert_max_num_queries):
    leads = [LeadFactory(company=company) for _ in range(3)]
    LeadFactory(company=other_company)
    client = jwt_for(staff_user)

    # A fixed number of queries whatever the page size: no N+1 over contact/pipeline/stage.
    with django_assert_max_num_queries(5):
        response = client.get("/api/leads/")
    local_phone = "0" + leads[0].contact.phone.removeprefix("+880")  # as a Bangladeshi types it
    filtered = client.get("/api/leads/", {"phone": local_phone})

    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [lead.pk for lead in reversed(leads)]
    first = response.json()["results"][-1]
    assert (first["stage"], first["status"], first["contact"]["phone"]) == ("New", "open", leads[0].contact.phone)
    assert [row["id"] for row in filtered.json()["results"]] == [leads[0].pk]


def test_leads_list_bad_filter_is_400(staff_user):
    response = jwt_for(staff_user).get("/api/leads/", {"status": "maybe"})

    assert response.status_code == 400
    assert list(error(response)["fields"]) == ["status"]


def test_leads_list_creates_with_post_and_takes_no_put(key_client):
    # POST creates a lead (crm/feed, docs/data-api.md): an empty one names what it lacks
    response = key_client.post("/api/leads/", {}, format="json")
    assert response.status_code == 400
    assert error(response)["fields"] == {"contact_id": ["A new lead needs contact_id, contact_external_id or phone."]}

    response = key_client.put("/api/leads/", {}, format="json")
    assert response.status_code == 405
    assert error(response)["code"] == "method_not_allowed"


def test_leads_list_three_people(company, staff_user, other_staff_user, api_client):
    lead = LeadFactory(company=company)
    CompanyFactory()

    assert [row["id"] for row in jwt_for(staff_user).get("/api/leads/").json()["results"]] == [lead.pk]
    assert jwt_for(other_staff_user).get("/api/leads/").json()["results"] == []
    assert api_client.get("/api/leads/").status_code == 401


def test_contacts_list_pages_by_cursor_newest_first_without_a_count(company, key_client):
    contacts = [ContactFactory(company=company) for _ in range(3)]

    first = key_client.get("/api/contacts/", {"page_size": 2})
    second = key_client.get(first.json()["next"])

    assert set(first.json()) == {"next", "previous", "results"}
    assert [row["id"] for row in first.json()["results"]] == [contacts[2].pk, contacts[1].pk]
    assert [row["id"] for row in second.json()["results"]] == [contacts[0].pk]
    assert second.json()["next"] is None


def test_contacts_list_bad_cursor_is_400_naming_the_parameter(key_client):
    # a malformed query parameter, not a missing resource (DRF's own answer is a 404)
    response = key_client.get("/api/contacts/", {"cursor": "garbage"})

    assert response.status_code == 400
    assert error(response) == {
        "code": "invalid", "message": "Some fields are invalid.", "fields": {"cursor": ["Invalid cursor."]}
    }
