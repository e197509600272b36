"""POST /inbound-message across tenants: each company's own phone region (the same payload delivered
many times at once, with or without an `external_id`, is in test_reliability.py)."""


import pytest
from rest_framework.test import APIClient

from crm.models import Company, Contact, Lead, Pipeline, Stage
from crm.services import api_key_create

URL = "/inbound-message"
BODY = {
    "contact_name": "Rahul Kumar",
    "message_text": "Is the deep-cleaning package available on Friday?",
    "channel": "console",
}


def client_for(company):
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=api_key_create(company=company, name="website")[1])
    return client


@pytest.mark.django_db
def test_a_local_number_is_read_in_the_region_of_the_company_it_was_sent_to(company, other_company):
    # given: Alpha reads local numbers as Bangladeshi (the default), Beta as Indian
    Company.objects.filter(pk=other_company.pk).update(default_region="IN")
    alpha, beta = client_for(company), client_for(other_company)

    # when: each receives a number without its country code
    from_alpha = alpha.post(URL, {**BODY, "phone_number": "01712345678"}, format="json")
    from_beta = beta.post(URL, {**BODY, "phone_number": "09876543210"}, format="json")

    # then
    assert (from_alpha.status_code, from_beta.status_code) == (202, 202), (from_alpha.content, from_beta.content)
    assert Lead.objects.get(pk=from_alpha.json()["lead_id"]).contact.phone == "+8801712345678"
    assert Lead.objects.get(pk=from_beta.json()["lead_id"]).contact.phone == "+919876543210"
    # and each company got its own default pipeline with the five stages
    for tenant in (company, other_company):
        pipeline = Pipeline.objects.get(company=tenant)
        assert list(Stage.objects.filter(pipeline=pipeline).order_by("order").values_list("name", flat=True)) == [
            "New", "Contacted", "Qualified", "Won", "Lost"
        ]


@pytest.mark.django_db
def test_an_e164_number_keeps_its_country_whatever_the_companys_region(company):
    Company.objects.filter(pk=company.pk).update(default_region="IN")

    response = client_for(company).post(URL, {**BODY, "phone_number": "+8801712345678"}, format="json")

    assert response.status_code == 202
    assert Contact.objects.get(company=company).phone == "+8801712345678"
