"""The providers' own documented payloads (channels_app/tests/fixtures, sources in its README), replayed signed
and with bad signatures; routing by number (two companies on one Meta app, one Twilio account)."""

import datetime as dt
import json
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.urls import reverse
from twilio.request_validator import RequestValidator

from channels_app.models import ChannelNumber, ProviderCallback
from channels_app.tests.conftest import TWILIO_AUTH_TOKEN, WHATSAPP_APP_SECRET, account_create, meta_post
from crm.models import Channel

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent / "fixtures"
META_NUMBER = "106540352242922"  # Meta's sample phone_number_id
TWILIO_SID = "AC" + "1" * 32


def whatsapp_fixture(name: str) -> dict:
    return json.loads((FIXTURES / "whatsapp" / f"{name}.json").read_text())["payload"]


def twilio_fixture(name: str, **replace: str) -> list[tuple[str, str]]:
    params = json.loads((FIXTURES / "twilio" / f"{name}.json").read_text())["params"]
    return [(key, value.format(**replace) if "{" in value else value) for key, value in params]


@pytest.fixture
def meta_account(company):
    return account_create(
        company=company, channel=Channel.WHATSAPP_CLOUD, settings={"phone_number_id": META_NUMBER},
        secrets={"access_token": "EAAG-token", "app_secret": WHATSAPP_APP_SECRET, "verify_token": "v"},
    )


def token_url(account) -> str:
    return reverse("channels:whatsapp-cloud-webhook", kwargs={"token": account.webhook_token})


APP_URL = "/channels/whatsapp"

INBOUND = {
    # fixture: (kind, text, caption, media keys, reply, context message id)
    "text": ("text", "Does it come in another color?", "", None, None, ""),
    "button": ("button", "Unsubscribe from Promos", "", None,
               {"kind": "quick_reply", "id": "UNSUBSCRIBE_FROM_PROMOS", "title": "Unsubscribe from Promos"},
               "wamid.OUR-TEMPLATE-1"),
    "interactive_button_reply": ("interactive", "Yes, book it", "", None,
                                 {"kind": "button_reply", "id": "confirm-booking", "title": "Yes, book it"},
                                 "wamid.OUR-BUTTONS-1"),
    "interactive_list_reply": ("interactive", "Tomorrow 10:00", "", None,
                               {"kind": "list_reply", "id": "slot-tomorrow-10", "title": "Tomorrow 10:00",
                                "description": "A technician between 10 and 11"}, "wamid.OUR-LIST-1"),
    "image": ("image", "is this the leak?", "is this the leak?", ("1003383421387256", "image/jpeg"), None, ""),
    "audio_voice": ("voice", "", "", ("1003383421387257", "audio/ogg; codecs=opus"), None, ""),
    "video": ("video", "the tap drips like this", "the tap drips like this", ("1003383421387258", "video/mp4"), None, ""),
    "document": ("document", "last month's bill", "last month's bill", ("1003383421387259", "application/pdf"), None, ""),
    "sticker": ("sticker", "", "", ("1003383421387260", "image/webp"), None, ""),
    "location": ("location", "Main Street Beach, 1 Hacker Way, Menlo Park, CA 94025", "", None, None, ""),
    "contacts": ("contacts", "Kerry Fitzgerald +16505559999, +19175559999", "", None, None, ""),
    "reaction": ("reaction", "\U0001F44D", "", None, None, ""),
    "system": ("system", "Sheena Nelson changed from 16505551234 to 16505550000", "", None, None, ""),
    "referral_ad": ("text", "Hi, I saw your ad: is the AC service still 20% off?", "", None, None, ""),
    "context_reply": ("text", "Yes, 10 am works", "", None, None, "wamid.OUR-REPLY-1"),
}


@pytest.mark.parametrize("name", sorted(INBOUND))
def test_every_documented_inbound_type_is_reported_whole(client, meta_account, signal_log, name):
    kind, text, caption, media, reply, context_id = INBOUND[name]

    response = meta_post(client, token_url(meta_account), whatsapp_fixture(name))

    assert response.status_code == 200
    [item] = signal_log.inbound
    assert item["company_id"] == meta_account.company_id
    assert (item["kind"], item["text"], item["caption"]) == (kind, text, caption)
    assert (item["from_phone"], item["from_name"]) == ("+16505551234", "Sheena Nelson")
    assert item["occurred_at"] == dt.datetime.fromtimestamp(1749416383, tz=dt.UTC)
    assert item["to_address"] == META_NUMBER
    if media:
        assert (item["media"]["id"], item["media"]["mime_type"]) == media
        assert item["media"]["account_id"] == meta_account.pk
    else:
        assert item["media"] is None
    assert item["reply"] == reply
    assert item["context_message_id"] == context_id


def test_documented_extras_reach_engage(client, meta_account, signal_log):
    for name in ("location", "contacts", "reaction", "system", "referral_ad", "document", "audio_voice"):
        meta_post(client, token_url(meta_account), whatsapp_fixture(name))

    by_kind = {item["provider_message_id"]: item for item in signal_log.inbound}
    assert by_kind["wamid.LOC1"]["extra"]["location"] == {
        "latitude": 37.483307, "longitude": -122.148981, "name": "Main Street Beach",
        "address": "1 Hacker Way, Menlo Park, CA 94025", "url": "https://www.facebook.com",
    }
    assert by_kind["wamid.CONTACTS1"]["extra"]["contacts"][0]["name"]["formatted_name"] == "Kerry Fitzgerald"
    assert by_kind["wamid.REACT1"]["extra"]["reaction"] == {"message_id": "wamid.OUR-REPLY-1", "emoji": "\U0001F44D"}
    assert by_kind["wamid.SYSTEM1"]["extra"]["system"]["new_wa_id"] == "16505550000"
    referral = by_kind["wamid.AD1"]["referral"]
    assert (referral["source_id"], referral["source_type"], referral["headline"]) == (
        "120226305854810726", "ad", "AC service, 20% off this week"
    )
    assert referral["ctwa_clid"].startswith("ARAkLkA8rmlFeiCktEJQ")
    assert by_kind["wamid.DOC1"]["media"]["filename"] == "bill.pdf"
    assert by_kind["wamid.VOICE1"]["kind"] == "voice"


@pytest.mark.parametrize("name", [*sorted(INBOUND), "status_failed", "status_sent"])
@pytest.mark.parametrize("signature", ["", "sha256=" + "0" * 64, "other-app"])
def test_every_documented_payload_with_a_bad_signature_is_403_and_writes_nothing(
    client, meta_account, signal_log, name, signature
):
    kwargs = {"app_secret": "another-apps-secret"} if signature == "other-app" else {"signature": signature}

    response = meta_post(client, token_url(meta_account), whatsapp_fixture(name), **kwargs)

    assert response.status_code == 403
    assert signal_log.inbound == signal_log.statuses == []
    assert ProviderCallback.objects.count() == 0


def test_documented_statuses_keep_pricing_the_full_error_played_and_the_providers_time(client, meta_account, signal_log):
    for name in ("status_sent", "status_delivered", "status_read", "status_played", "status_failed"):
        assert meta_post(client, token_url(meta_account), whatsapp_fixture(name)).status_code == 200

    sent, _delivered, _read, played, failed = signal_log.statuses
    assert [item["status"] for item in signal_log.statuses] == ["sent", "delivered", "read", "played", "failed"]
    assert sent["details"]["pricing"] == {"billable": True, "pricing_model": "PMP", "category": "utility", "type": "regular"}
    assert sent["details"]["conversation"]["origin"] == {"type": "utility"}
    assert sent["occurred_at"] == dt.datetime.fromtimestamp(1749416400, tz=dt.UTC)
    assert played["provider_message_id"] == "wamid.OUR-VOICE-1"
    assert failed["error"] == (
        "131049: This message was not delivered to maintain healthy ecosystem engagement."
        " (In order to maintain a healthy ecosystem engagement, the message failed to be delivered.)"
        " https://developers.facebook.com/documentation/business-messaging/whatsapp/support/error-codes"
    )
    [error] = failed["details"]["errors"]
    assert error["details"] == "In order to maintain a healthy ecosystem engagement, the message failed to be delivered."
    assert error["message"] == "This message was not delivered to maintain healthy ecosystem engagement."


# --- one account per number -----------------------------------------------------------------


def two_numbers_payload(first: str, second: str) -> dict:
    """Two entries of one Meta app's webhook, each for another business number."""
    payload = whatsapp_fixture("text")
    other = json.loads(json.dumps(payload["entry"][0]))
    other["changes"][0]["value"]["metadata"]["phone_number_id"] = second
    other["changes"][0]["value"]["messages"][0]["id"] = "wamid.SECOND"
    payload["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = first
    payload["entry"].append(other)
    return payload


@pytest.fixture
def shared_app(company, other_company):
    """Alpha and Beta on one Meta app (one app secret), each with its own number; Alpha has a second number."""
    alpha = account_create(
        company=company, channel=Channel.WHATSAPP_CLOUD, settings={"phone_number_id": "111"},
        secrets={"access_token": "a", "app_secret": WHATSAPP_APP_SECRET},
    )
    ChannelNumber.objects.create(company=company, account=alpha, channel=Channel.WHATSAPP_CLOUD, number="112")
    beta = account_create(
        company=other_company, channel=Channel.WHATSAPP_CLOUD, settings={"phone_number_id": "222"},
        secrets={"access_token": "b", "app_secret": WHATSAPP_APP_SECRET},
    )
    return alpha, beta


@pytest.mark.parametrize("via", ["app-url", "alpha-token-url"])
def test_two_companies_on_one_meta_app_each_get_their_numbers_messages(client, shared_app, signal_log, via):
    alpha, beta = shared_app
    url = APP_URL if via == "app-url" else token_url(alpha)

    response = meta_post(client, url, two_numbers_payload("112", "222"))

    assert response.status_code == 200
    assert [(item["provider_message_id"], item["company_id"]) for item in signal_log.inbound] == [
        ("wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=", alpha.company_id),
        ("wamid.SECOND", beta.company_id),
    ]
    assert set(ProviderCallback.objects.values_list("company_id", flat=True)) == {alpha.company_id, beta.company_id}


@pytest.mark.parametrize("via", ["app-url", "token-url"])
def test_a_number_nobody_owns_is_answered_200_and_filed_nowhere(client, shared_app, signal_log, via, caplog):
    alpha, _ = shared_app
    url = APP_URL if via == "app-url" else token_url(alpha)
    payload = two_numbers_payload("999", "998")

    if via == "app-url":
        response = meta_post(client, url, payload, app_secret="whoever")
    else:
        response = meta_post(client, url, payload)

    assert response.status_code == 200
    assert signal_log.inbound == []
    assert ProviderCallback.objects.count() == 0
    assert "no account owns it" in caplog.text


def test_a_number_of_an_account_on_another_app_is_not_filed_through_this_apps_url(client, company, other_company, signal_log):
    alpha = account_create(
        company=company, channel=Channel.WHATSAPP_CLOUD, settings={"phone_number_id": "111"},
        secrets={"app_secret": WHATSAPP_APP_SECRET},
    )
    account_create(
        company=other_company, channel=Channel.WHATSAPP_CLOUD, settings={"phone_number_id": "222"},
        secrets={"app_secret": "beta-own-app"},
    )

    # Alpha's app signs a payload naming Beta's number: Beta's app never sent it.
    through_token = meta_post(client, token_url(alpha), two_numbers_payload("111", "222"))
    through_app_url = meta_post(client, APP_URL, two_numbers_payload("222", "222"))

    assert (through_token.status_code, through_app_url.status_code) == (200, 403)
    assert [item["company_id"] for item in signal_log.inbound] == [company.pk]


def test_the_shared_app_url_handshake_uses_its_own_verify_token(client, settings):
    settings.WHATSAPP_WEBHOOK_VERIFY_TOKEN = "app-verify"

    ok = client.get(APP_URL, {"hub.mode": "subscribe", "hub.verify_token": "app-verify", "hub.challenge": "42"})
    wrong = client.get(APP_URL, {"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "42"})

    assert (ok.status_code, ok.content, wrong.status_code) == (200, b"42", 403)


def test_two_accounts_claiming_one_number_file_nothing(client, company, other_company, signal_log):
    alpha = account_create(
        company=company, channel=Channel.WHATSAPP_CLOUD, settings={"phone_number_id": META_NUMBER},
        secrets={"app_secret": WHATSAPP_APP_SECRET},
    )
    beta = account_create(company=other_company, channel=Channel.WHATSAPP_CLOUD, secrets={"app_secret": WHATSAPP_APP_SECRET})
    ChannelNumber.objects.create(company=other_company, account=beta, channel=Channel.WHATSAPP_CLOUD, number=META_NUMBER)

    response = meta_post(client, token_url(alpha), whatsapp_fixture("text"))

    assert response.status_code == 200
    assert signal_log.inbound == []


# --- Twilio --------------------------------------------------------------------------------


@pytest.fixture
def twilio_account(company):
    return account_create(
        company=company, channel=Channel.SMS, settings={"account_sid": TWILIO_SID, "from_number": "+15005550006"},
        secrets={"auth_token": TWILIO_AUTH_TOKEN},
    )


def twilio_send(client, url: str, params: list[tuple[str, str]], *, signed_url: str | None = None,
                content_type: str = "application/x-www-form-urlencoded; charset=utf-8", auth_token: str = TWILIO_AUTH_TOKEN):
    """POST as Twilio does: form-encoded with its charset, signed with Twilio's own RequestValidator."""
    from django.http import QueryDict

    body = urlencode(params)
    signature = RequestValidator(auth_token).compute_signature(signed_url or f"http://testserver{url}", QueryDict(body))
    return client.post(url, body, content_type=content_type, HTTP_X_TWILIO_SIGNATURE=signature)


def inbound_url(account) -> str:
    return reverse("channels:sms-inbound", kwargs={"token": account.webhook_token})


def status_url(account) -> str:
    return reverse("channels:sms-status", kwargs={"token": account.webhook_token})


def test_documented_inbound_sms_with_its_charset_is_accepted(client, twilio_account, signal_log):
    response = twilio_send(client, inbound_url(twilio_account), twilio_fixture("inbound_sms"))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/xml"
    [item] = signal_log.inbound
    assert (item["company_id"], item["kind"], item["text"], item["from_phone"], item["to_address"]) == (
        twilio_account.company_id, "text", "কাল সকালে আসবেন?", "+8801711000009", "+15005550006"
    )


def test_parameters_in_any_order_and_repeated_keys_verify(client, twilio_account, signal_log):
    params = [*list(reversed(twilio_fixture("inbound_sms"))), ("AddOns", "a"), ("AddOns", "b")]

    response = twilio_send(client, inbound_url(twilio_account), params)

    assert response.status_code == 200
    assert len(signal_log.inbound) == 1


def test_a_repeated_key_changed_in_transit_fails_the_signature(client, twilio_account, signal_log):
    from django.http import QueryDict

    url = inbound_url(twilio_account)
    signed = [*twilio_fixture("inbound_sms"), ("AddOns", "a"), ("AddOns", "b")]
    signature = RequestValidator(TWILIO_AUTH_TOKEN).compute_signature(f"http://testserver{url}", QueryDict(urlencode(signed)))
    tampered = [*twilio_fixture("inbound_sms"), ("AddOns", "a"), ("AddOns", "c")]

    response = client.post(url, urlencode(tampered), content_type="application/x-www-form-urlencoded; charset=utf-8",
                           HTTP_X_TWILIO_SIGNATURE=signature)

    assert response.status_code == 403
    assert signal_log.inbound == []


def test_behind_a_proxy_the_public_url_is_what_twilio_signed(client, twilio_account, signal_log, settings):
    settings.CHANNELS_PUBLIC_BASE_URL = "https://crm.example.com"
    url = inbound_url(twilio_account)

    public = twilio_send(client, url, twilio_fixture("inbound_sms"), signed_url=f"https://crm.example.com{url}")
    elsewhere = twilio_send(client, url, twilio_fixture("inbound_sms"), signed_url=f"https://evil.example{url}")

    assert (public.status_code, elsewhere.status_code) == (200, 403)
    assert len(signal_log.inbound) == 1


@pytest.mark.parametrize("content_type", ["application/json", "multipart/form-data; boundary=x", "text/plain"])
def test_other_content_types_are_refused(client, twilio_account, signal_log, content_type):
    response = twilio_send(client, inbound_url(twilio_account), twilio_fixture("inbound_sms"), content_type=content_type)

    assert response.status_code in (400, 403)
    assert signal_log.inbound == []


def test_an_sms_to_a_number_nobody_owns_is_answered_and_filed_nowhere(client, twilio_account, signal_log):
    params = [(key, "+15005559999" if key == "To" else value) for key, value in twilio_fixture("inbound_sms")]

    response = twilio_send(client, inbound_url(twilio_account), params)

    assert response.status_code == 200
    assert signal_log.inbound == []
    assert ProviderCallback.objects.count() == 0


def test_sms_is_routed_by_to_and_account_sid(client, twilio_account, other_company, signal_log):
    # Beta's number on the same Twilio account: an SMS to it, posted to Alpha's URL, is Beta's.
    beta = account_create(
        company=other_company, channel=Channel.SMS, settings={"account_sid": TWILIO_SID, "from_number": "+15005550007"},
        secrets={"auth_token": TWILIO_AUTH_TOKEN},
    )
    to_beta = [(key, "+15005550007" if key == "To" else value) for key, value in twilio_fixture("inbound_sms")]
    wrong_sid = [(key, "AC" + "9" * 32 if key == "AccountSid" else value) for key, value in twilio_fixture("inbound_sms")]

    twilio_send(client, inbound_url(twilio_account), to_beta)
    twilio_send(client, inbound_url(twilio_account), wrong_sid)

    assert [item["company_id"] for item in signal_log.inbound] == [beta.company_id]


def test_documented_mms_reports_its_media(client, twilio_account, signal_log, settings):
    settings.TWILIO_API_BASE_URL = "https://api.twilio.com"
    params = twilio_fixture("inbound_mms", TWILIO="https://api.twilio.com")

    response = twilio_send(client, inbound_url(twilio_account), params)

    assert response.status_code == 200
    [item] = signal_log.inbound
    assert (item["kind"], item["text"], item["caption"]) == ("image", "is this the leak?", "is this the leak?")
    assert item["media"]["url"].startswith(f"https://api.twilio.com/2010-04-01/Accounts/{TWILIO_SID}/Messages/")
    assert (item["media"]["mime_type"], item["media"]["provider"], item["media"]["account_id"]) == (
        "image/jpeg", "sms", twilio_account.pk
    )


def test_documented_status_callbacks(client, twilio_account, signal_log):
    delivered = twilio_send(client, status_url(twilio_account), twilio_fixture("status_delivered"))
    undelivered = twilio_send(client, status_url(twilio_account), twilio_fixture("status_undelivered"))

    assert (delivered.status_code, undelivered.status_code) == (204, 204)
    first, second = signal_log.statuses
    assert (first["status"], first["occurred_at"]) == ("delivered", dt.datetime(2025, 11, 21, 9, 30, tzinfo=dt.UTC))
    assert second["status"] == "failed"
    assert second["error"] == "Twilio error 30003 https://www.twilio.com/docs/api/errors/30003"
    assert second["details"]["errors"][0]["code"] == "30003"


def test_documented_status_callback_with_a_bad_signature_is_403(client, twilio_account, signal_log):
    response = twilio_send(client, status_url(twilio_account), twilio_fixture("status_delivered"), auth_token="wrong")

    assert response.status_code == 403
    assert ProviderCallback.objects.count() == 0


def test_documented_mms_with_three_attachments_reports_each(client, twilio_account, signal_log, settings):
    settings.TWILIO_API_BASE_URL = "https://api.twilio.com"

    response = twilio_send(client, inbound_url(twilio_account), twilio_fixture("inbound_mms_three", TWILIO="https://api.twilio.com"))

    assert response.status_code == 200
    [item] = signal_log.inbound
    assert [(a["kind"], a["mime_type"], a["url"][-2:], a["account_id"]) for a in item["attachments"]] == [
        ("image", "image/jpeg", "00", twilio_account.pk), ("audio", "audio/amr", "01", twilio_account.pk),
        ("document", "application/pdf", "02", twilio_account.pk),
    ]
    assert (item["kind"], item["media"]["url"]) == ("image", item["attachments"][0]["url"])


@pytest.mark.parametrize(("name", "reported"), [
    ("status_queued", None), ("status_sent", "sent"), ("status_delivered", "delivered"),
    ("status_undelivered", "failed"), ("status_failed", "failed"),
])
def test_every_documented_twilio_status(client, twilio_account, signal_log, name, reported):
    response = twilio_send(client, status_url(twilio_account), twilio_fixture(name))

    assert response.status_code == 204
    assert [item["status"] for item in signal_log.statuses] == ([reported] if reported else [])
    if name == "status_failed":
        assert signal_log.statuses[0]["error"] == (
            "Twilio error 30007: Message filtered https://www.twilio.com/docs/api/errors/30007"
        )
