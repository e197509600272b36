import base64
import re
import uuid
from urllib.parse import urlsplit

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core import signing
from django.core.management import call_command

from channels_app import registry, tracking
from channels_app.base import ChannelError, OutboundMessage
from channels_app.models import EmailDelivery
from channels_app.selectors import channel_settings_for
from channels_app.tests.conftest import account_create
from crm.models import Channel, Contact, Event
from shokti.metrics import user_events_total

pytestmark = pytest.mark.django_db

CORRELATION_ID = uuid.UUID("0b7c6a36-43f4-4d0c-9a57-5e3e3a3b9c11")
BOOKING_URL = "https://alpha.test/book?slot=1&x=2"


@pytest.fixture(autouse=True)
def allowed_hosts(settings):
    settings.EMAIL_LINK_ALLOWED_HOSTS = ["alpha.test"]
    settings.SITE_URL = "https://shokti.example"


def email_message(company, contact, **overrides):
    fields = {
        "company_id": company.pk,
        "channel": Channel.EMAIL,
        "body": f"আপনার এসি সার্ভিসের সময় হয়েছে। বুক করুন: {BOOKING_URL}",
        "subject": "এসি সার্ভিসের সময় হয়েছে",
        "message_id": 42,
        "correlation_id": CORRELATION_ID,
        "contact_id": contact.pk,
        "to_email": contact.email,
        "to_name": contact.name,
        "options": {"agent_type": "smartengage", "message_type": "reminder"},
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


def tracking_urls(html: str) -> list[str]:
    return re.findall(r'(?:href|src)="(https://shokti\.example/channels/email/[^"]+)"', html)


def click_path(html: str) -> str:
    return path_of(next(url for url in tracking_urls(html) if "/click/" in url).replace("&amp;", "&"))


def test_email_arrives_with_both_bodies_and_the_headers_mailbox_providers_want(company, contact, email_account, smtp_server):
    result = send(company, contact)

    [received] = smtp_server.messages
    assert smtp_server.envelopes[0].rcpt_tos == ["rahim@example.test"]
    assert received["Subject"].strip() == "এসি সার্ভিসের সময় হয়েছে"  # RFC 2047, folded by Python
    assert received["From"] == "Alpha <hello@alpha.test>"
    assert received["To"] == "Rahim Uddin <rahim@example.test>"
    assert received["Message-ID"] == f"<{result.provider_message_id}>"
    assert received["X-Correlation-ID"] == str(CORRELATION_ID)
    assert received["Feedback-ID"] == "reminder:alpha:smartengage:shokti"
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    mailto, one_click = [item.strip().strip("<>") for item in received["List-Unsubscribe"].split(",")]
    assert mailto == "mailto:hello@alpha.test?subject=unsubscribe"
    assert one_click.startswith("https://shokti.example/channels/email/unsubscribe/")
    text, _ = parts(received)
    assert "আপনার এসি সার্ভিসের সময় হয়েছে।" in text
    assert BOOKING_URL in text  # the plain text keeps the link as it is
    assert one_click in text
    assert "আর ইমেইল পেতে না চাইলে আনসাবস্ক্রাইব করুন" in text
    assert "Alpha Home Services" in text and "Dhanmondi, Dhaka 1205" in text
    assert result.status == "sent"


def test_the_html_is_a_branded_bengali_layout_with_a_button_not_the_raw_url(company, contact, email_account, smtp_server):
    send(company, contact)

    _, html = parts(smtp_server.messages[0])
    assert '<html lang="bn"' in html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "Alpha Home Services" in html
    assert "House 12, Road 5, Dhanmondi, Dhaka 1205, Bangladesh" in html
    assert "এখানে আনসাবস্ক্রাইব করুন" in html
    assert "font-size:14px" in html  # the unsubscribe line is readable, not 12 px
    # the booking link is a Bengali button through the click redirect; its URL is nowhere in the HTML
    button = re.search(r'<a class="button" href="([^"]+)"[^>]*>([^<]+)</a>', html)
    assert button.group(2) == "লিংকটি খুলুন"
    assert button.group(1).startswith("https://shokti.example/channels/email/click/")
    assert "alpha.test/book" not in html
    # no open pixel unless the company turned it on
    assert "/channels/email/open/" not in html and "<img" not in html


def test_a_deep_link_gets_the_booking_label(company, contact, email_account, smtp_server, settings):
    settings.DEEP_LINK_BASE_URL = "https://app.sheba.xyz/book"

    send(company, contact, body="আবার বুক করুন: https://app.sheba.xyz/book?token=abc.def")

    _, html = parts(smtp_server.messages[0])
    assert re.search(r'<a class="button"[^>]*>বুকিং করুন</a>', html)


def test_the_open_pixel_only_where_the_company_turned_it_on(company, contact, email_account, smtp_server):
    company.is_email_open_tracking_enabled = True
    company.save(update_fields=["is_email_open_tracking_enabled"])

    send(company, contact)

    _, html = parts(smtp_server.messages[0])
    assert len([url for url in tracking_urls(html) if "/open/" in url]) == 1


def test_tracking_links_carry_opaque_ids_only_never_the_address(company, contact, email_account, smtp_server):
    company.is_email_open_tracking_enabled = True
    company.save(update_fields=["is_email_open_tracking_enabled"])

    send(company, contact)

    received = smtp_server.messages[0]
    _, html = parts(received)
    urls = [*tracking_urls(html), received["List-Unsubscribe"]]
    delivery = EmailDelivery.objects.get()
    for url in urls:
        token = url.rstrip(">").rsplit("/", 1)[1].removesuffix(".gif")
        payload = token.split(":")[0]
        decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
        assert set(signing.loads(token, salt=_salt(url)).keys()) <= {"c", "d", "l"}
        assert "rahim" not in decoded and "example.test" not in decoded and "alpha.test" not in decoded
        assert str(delivery.pk) in decoded
    assert "rahim" not in " ".join(urls)


def _salt(url: str) -> str:
    return {"open": tracking.OPEN_SALT, "click": tracking.CLICK_SALT, "unsubscribe": tracking.UNSUBSCRIBE_SALT}[
        url.split("/channels/email/")[1].split("/")[0]
    ]


def test_the_first_click_is_recorded_once_head_is_ignored_and_it_redirects(client, company, contact, email_account,
                                                                            smtp_server):
    send(company, contact)
    path = click_path(parts(smtp_server.messages[0])[1])

    head = client.head(path)
    clicks = [client.get(path, HTTP_USER_AGENT="Mozilla/5.0 (Linux; Android 14) Chrome/131") for _ in range(3)]

    assert head.status_code == 302
    assert [response.status_code for response in clicks] == [302, 302, 302]
    assert all(response["Location"] == BOOKING_URL for response in clicks)
    [event] = Event.objects.filter(type="message_clicked")
    assert (event.contact, event.correlation_id) == (contact, None)
    assert event.payload == {"channel": "email", "message_id": 42, "url": BOOKING_URL}
    delivery = EmailDelivery.objects.get()
    assert (delivery.clicked_url, delivery.click_is_prefetch) == (BOOKING_URL, False)


def test_a_link_scanners_click_is_flagged_and_a_persons_later_click_replaces_it(client, company, contact, email_account,
                                                                                 smtp_server):
    send(company, contact)
    path = click_path(parts(smtp_server.messages[0])[1])

    client.get(path, HTTP_USER_AGENT="Mozilla/5.0 (compatible; Barracuda Sentinel)")
    client.get(path, HTTP_USER_AGENT="Mozilla/5.0 (iPhone) Safari/604.1")
    client.get(path, HTTP_USER_AGENT="Mimecast URL scanner")

    events = list(Event.objects.filter(type="message_clicked").order_by("id"))
    assert [event.payload.get("is_prefetch", False) for event in events] == [True, False]
    assert EmailDelivery.objects.get().click_is_prefetch is False


def test_opens_first_only_head_ignored(client, company, contact, email_account, smtp_server):
    company.is_email_open_tracking_enabled = True
    company.save(update_fields=["is_email_open_tracking_enabled"])
    send(company, contact)
    pixel = path_of(next(url for url in tracking_urls(parts(smtp_server.messages[0])[1]) if "/open/" in url))
    before = user_events_total.labels(
        event_type="notification_opened", agent_type="smartengage", channel="email", source="email"
    )._value.get()

    head = client.head(pixel)
    hits = [client.get(pixel, HTTP_USER_AGENT="Mozilla/5.0 Thunderbird/128") for _ in range(3)]

    assert head.status_code == 200 and head["Content-Type"] == "image/gif"
    assert all(hit.status_code == 200 and hit["Content-Type"] == "image/gif" for hit in hits)
    [event] = Event.objects.filter(type="notification_opened")
    assert (event.company, event.contact) == (company, contact)
    assert event.payload == {"channel": "email", "message_id": 42}
    after = user_events_total.labels(
        event_type="notification_opened", agent_type="smartengage", channel="email", source="email"
    )._value.get()
    assert after == before + 1


def test_a_link_the_model_invented_is_never_a_link_and_never_a_redirect(client, company, contact, email_account,
                                                                         smtp_server):
    send(company, contact, body="আপনার অ্যাকাউন্ট যাচাই করুন: https://evil.example/login?next=bank এবং বুক করুন " + BOOKING_URL)

    _, html = parts(smtp_server.messages[0])
    assert 'href="https://evil.example' not in html
    assert "https://evil.example/login?next=bank" in html  # visible text, not a link
    delivery = EmailDelivery.objects.get()
    assert delivery.links == [BOOKING_URL]
    # and a stored link that is not (or no longer) allowed is not followed
    EmailDelivery.objects.filter(pk=delivery.pk).update(links=["https://evil.example/login?next=bank"])
    response = client.get(click_path(html))
    assert response.status_code == 404 and "Location" not in response
    assert Event.objects.filter(type="message_clicked").count() == 0


def test_a_tampered_click_link_is_404_and_never_redirects(client, company, contact, email_account, smtp_server):
    send(company, contact)
    path = click_path(parts(smtp_server.messages[0])[1])
    delivery = EmailDelivery.objects.get()
    forged = signing.dumps({"c": company.pk, "d": delivery.pk, "l": 0}, salt="other-salt")
    out_of_range = signing.dumps({"c": company.pk, "d": delivery.pk, "l": 5}, salt=tracking.CLICK_SALT)
    legacy_evil = signing.dumps({"c": company.pk, "m": 1, "u": "https://evil.test/"}, salt=tracking.CLICK_SALT)

    responses = [client.get(f"{path}x")] + [
        client.get(f"/channels/email/click/{token}") for token in (forged, out_of_range, legacy_evil)
    ]

    assert [response.status_code for response in responses] == [404, 404, 404, 404]
    assert all("Location" not in response for response in responses)
    assert Event.objects.count() == 0


def test_another_companys_delivery_id_in_a_token_is_404(client, company, other_company, contact, email_account,
                                                        smtp_server):
    send(company, contact)
    delivery = EmailDelivery.objects.get()
    token = signing.dumps({"c": other_company.pk, "d": delivery.pk, "l": 0}, salt=tracking.CLICK_SALT)

    assert client.get(f"/channels/email/click/{token}").status_code == 404


def test_unsubscribe_get_asks_and_post_revokes_email_consent_once(client, company, contact, email_account, smtp_server):
    send(company, contact)
    one_click = smtp_server.messages[0]["List-Unsubscribe"].split(",")[1].strip().strip("<>")

    page = client.get(path_of(one_click))
    contact.refresh_from_db()
    assert page.status_code == 200
    assert b"<form" in page.content
    assert "আনসাবস্ক্রাইব" in page.content.decode()
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


def test_an_old_emails_unsubscribe_link_still_works(client, company, contact):
    legacy = signing.dumps(
        {"a": "smartengage", "c": company.pk, "m": 7, "r": None, "k": contact.pk, "e": contact.email},
        salt=tracking.UNSUBSCRIBE_SALT, compress=True,
    )

    client.post(f"/channels/email/unsubscribe/{legacy}")

    assert Contact.objects.get(pk=contact.pk).is_email_consented is False


def test_unsubscribe_token_of_another_company_cannot_touch_this_one(client, company, other_company, contact):
    legacy = signing.dumps(
        {"c": other_company.pk, "m": None, "r": None, "k": contact.pk, "e": contact.email}, salt=tracking.UNSUBSCRIBE_SALT
    )

    client.post(f"/channels/email/unsubscribe/{legacy}")

    assert Contact.objects.get(pk=contact.pk).is_email_consented is True
    assert Event.objects.count() == 0


def test_marketing_email_without_a_postal_address_is_refused_with_the_reason(company, contact, email_account,
                                                                              smtp_server):
    company.postal_address = ""
    company.save(update_fields=["postal_address"])

    with pytest.raises(ChannelError) as raised:
        send(company, contact)

    assert raised.value.permanent is True
    assert "has no postal address" in str(raised.value)
    assert smtp_server.messages == []
    # a person's own reply is not marketing: it goes
    send(company, contact, options={"agent_type": "manual", "message_type": "manual_reply"}, message_id=43)
    assert len(smtp_server.messages) == 1


def test_verp_return_path_names_the_email(company, contact, email_account, smtp_server, settings):
    settings.EMAIL_BOUNCE_ADDRESS = "bounces@mail.alpha.test"

    send(company, contact)

    delivery = EmailDelivery.objects.get()
    assert smtp_server.envelopes[0].mail_from == f"bounces+{delivery.token}@mail.alpha.test"
    assert smtp_server.messages[0]["From"] == "Alpha <hello@alpha.test>"


def test_dkim_signature_verifies_against_the_published_key(company, contact, email_account, smtp_server, settings):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    settings.EMAIL_DKIM_DOMAIN = "alpha.test"
    settings.EMAIL_DKIM_SELECTOR = "s2026"
    settings.EMAIL_DKIM_PRIVATE_KEY = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = base64.b64encode(key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )).decode()

    send(company, contact)

    raw = smtp_server.envelopes[0].content
    assert raw.startswith(b"DKIM-Signature:")
    signature = raw.split(b"\r\n\r\n", 1)[0].decode()
    assert "d=alpha.test" in signature and "s=s2026" in signature
    assert "list-unsubscribe" in signature.lower()

    def dns(name, timeout=5):
        assert name == b"s2026._domainkey.alpha.test."
        return f"v=DKIM1; k=rsa; p={public}".encode()

    assert dkim.verify(raw, dnsfunc=dns) is True
    assert dkim.verify(raw.replace("আপনার".encode(), "তোমার".encode(), 1), dnsfunc=dns) is False


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


# --- the deploy check ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("site_url", "from_email", "errors"),
    [
        ("http://crm.example.com", "Alpha <hello@alpha-mail.com>", ["channels.E001"]),
        ("https://crm.example.com", "Shokti <noreply@localhost>", ["channels.E002"]),
        ("https://crm.example.com", "noreply@127.0.0.1", ["channels.E002"]),
        ("https://crm.example.com", "Alpha <hello@alpha-mail.com>", []),
    ],
)
def test_the_deploy_check_refuses_plain_http_and_a_localhost_from(settings, site_url, from_email, errors):
    from channels_app.checks import email_identity_check

    settings.SITE_URL, settings.DEFAULT_FROM_EMAIL = site_url, from_email

    assert [error.id for error in email_identity_check()] == errors


def test_check_deploy_reports_it(settings):
    from django.core.management.base import SystemCheckError

    settings.SITE_URL = "http://crm.example.com"
    with pytest.raises(SystemCheckError, match=r"channels\.E001"):
        call_command("check", "--deploy", "--fail-level", "ERROR", verbosity=0)
