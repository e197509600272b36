"""Bounces and complaints from the email provider's event webhook (Mailgun's documented `event-data` shape,
https://documentation.mailgun.com/docs/mailgun/user-manual/events/webhooks), signed with the account's
webhook signing key: the email is sent through engage to the local SMTP sink, the provider posts the
event, the message and the contact's consent change once; bad signatures and other companies' emails
change nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
from django.urls import reverse

from channels_app.models import EmailDelivery
from channels_app.tests.conftest import account_create
from crm.models import Channel, Contact
from crm.tests.factories import ContactFactory
from engage.messaging.services import message_send
from engage.models import Message

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

SIGNING_KEY = "key-mailgun-signing-123"


@pytest.fixture
def sent(company, smtp_server):
    account = account_create(
        company=company, channel=Channel.EMAIL,
        settings={"host": "127.0.0.1", "port": smtp_server.port, "from_email": "Alpha <hello@alpha.test>"},
        secrets={"webhook_signing_key": SIGNING_KEY},
    )
    contact = ContactFactory(company=company, name="Rahim", email="gone@example.net", is_email_consented=True)
    message = message_send(
        job=None, company=company, contact=contact, lead=None, channel=Channel.EMAIL, body="আবার বুক করুন",
        agent_type="smartengage", message_type="reminder", subject="রিমাইন্ডার",
    )
    return {"account": account, "message": message, "contact": contact, "delivery": EmailDelivery.objects.get()}


def signature(key: str = SIGNING_KEY, timestamp: int | None = None) -> dict:
    timestamp = int(time.time()) if timestamp is None else timestamp
    token = "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0"
    return {"timestamp": str(timestamp), "token": token,
            "signature": hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()}


def failed_event(delivery, *, severity: str = "permanent", event: str = "failed") -> dict:
    # Mailgun's documented "failed" event, in substance.
    return {
        "event": event, "severity": severity, "reason": "bounce", "recipient": "gone@example.net",
        "timestamp": time.time(), "id": "CPgfbmQMTCKtHW6uIWtuVe",
        "message": {"headers": {"to": "gone@example.net", "message-id": delivery.provider_message_id,
                                "from": "hello@alpha.test", "subject": "রিমাইন্ডার"}, "size": 111},
        "delivery-status": {"code": 550, "enhanced-code": "5.1.1", "attempt-no": 1,
                            "message": "5.1.1 The email account that you tried to reach does not exist.",
                            "description": "", "mx-host": "mx.example.net"},
    }


def post(client, account, body):
    url = reverse("channels:email-events", kwargs={"token": account.webhook_token})
    return client.post(url, json.dumps(body), content_type="application/json")


def test_a_permanent_failure_fails_the_message_and_revokes_consent_once(client, sent):
    body = {"signature": signature(), "event-data": failed_event(sent["delivery"])}

    first, replay = post(client, sent["account"], body), post(client, sent["account"], body)

    assert (first.status_code, first.json()["status"]) == (200, "hard")
    assert (replay.status_code, replay.json()["status"]) == (200, "duplicate")
    message = Message.objects.get(pk=sent["message"].pk)
    assert message.status == Message.Status.FAILED and "5.1.1" in message.error
    assert Contact.objects.get(pk=sent["contact"].pk).is_email_consented is False
    delivery = EmailDelivery.objects.get()
    assert (delivery.bounce_type, delivery.bounced_at is not None) == ("hard", True)


def test_a_temporary_failure_is_only_noted(client, sent):
    response = post(client, sent["account"], {"signature": signature(),
                                              "event-data": failed_event(sent["delivery"], severity="temporary")})

    assert response.json()["status"] == "soft"
    assert Message.objects.get(pk=sent["message"].pk).status == Message.Status.SENT
    assert Contact.objects.get(pk=sent["contact"].pk).is_email_consented is True


def test_a_complaint_revokes_consent_and_shows_on_the_message(client, sent):
    response = post(client, sent["account"], {"signature": signature(),
                                              "event-data": failed_event(sent["delivery"], event="complained")})

    assert response.json()["status"] == "complaint"
    assert Contact.objects.get(pk=sent["contact"].pk).is_email_consented is False
    assert "complaint" in Message.objects.get(pk=sent["message"].pk).metadata


def test_other_events_are_acknowledged_and_ignored(client, sent):
    response = post(client, sent["account"], {"signature": signature(),
                                              "event-data": failed_event(sent["delivery"], event="delivered")})

    assert (response.status_code, response.json()["status"]) == (200, "ignored")
    assert EmailDelivery.objects.get().bounced_at is None


@pytest.mark.parametrize("bad", ["wrong-key", "stale", "missing"])
def test_a_bad_or_stale_signature_is_403_and_changes_nothing(client, sent, bad):
    sig = {"wrong-key": signature("other-key"), "stale": signature(timestamp=int(time.time()) - 3 * 24 * 3600),
           "missing": None}[bad]

    response = post(client, sent["account"], {"signature": sig, "event-data": failed_event(sent["delivery"])})

    assert response.status_code == 403 and response.json()["error"]["code"] == "permission_denied"
    assert EmailDelivery.objects.get().bounced_at is None
    assert Contact.objects.get(pk=sent["contact"].pk).is_email_consented is True


def test_another_companys_email_is_not_matched_through_this_accounts_webhook(client, sent, other_company):
    other_account = account_create(company=other_company, channel=Channel.EMAIL, settings={},
                                   secrets={"webhook_signing_key": "other-key"})

    response = post(client, other_account, {"signature": signature("other-key"),
                                            "event-data": failed_event(sent["delivery"])})

    assert (response.status_code, response.json()["status"]) == (200, "unmatched")
    assert Contact.objects.get(pk=sent["contact"].pk).is_email_consented is True


@pytest.mark.parametrize("body", [b"[1]", b'{"signature": {}}', b"not json"])
def test_malformed_bodies_are_4xx(client, sent, body):
    url = reverse("channels:email-events", kwargs={"token": sent["account"].webhook_token})

    response = client.post(url, body, content_type="application/json")

    assert response.status_code in (400, 403)
    assert EmailDelivery.objects.get().bounced_at is None
