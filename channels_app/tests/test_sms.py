import pytest
from django.urls import reverse

from channels_app import registry
from channels_app.base import ChannelError, OutboundMessage
from channels_app.models import ProviderCallback
from channels_app.selectors import channel_settings_for
from channels_app.tests.conftest import TWILIO_AUTH_TOKEN, twilio_post
from crm.models import Channel

pytestmark = pytest.mark.django_db


def sms(company, **overrides):
    return OutboundMessage(
        company_id=company.pk, channel=Channel.SMS, body="Apnar booking kal 10 ta-y.", to_phone="+8801711000001", **overrides
    )


def test_send_goes_through_the_twilio_sdk_to_the_provider(company, sms_account, fake_twilio, settings):
    # given
    settings.SITE_URL = "https://shokti.example"

    # when
    result = registry.send(sms(company), settings=channel_settings_for(company_id=company.pk, channel=Channel.SMS))

    # then
    assert result.status == "sent"
    assert result.provider_message_id.startswith("SM")
    [request] = fake_twilio.requests
    assert request["path"] == f"/2010-04-01/Accounts/{'AC' + '1' * 32}/Messages.json"
    assert request["To"] == "+8801711000001"
    assert request["From"] == "+15005550006"
    assert request["Body"] == "Apnar booking kal 10 ta-y."
    assert request["StatusCallback"] == f"https://shokti.example/channels/sms/{sms_account.webhook_token}/status"
    assert request["authorization"].startswith("Basic ")


@pytest.mark.parametrize("status", [500, 503, 429])
def test_provider_outage_is_a_transient_error(company, sms_account, fake_twilio, status):
    fake_twilio.fail(status=status, body={"code": 20500, "message": "Internal error", "status": status})

    with pytest.raises(ChannelError) as raised:
        registry.send(sms(company), settings=channel_settings_for(company_id=company.pk, channel=Channel.SMS))

    assert raised.value.permanent is False


def test_unreachable_provider_is_a_transient_error(company, sms_account, settings):
    settings.TWILIO_API_BASE_URL = "http://127.0.0.1:9"  # discard port: connection refused

    with pytest.raises(ChannelError) as raised:
        registry.send(sms(company), settings=channel_settings_for(company_id=company.pk, channel=Channel.SMS))

    assert raised.value.permanent is False


def test_rejected_number_is_a_permanent_error(company, sms_account, fake_twilio):
    fake_twilio.fail(status=400, body={"code": 21211, "message": "Invalid 'To' Phone Number", "status": 400})

    with pytest.raises(ChannelError) as raised:
        registry.send(sms(company), settings=channel_settings_for(company_id=company.pk, channel=Channel.SMS))

    assert raised.value.permanent is True
    assert "21211" in str(raised.value)


def test_no_credentials_is_a_permanent_error(company, fake_twilio):
    with pytest.raises(ChannelError) as raised:
        registry.send(sms(company), settings={})

    assert raised.value.permanent is True
    assert fake_twilio.requests == []


def status_url(account):
    return reverse("channels:sms-status", kwargs={"token": account.webhook_token})


def test_signed_status_callback_reports_the_status(client, sms_account, signal_log):
    params = {"MessageSid": "SM123", "MessageStatus": "delivered", "AccountSid": "AC1"}

    response = twilio_post(client, status_url(sms_account), params)

    assert response.status_code == 204
    [status] = signal_log.statuses
    assert status["channel"] == "sms"
    assert status["company_id"] == sms_account.company_id
    assert status["provider_message_id"] == "SM123"
    assert status["status"] == "delivered"
    assert ProviderCallback.objects.filter(provider_message_id="SM123", status="delivered").count() == 1


def test_undelivered_is_reported_failed_with_the_error_code(client, sms_account, signal_log):
    params = {"MessageSid": "SM124", "MessageStatus": "undelivered", "ErrorCode": "30003"}

    twilio_post(client, status_url(sms_account), params)

    [status] = signal_log.statuses
    assert (status["status"], status["error"]) == (
        "failed", "Twilio error 30003 https://www.twilio.com/docs/api/errors/30003"
    )


@pytest.mark.parametrize(
    "signature", ["", "d3JvbmcgZXZlcnl0aGluZw==", None], ids=["missing", "wrong", "other-token"]
)
def test_unsigned_or_wrongly_signed_callback_is_403_and_changes_nothing(client, sms_account, signal_log, signature):
    params = {"MessageSid": "SM125", "MessageStatus": "delivered"}
    kwargs = {"auth_token": "someone-elses-token"} if signature is None else {"signature": signature}

    response = twilio_post(client, status_url(sms_account), params, **kwargs)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert signal_log.statuses == []
    assert ProviderCallback.objects.count() == 0


def test_replayed_callback_changes_nothing_twice(client, sms_account, signal_log):
    params = {"MessageSid": "SM126", "MessageStatus": "delivered"}

    first = twilio_post(client, status_url(sms_account), params)
    second = twilio_post(client, status_url(sms_account), params)

    assert (first.status_code, second.status_code) == (204, 204)
    assert len(signal_log.statuses) == 1
    assert ProviderCallback.objects.count() == 1


def test_malformed_callback_is_400(client, sms_account, signal_log):
    response = twilio_post(client, status_url(sms_account), {"MessageStatus": "delivered"})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert signal_log.statuses == []
    assert ProviderCallback.objects.count() == 0


def test_intermediate_statuses_are_logged_not_reported(client, sms_account, signal_log):
    twilio_post(client, status_url(sms_account), {"MessageSid": "SM127", "MessageStatus": "sending"})

    assert signal_log.statuses == []
    assert ProviderCallback.objects.filter(provider_message_id="SM127", status="sending").exists()


def test_unknown_webhook_token_is_404(client, sms_account, signal_log):
    response = twilio_post(client, "/channels/sms/not-a-token/status", {"MessageSid": "SM1", "MessageStatus": "sent"})

    assert response.status_code == 404
    assert signal_log.statuses == []


def test_inactive_account_webhook_is_404(client, sms_account, signal_log):
    sms_account.is_active = False
    sms_account.save(update_fields=["is_active"])

    response = twilio_post(client, status_url(sms_account), {"MessageSid": "SM1", "MessageStatus": "sent"})

    assert response.status_code == 404


def test_inbound_sms_is_reported_and_answered_with_empty_twiml(client, sms_account, signal_log):
    url = reverse("channels:sms-inbound", kwargs={"token": sms_account.webhook_token})
    params = {
        "MessageSid": "SM200", "AccountSid": "AC" + "1" * 32, "From": "+8801711000009", "To": "+15005550006", "Body": "STOP",
    }

    response = twilio_post(client, url, params)
    replay = twilio_post(client, url, params)

    assert response.status_code == 200
    assert response["Content-Type"] == "text/xml"
    assert b"<Response></Response>" in response.content
    assert replay.status_code == 200
    [inbound] = signal_log.inbound
    assert inbound["company_id"] == sms_account.company_id
    assert (inbound["channel"], inbound["from_phone"], inbound["text"]) == ("sms", "+8801711000009", "STOP")
    assert inbound["provider_message_id"] == "SM200"


def test_inbound_sms_with_wrong_signature_is_403(client, sms_account, signal_log):
    url = reverse("channels:sms-inbound", kwargs={"token": sms_account.webhook_token})
    params = {"MessageSid": "SM201", "From": "+8801711000009", "Body": "hi"}

    response = twilio_post(client, url, params, auth_token="not-" + TWILIO_AUTH_TOKEN)

    assert response.status_code == 403
    assert signal_log.inbound == []


def test_a_failing_receiver_keeps_nothing_so_the_retry_is_processed(client, sms_account, signal_log):
    from channels_app import signals

    def broken(sender, **kwargs):
        raise RuntimeError("database hiccup")

    signals.delivery_status_changed.connect(broken, weak=False)
    params = {"MessageSid": "SM300", "MessageStatus": "delivered"}
    try:
        failed = twilio_post(client, status_url(sms_account), params)
    finally:
        signals.delivery_status_changed.disconnect(broken)
    retried = twilio_post(client, status_url(sms_account), params)

    assert failed.status_code == 503
    assert retried.status_code == 204
    assert ProviderCallback.objects.filter(provider_message_id="SM300").count() == 1
