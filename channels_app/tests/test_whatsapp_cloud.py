import datetime as dt
import json

import pytest
from django.urls import reverse
from django.utils import timezone

from channels_app import registry
from channels_app.base import ChannelError, OutboundMessage
from channels_app.models import ProviderCallback
from channels_app.selectors import channel_settings_for
from channels_app.tests.conftest import WHATSAPP_VERIFY_TOKEN, meta_post
from crm.models import Channel

pytestmark = pytest.mark.django_db


def whatsapp(company, **overrides):
    fields = {"company_id": company.pk, "channel": Channel.WHATSAPP_CLOUD, "body": "Salam! Kal ashben?", "to_phone": "+8801711000001"}
    return OutboundMessage(**{**fields, **overrides})


def send(company, **overrides):
    return registry.send(
        whatsapp(company, **overrides), settings=channel_settings_for(company_id=company.pk, channel=Channel.WHATSAPP_CLOUD)
    )


def test_text_message_inside_the_window(company, whatsapp_account, fake_graph_api, settings):
    settings.WHATSAPP_GRAPH_API_VERSION = "v21.0"

    result = send(company, options={"last_inbound_at": timezone.now() - dt.timedelta(hours=2)})

    [request] = fake_graph_api.requests
    assert request["path"] == "/v21.0/1098765/messages"
    assert request["authorization"] == "Bearer EAAG-token"
    assert request["json"] == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "8801711000001",
        "type": "text",
        "text": {"preview_url": False, "body": "Salam! Kal ashben?"},
    }
    assert result.provider_message_id.startswith("wamid.")
    assert result.status == "sent"


def test_template_when_the_caller_names_one(company, whatsapp_account, fake_graph_api):
    send(company, options={"template_name": "booking_reminder", "template_language": "en_US"})

    [request] = fake_graph_api.requests
    assert request["json"]["type"] == "template"
    assert request["json"]["template"] == {"name": "booking_reminder", "language": {"code": "en_US"}}


@pytest.mark.parametrize("last_inbound_at", [None, "2026-01-01T00:00:00+00:00"], ids=["never", "long-ago"])
def test_template_outside_the_24_hour_window(company, whatsapp_account, fake_graph_api, last_inbound_at):
    send(company, options={"last_inbound_at": last_inbound_at})

    [request] = fake_graph_api.requests
    assert request["json"]["type"] == "template"
    assert request["json"]["template"] == {"name": "follow_up", "language": {"code": "bn"}}


def test_outside_the_window_without_a_template_is_permanent(company, whatsapp_account, fake_graph_api):
    whatsapp_account.settings = {"phone_number_id": "1098765"}
    whatsapp_account.save(update_fields=["settings"])

    with pytest.raises(ChannelError) as raised:
        send(company, options={"last_inbound_at": None})

    assert raised.value.permanent is True
    assert fake_graph_api.requests == []


@pytest.mark.parametrize(
    ("status", "body", "permanent"),
    [
        (503, {"error": {"message": "Service unavailable", "code": 2}}, False),
        (500, {"error": {"message": "Unknown", "code": 1}}, False),
        (400, {"error": {"message": "Rate limit hit", "code": 130429}}, False),
        (400, {"error": {"message": "Re-engagement message", "code": 131047}}, True),
        (401, {"error": {"message": "Invalid OAuth access token", "code": 190}}, True),
    ],
)
def test_provider_errors_are_transient_or_permanent(company, whatsapp_account, fake_graph_api, status, body, permanent):
    fake_graph_api.fail(status=status, body=body)

    with pytest.raises(ChannelError) as raised:
        send(company)

    assert raised.value.permanent is permanent


def test_unreachable_graph_api_is_transient(company, whatsapp_account, settings):
    settings.WHATSAPP_GRAPH_API_BASE_URL = "http://127.0.0.1:9"

    with pytest.raises(ChannelError) as raised:
        send(company)

    assert raised.value.permanent is False


# --- webhook ----------------------------------------------------------------------------


def webhook_url(account):
    return reverse("channels:whatsapp-cloud-webhook", kwargs={"token": account.webhook_token})


def test_verification_handshake_echoes_the_challenge(client, whatsapp_account):
    response = client.get(
        webhook_url(whatsapp_account),
        {"hub.mode": "subscribe", "hub.verify_token": WHATSAPP_VERIFY_TOKEN, "hub.challenge": "1158201444"},
    )

    assert response.status_code == 200
    assert response.content == b"1158201444"


@pytest.mark.parametrize("params", [
    {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
    {"hub.mode": "unsubscribe", "hub.verify_token": WHATSAPP_VERIFY_TOKEN, "hub.challenge": "1"},
    {"hub.challenge": "1"},
])
def test_verification_with_a_wrong_token_is_403(client, whatsapp_account, params):
    response = client.get(webhook_url(whatsapp_account), params)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def status_payload(*statuses, phone_number_id="1098765"):
    return {
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "WABA-1",
            "changes": [{
                "field": "messages",
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "15550001111", "phone_number_id": phone_number_id},
                    "statuses": list(statuses),
                },
            }],
        }],
    }


def a_status(wamid, status, **extra):
    return {"id": wamid, "status": status, "timestamp": "1763683200", "recipient_id": "8801711000001", **extra}


def inbound_payload(text="Ji, ashbo", wamid="wamid.IN1", phone_number_id="1098765"):
    return {
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "WABA-1",
            "changes": [{
                "field": "messages",
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "15550001111", "phone_number_id": phone_number_id},
                    "contacts": [{"profile": {"name": "Karim"}, "wa_id": "8801711000002"}],
                    "messages": [{"from": "8801711000002", "id": wamid, "timestamp": "1763683200", "type": "text",
                                  "text": {"body": text}}],
                },
            }],
        }],
    }


def test_signed_statuses_are_reported_in_order(client, whatsapp_account, signal_log):
    payload = status_payload(
        a_status("wamid.A", "sent"),
        a_status("wamid.A", "delivered"),
        a_status("wamid.B", "failed", errors=[{"code": 131026, "title": "Message undeliverable"}]),
    )

    response = meta_post(client, webhook_url(whatsapp_account), payload)

    assert response.status_code == 200
    assert [(item["provider_message_id"], item["status"]) for item in signal_log.statuses] == [
        ("wamid.A", "sent"), ("wamid.A", "delivered"), ("wamid.B", "failed"),
    ]
    assert signal_log.statuses[2]["error"] == "131026: Message undeliverable"
    assert signal_log.statuses[0]["occurred_at"] == dt.datetime(2025, 11, 21, 0, 0, tzinfo=dt.UTC)
    assert all(item["company_id"] == whatsapp_account.company_id for item in signal_log.statuses)


def test_read_status_is_reported(client, whatsapp_account, signal_log):
    meta_post(client, webhook_url(whatsapp_account), status_payload(a_status("wamid.R", "read")))

    assert [item["status"] for item in signal_log.statuses] == ["read"]


@pytest.mark.parametrize("signature", ["", "sha256=" + "0" * 64, "sha1=abc"], ids=["missing", "wrong", "other-scheme"])
def test_unsigned_or_wrongly_signed_post_is_403_and_changes_nothing(client, whatsapp_account, signal_log, signature):
    response = meta_post(client, webhook_url(whatsapp_account), status_payload(a_status("wamid.A", "delivered")), signature=signature)

    assert response.status_code == 403
    assert signal_log.statuses == []
    assert ProviderCallback.objects.count() == 0


def test_signature_is_over_the_raw_bytes(client, whatsapp_account, signal_log):
    # The same JSON, serialised differently, has another signature: we must hash what was sent.
    body = json.dumps(status_payload(a_status("wamid.S", "sent")), indent=2, ensure_ascii=False).encode()

    response = meta_post(client, webhook_url(whatsapp_account), body)

    assert response.status_code == 200
    assert len(signal_log.statuses) == 1


def test_signed_with_another_apps_secret_is_403(client, whatsapp_account, signal_log):
    response = meta_post(client, webhook_url(whatsapp_account), status_payload(a_status("wamid.A", "sent")), app_secret="x")

    assert response.status_code == 403
    assert signal_log.statuses == []


def test_replayed_webhook_changes_nothing_twice(client, whatsapp_account, signal_log):
    payload = status_payload(a_status("wamid.A", "delivered"))

    responses = [meta_post(client, webhook_url(whatsapp_account), payload) for _ in range(3)]

    assert [response.status_code for response in responses] == [200, 200, 200]
    assert len(signal_log.statuses) == 1
    assert ProviderCallback.objects.filter(provider_message_id="wamid.A").count() == 1


@pytest.mark.parametrize("body", [
    b"not json",
    json.dumps({"object": "whatsapp_business_account"}).encode(),
    json.dumps({"entry": [{"changes": [{"value": "nope"}]}]}).encode(),
    json.dumps(status_payload({"status": "delivered"})).encode(),
    json.dumps([1, 2]).encode(),
], ids=["not-json", "no-entry", "value-not-object", "status-without-id", "a-list"])
def test_malformed_payload_is_400_and_nothing_is_written(client, whatsapp_account, signal_log, body):
    response = meta_post(client, webhook_url(whatsapp_account), body)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert signal_log.statuses == []
    assert ProviderCallback.objects.count() == 0


def test_status_of_an_unknown_message_is_acknowledged_and_logged(client, whatsapp_account):
    # engage's real receiver is connected here: it finds no such message and says so in the log.
    response = meta_post(client, webhook_url(whatsapp_account), status_payload(a_status("wamid.NEVER-SENT", "delivered")))

    assert response.status_code == 200
    assert ProviderCallback.objects.filter(provider_message_id="wamid.NEVER-SENT", status="delivered").exists()


def test_inbound_text_is_reported_once(client, whatsapp_account, signal_log):
    first = meta_post(client, webhook_url(whatsapp_account), inbound_payload())
    replay = meta_post(client, webhook_url(whatsapp_account), inbound_payload())

    assert (first.status_code, replay.status_code) == (200, 200)
    [inbound] = signal_log.inbound
    assert inbound["company_id"] == whatsapp_account.company_id
    assert inbound["channel"] == "whatsapp_cloud"
    assert (inbound["from_phone"], inbound["from_name"], inbound["text"]) == ("+8801711000002", "Karim", "Ji, ashbo")
    assert inbound["provider_message_id"] == "wamid.IN1"


def test_webhook_of_another_companys_account_only_reports_for_that_company(client, whatsapp_account, other_company, signal_log):
    from channels_app.tests.conftest import account_create

    other = account_create(
        company=other_company, channel=Channel.WHATSAPP_CLOUD, settings={"phone_number_id": "2220001"},
        secrets={"app_secret": "beta-secret"},
    )

    # Alpha's payload, signed with Alpha's secret, sent to Beta's URL: refused.
    refused = meta_post(client, webhook_url(other), inbound_payload())
    # Beta's app signs a payload naming Alpha's number: not Beta's to file, and not Alpha's app's.
    not_filed = meta_post(client, webhook_url(other), inbound_payload(wamid="wamid.B0"), app_secret="beta-secret")
    accepted = meta_post(
        client, webhook_url(other), inbound_payload(wamid="wamid.B1", phone_number_id="2220001"), app_secret="beta-secret"
    )

    assert (refused.status_code, not_filed.status_code, accepted.status_code) == (403, 200, 200)
    assert [item["company_id"] for item in signal_log.inbound] == [other_company.pk]
    assert not ProviderCallback.objects.filter(provider_message_id="wamid.B0").exists()


def test_another_tenants_callback_for_the_same_id_does_not_swallow_this_ones(client, whatsapp_account, other_company, signal_log):
    from channels_app.tests.conftest import account_create

    other = account_create(
        company=other_company, channel=Channel.WHATSAPP_CLOUD, settings={"phone_number_id": "2220001"},
        secrets={"app_secret": "beta-secret"},
    )

    meta_post(client, webhook_url(other), status_payload(a_status("wamid.SHARED", "delivered"), phone_number_id="2220001"),
              app_secret="beta-secret")
    meta_post(client, webhook_url(whatsapp_account), status_payload(a_status("wamid.SHARED", "delivered")))

    assert [item["company_id"] for item in signal_log.statuses] == [other_company.pk, whatsapp_account.company_id]
