"""A company's allowed link domains (issue 15's list) reach the email channel: tracked, redirected; others are text."""

import re
from urllib.parse import urlsplit

import pytest

from channels_app.models import EmailDelivery
from channels_app.tests.conftest import account_create
from crm.tests.factories import ContactFactory
from engage.ai.config import ai_config_for
from engage.messaging.services import message_send

PARTNER_URL = "https://offers.partner.example/eid"


@pytest.fixture
def email_account(company, smtp_server):
    return account_create(
        company=company, channel="email",
        settings={"host": "127.0.0.1", "port": smtp_server.port, "from_email": "Alpha <hello@alpha.test>"},
    )


@pytest.mark.django_db
def test_a_partner_domain_the_company_allows_is_a_tracked_button_and_its_click_redirects(
    client, company, email_account, smtp_server
):
    # given the company allows its partner's domain (AI configuration, Safety)
    config = ai_config_for(company=company)
    config.allowed_link_domains = ["partner.example"]
    config.save()
    contact = ContactFactory(company=company, email="rumana@example.test", is_email_consented=True)

    # when a message with that link and a stranger's link goes out by email
    message_send(
        job=None, company=company, contact=contact, lead=None, channel="email", subject="ঈদের অফার",
        body=f"অফারটি দেখুন: {PARTNER_URL} আর এটি নয়: https://evil.example/x", agent_type="manual",
        message_type="manual_reply",
    )

    # then the partner's link is a tracked button, the other one plain text
    delivery = EmailDelivery.objects.get()
    assert delivery.links == [PARTNER_URL] and "partner.example" in delivery.link_hosts
    html = smtp_server.messages[0].get_payload()[1].get_payload(decode=True).decode()
    assert 'href="https://evil.example' not in html and "https://evil.example/x" in html
    click = next(url for url in re.findall(r'href="([^"]+)"', html) if "/click/" in url).replace("&amp;", "&")
    response = client.get(urlsplit(click).path)
    assert response.status_code == 302 and response["Location"] == PARTNER_URL

    # and once the company no longer allows the domain, the old email's link is not followed
    config.allowed_link_domains = []
    config.save()
    EmailDelivery.objects.filter(pk=delivery.pk).update(link_hosts=[])
    assert client.get(urlsplit(click).path).status_code == 404
