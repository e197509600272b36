import hashlib
import hmac
import json
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from channels_app import signals
from channels_app.models import ChannelAccount
from crm.models import Channel
from crm.tests.factories import ContactFactory

TWILIO_AUTH_TOKEN = "twilio-auth-token-123"
WHATSAPP_APP_SECRET = "meta-app-secret-456"
WHATSAPP_VERIFY_TOKEN = "verify-me-789"


class SignalLog:
    """What the channels emitted, with engage's receivers out of the way (they have their own tests)."""

    def __init__(self):
        self.statuses: list[dict] = []
        self.inbound: list[dict] = []

    def on_status(self, sender, **kwargs):
        kwargs.pop("signal", None)
        self.statuses.append(kwargs)

    def on_inbound(self, sender, **kwargs):
        kwargs.pop("signal", None)
        self.inbound.append(kwargs)


@pytest.fixture
def signal_log():
    log = SignalLog()
    saved = {}
    for signal, receiver in (
        (signals.delivery_status_changed, log.on_status),
        (signals.inbound_message_received, log.on_inbound),
    ):
        with signal.lock:
            saved[signal] = signal.receivers
            signal.receivers = []
            signal.sender_receivers_cache.clear()
        signal.connect(receiver, weak=False)
    yield log
    for signal, receivers in saved.items():
        with signal.lock:
            signal.receivers = receivers
            signal.sender_receivers_cache.clear()


def account_create(*, company, channel, settings=None, secrets=None, name=None) -> ChannelAccount:
    account = ChannelAccount(company=company, channel=channel, name=name or f"{channel} account", settings=settings or {})
    account.secrets_set(secrets or {})
    account.save()
    return account


@pytest.fixture
def contact(company):
    return ContactFactory(company=company, name="Rahim Uddin", phone="+8801711000001", email="rahim@example.test")


@pytest.fixture
def email_account(company, smtp_server):
    return account_create(
        company=company,
        channel=Channel.EMAIL,
        settings={"host": "127.0.0.1", "port": smtp_server.port, "from_email": "Alpha <hello@alpha.test>"},
        secrets={},
    )


@pytest.fixture
def sms_account(company):
    return account_create(
        company=company,
        channel=Channel.SMS,
        settings={"account_sid": "AC" + "1" * 32, "from_number": "+15005550006"},
        secrets={"auth_token": TWILIO_AUTH_TOKEN},
    )


@pytest.fixture
def whatsapp_account(company):
    return account_create(
        company=company,
        channel=Channel.WHATSAPP_CLOUD,
        settings={"phone_number_id": "1098765", "default_template_name": "follow_up", "default_template_language": "bn"},
        secrets={"access_token": "EAAG-token", "app_secret": WHATSAPP_APP_SECRET, "verify_token": WHATSAPP_VERIFY_TOKEN},
    )


def twilio_post(client, url: str, params: dict, *, auth_token: str = TWILIO_AUTH_TOKEN, signature: str | None = None):
    """POST form params like Twilio does, signed for the URL the test server sees."""
    full_url = f"http://testserver{url}"
    headers = {}
    if signature is None:
        signature = RequestValidator(auth_token).compute_signature(full_url, params)
    if signature:
        headers["HTTP_X_TWILIO_SIGNATURE"] = signature
    return client.post(url, urlencode(params), content_type="application/x-www-form-urlencoded", **headers)


def meta_post(client, url: str, payload, *, app_secret: str = WHATSAPP_APP_SECRET, signature: str | None = None):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {}
    if signature is None:
        signature = "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    if signature:
        headers["HTTP_X_HUB_SIGNATURE_256"] = signature
    return client.post(url, body, content_type="application/json", **headers)
