"""The company's webhook secret in the admin: write-only, kept when left blank, generated and shown once."""

import pytest
from django.urls import reverse

from crm.models import Company
from crm.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

SECRET = "whsec_the-old-secret-0123456789"


@pytest.fixture
def root_client(client):
    client.force_login(UserFactory(email="root@shokti.test", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def hooked(company):
    company.webhook_url, company.webhook_secret = "https://crm.example.test/hooks", SECRET
    company.save()
    return company


def change_url(company):
    return reverse("admin:crm_company_change", args=[company.pk])


def form_data(company, **extra):
    data = {
        "name": company.name, "slug": company.slug, "default_region": company.default_region,
        "timezone": company.timezone, "is_active": "on", "webhook_url": company.webhook_url,
        "new_webhook_secret": "",
    }
    return {**data, **extra}


def shown_once(response) -> list[str]:
    return [str(message) for message in response.context["messages"] if "will not be shown again" in str(message)]


def test_the_secret_never_appears_in_the_change_page_or_the_list(root_client, hooked):
    page = root_client.get(change_url(hooked)).content.decode()
    listing = root_client.get(reverse("admin:crm_company_changelist")).content.decode()

    assert SECRET not in page and SECRET not in listing
    assert "Set (hidden)" in page and 'name="new_webhook_secret"' in page
    assert 'name="webhook_secret"' not in page


def test_a_blank_secret_keeps_the_current_one(root_client, hooked):
    response = root_client.post(change_url(hooked), form_data(hooked, name="Renamed"))

    assert response.status_code == 302
    hooked.refresh_from_db()
    assert (hooked.name, hooked.webhook_secret) == ("Renamed", SECRET)


def test_a_typed_secret_replaces_it_and_is_not_rendered_back(root_client, hooked):
    new = "whsec_typed-by-the-operator-42"
    response = root_client.post(change_url(hooked), form_data(hooked, new_webhook_secret=new), follow=True)

    hooked.refresh_from_db()
    assert hooked.webhook_secret == new
    assert new not in response.content.decode()

    too_short = root_client.post(change_url(hooked), form_data(hooked, new_webhook_secret="short"))
    assert too_short.status_code == 200 and "At least 16 characters." in too_short.content.decode()
    assert 'value="short"' not in too_short.content.decode()  # a refused secret is not echoed either
    hooked.refresh_from_db()
    assert hooked.webhook_secret == new


def test_generate_shows_the_new_secret_once(root_client, hooked):
    response = root_client.post(change_url(hooked), form_data(hooked, generate_webhook_secret="on"), follow=True)

    [message] = shown_once(response)
    secret = message.rsplit(" ", 1)[-1]
    hooked.refresh_from_db()
    assert hooked.webhook_secret == secret != SECRET and secret.startswith("whsec_")
    assert secret not in root_client.get(change_url(hooked)).content.decode()


def test_typing_and_generating_at_once_is_refused(root_client, hooked):
    response = root_client.post(
        change_url(hooked), form_data(hooked, new_webhook_secret="whsec_typed-by-the-operator-42", generate_webhook_secret="on")
    )

    assert response.status_code == 200
    hooked.refresh_from_db()
    assert hooked.webhook_secret == SECRET


def test_a_url_without_a_secret_gets_one_generated(root_client, company):
    response = root_client.post(
        change_url(company), form_data(company, webhook_url="https://crm.example.test/hooks"), follow=True
    )

    [message] = shown_once(response)
    company = Company.objects.get(pk=company.pk)
    assert company.webhook_secret and company.webhook_secret == message.rsplit(" ", 1)[-1]
