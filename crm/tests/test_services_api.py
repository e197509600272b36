"""GET /services: the catalogue of the caller's company, for app users (JWT from OTP) and staff."""

import pytest
from rest_framework.test import APIClient

from crm.auth import token_pair_for
from crm.models import User
from crm.tests.factories import CustomerFactory, ServiceFactory, WorkerFactory


def app_client_for(profile, user_type="customer") -> APIClient:
    user = User.objects.create_user(email=profile.contact.email)
    profile.contact.user = user
    profile.contact.save(update_fields=["user"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_pair_for(user=user, user_type=user_type).access_token}")
    return client


@pytest.fixture
def catalogue(company, other_company):
    return {
        "cleaning": ServiceFactory(company=company, name="Deep cleaning", category="cleaning"),
        "ac": ServiceFactory(company=company, name="AC repair", category="repair", name_bn="এসি মেরামত"),
        "old": ServiceFactory(company=company, name="Carpet wash", category="cleaning", is_active=False),
        "foreign": ServiceFactory(company=other_company, name="Beta tutoring", category="cleaning"),
    }


def names(response) -> list[str]:
    return [service["name"] for service in response.json()]


def test_customer_sees_the_active_services_of_their_company(company, catalogue):
    client = app_client_for(CustomerFactory(company=company))

    response = client.get("/services")

    assert response.status_code == 200
    assert names(response) == ["AC repair", "Deep cleaning"]
    assert response.json()[0] == {
        "id": catalogue["ac"].pk,
        "name": "AC repair",
        "name_bn": "এসি মেরামত",
        "category": "repair",
        "base_price": "1500.00",
        "duration_minutes": 120,
        "is_active": True,
    }


def test_category_and_include_inactive_filters(company, catalogue):
    client = app_client_for(WorkerFactory(company=company), user_type="worker")

    assert names(client.get("/services", {"category": "cleaning"})) == ["Deep cleaning"]
    assert names(client.get("/services", {"category": "cleaning", "include_inactive": "true"})) == [
        "Carpet wash",
        "Deep cleaning",
    ]
    assert names(client.get("/services", {"category": "nothing"})) == []


def test_bad_include_inactive_is_400(company, catalogue):
    client = app_client_for(CustomerFactory(company=company))

    response = client.get("/services", {"include_inactive": "maybe"})

    assert response.status_code == 400
    assert "include_inactive" in response.json()["error"]["fields"]


def test_three_people(company, other_company, catalogue, jwt_client, other_staff_user):
    # Alice (staff of company) sees company's catalogue; Bob (staff of other_company) his own;
    # another company's customer never sees company's; an anonymous caller is 401.
    other_customer = app_client_for(CustomerFactory(company=other_company))
    bob = APIClient()
    bob.credentials(HTTP_AUTHORIZATION=f"Bearer {token_pair_for(user=other_staff_user, user_type='staff').access_token}")

    assert names(jwt_client.get("/services")) == ["AC repair", "Deep cleaning"]
    assert names(bob.get("/services")) == ["Beta tutoring"]
    assert names(other_customer.get("/services")) == ["Beta tutoring"]
    assert bob.get("/services", {"company_id": company.pk}).status_code == 403
    anonymous = APIClient().get("/services")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "not_authenticated"


def test_a_user_without_contact_or_membership_is_403(db, catalogue):
    user = User.objects.create_user(email="drifter@example.test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_pair_for(user=user, user_type='customer').access_token}")

    response = client.get("/services")

    assert response.status_code == 403


def test_api_keys_are_not_accepted(key_client, catalogue):
    assert key_client.get("/services").status_code == 401
