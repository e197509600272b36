import uuid
from urllib.parse import urlsplit

import pytest
from django.core import signing

from channels_app import registry, tracking
from channels_app.base import ChannelError, OutboundMessage
from channels_app.selectors import channel_settings_for
from channels_app.tests.conftest import account_create
from crm.models import Channel, Contact, Event
from shokti.metrics import user_events_total

pytestmark = pytest.mark.django_db

CORRELATION_ID = uuid.UUID("0b7c6a36-43f4-4d0c-9a57-5e3e3a3b9c11")


def email_message(company, contact, **overrides):
    fields = {
        "company_id": company.pk,
        "channel": Channel.EMAIL,
        "body": "Your AC service is due. Book here: https://alpha.test/book?slot=1&x=2",
        "subject": "Time for your AC service",
        "message_id": 42,
        "correlation_id": CORRELATION_ID,
        "contact_id": contact.pk,
        "to_email": contact.email,
        "to_name": contact.name,
        "options": {"agent_type": "smartengage"},
    }
    return OutboundMessage(**{**fields, **overrides})


def send(company, contact, **overrides):
    return registry.send(
        email_message(company, contact, **overrides),
        settings=channel_settings_for(company_id=company.pk, channel=Channel.EMAIL),
    )


def parts(received):
    text = received.get_body(preferencelist=("plain",)).get_content()
    html = received.get_body(preferencelist=("html",)).get_content()
    return text, html


def path_of(url: str) -> str:
    return urlsplit(url).path


def test_email_arrives_at_the_smtp_server_with_both_bodies_and_headers(company, contact, email_account, smtp_server, settings):
    settings.SITE_URL = "https://shokti.example"

    result = send(company, contact)

    [received] = smtp_server.messages
    assert smtp_server.envelopes[0].rcpt_tos == ["rahim@example.test"]
    assert received["Subject"] == "Time for your AC service"
    assert received["From"] == "Alpha <hello@alpha.test>"
    assert received["To"] == "Rahim Uddin <rahim@example.test>"
    assert received["Message-ID"] == f"<{result.provider_message_id}>"
    assert received["X-Correlation-ID"] == str(CORRELATION_ID)
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    mailto, one_click = [item.strip().strip("<>") for item in received["List-Unsubscribe"].split(",")]
    assert mailto == "mailto:hello@alpha.test?subject=unsubscribe"
    assert one_click.startswith("https://shokti.example/channels/email/unsubscribe/")
    text, html = parts(received)
    assert "Your AC service is due." in text
    assert one_click in text
    assert "https://shokti.example/channels/email/open/" in html
    assert "https://shokti.example/channels/email/click/" in html
    # the link in the HTML body goes through the click redirect; the plain text keeps it as it is
    assert 'href="https://alpha.test/book' not in html
    assert "https://alpha.test/book?slot=1&x=2" in text
    assert result.status == "sent"


def test_open_pixel_records_notification_opened_with_the_correlation_id(client, company, contact, email_account, smtp_server):
    send(company, contact)
    _, html = parts(smtp_server.messages[0])
    pixel = html.split('<img src="')[1].split('"')[0]
    before = user_events_total.labels(
        event_type="notification_opened", agent_type="smartengage", channel="email", source="email"
    )._value.get()

    response = client.get(path_of(pixel))

    assert response.status_code == 200
    assert response["Content-Type"] == "image/gif"
    event = Event.objects.get(type="notification_opened")
    assert (event.company, event.contact, event.correlation_id) == (company, contact, CORRELATION_ID)
    assert event.payload == {"channel": "email", "message_id": 42}
    after = user_events_total.labels(
        event_type="notification_opened", agent_type="smartengage", channel="email", source="email"
    )._value.get()
    assert after == before + 1


def test_click_redirects_to_the_signed_url_and_records_message_clicked(client, company, contact, email_account, smtp_server):
    send(company, contact)
    _, html = parts(smtp_server.messages[0])
    click = html.split("/channels/email/click/")[1].split('"')[0]

    response = client.get(f"/channels/email/click/{click}")

    assert response.status_code == 302
    assert response["Location"] == "https://alpha.test/book?slot=1&x=2"
    event = Event.objects.get(type="message_clicked")
    assert (event.contact, event.correlation_id) == (contact, CORRELATION_ID)
    assert event.payload["url"] == "https://alpha.test/book?slot=1&x=2"


def test_a_tampered_click_link_is_404_and_never_redirects(client, company, contact):
    good = tracking.click_url(
        url="https://alpha.test/", company_id=company.pk, message_id=1, correlation_id=None, contact_id=contact.pk, email=""
    )
    token = path_of(good).rsplit("/", 1)[1]
    forged = signing.dumps(
        {"c": company.pk, "m": 1, "r": None, "k": contact.pk, "e": "", "u": "https://evil.test/"}, salt="other-salt"
    )

    responses = [client.get(f"/channels/email/click/{token}x"), client.get(f"/channels/email/click/{forged}")]

    assert [response.status_code for response in responses] == [404, 404]
    assert all("Location" not in response for response in responses)
    assert Event.objects.count() == 0


def test_unsubscribe_get_asks_and_post_revokes_email_consent_once(client, company, contact, email_account, smtp_server):
    send(company, contact)
    one_click = smtp_server.messages[0]["List-Unsubscribe"].split(",")[1].strip().strip("<>")

    page = client.get(path_of(one_click))
    contact.refresh_from_db()
    assert page.status_code == 200
    assert b"<form" in page.content
    assert contact.is_email_consented is True

    # RFC 8058 one-click: the mailbox provider POSTs List-Unsubscribe=One-Click, without cookies.
    done = client.post(path_of(one_click), {"List-Unsubscribe": "One-Click"})
    again = client.post(path_of(one_click), {"List-Unsubscribe": "One-Click"})

    contact.refresh_from_db()
    assert (done.status_code, again.status_code) == (200, 200)
    assert contact.is_email_consented is False
    assert contact.is_sms_consented is True
    [opt_out] = Event.objects.filter(type="opt_out")
    assert opt_out.contact == contact
    assert opt_out.payload["channel"] == "email"


def test_unsubscribe_token_of_another_company_cannot_touch_this_one(client, company, other_company, contact):
    url = tracking.unsubscribe_url(
        company_id=other_company.pk, message_id=None, correlation_id=None, contact_id=contact.pk, email=contact.email
    )

    client.post(path_of(url))

    assert Contact.objects.get(pk=contact.pk).is_email_consented is True
    assert Event.objects.count() == 0


def test_smtp_server_down_is_a_transient_error(company, contact):
    account_create(company=company, channel=Channel.EMAIL, settings={"host": "127.0.0.1", "port": 9})

    with pytest.raises(ChannelError) as raised:
        send(company, contact)

    assert raised.value.permanent is False


def test_no_email_address_is_a_permanent_error(company, contact, email_account, smtp_server):
    with pytest.raises(ChannelError) as raised:
        send(company, contact, to_email="")

    assert raised.value.permanent is True
    assert smtp_server.messages == []
