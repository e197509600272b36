import json

import pytest
from django.urls import reverse

from channels_app.models import ChannelAccount, ProviderCallback, WhatsAppWebSession
from channels_app.selectors import channel_settings_for
from channels_app.tests.conftest import TWILIO_AUTH_TOKEN, account_create
from crm.models import Channel

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:channels_app_channelaccount_changelist"


def change_url(account):
    return reverse("admin:channels_app_channelaccount_change", args=[account.pk])


def form_data(account, **overrides):
    data = {
        "company": account.company_id,
        "channel": account.channel,
        "name": account.name,
        "is_active": "on" if account.is_active else "",
        "settings": json.dumps(account.settings),
        "secret_password": "",
        "secret_auth_token": "",
        "secret_access_token": "",
        "secret_app_secret": "",
        "secret_verify_token": "",
    }
    if account.channel in ("sms", "whatsapp_cloud"):
        # The numbers inline's management form (no numbers added).
        data.update({"numbers-TOTAL_FORMS": "0", "numbers-INITIAL_FORMS": "0"})
    data.update(overrides)
    return {key: value for key, value in data.items() if value != "" or key.startswith("secret_")}


@pytest.fixture
def other_sms_account(other_company):
    return account_create(
        company=other_company, channel=Channel.SMS, name="Beta SMS",
        settings={"account_sid": "AC" + "2" * 32}, secrets={"auth_token": "beta-token"},
    )


def test_staff_see_only_their_companys_accounts(client, staff_user, other_staff_user, sms_account, other_sms_account):
    # alice
    client.force_login(staff_user)
    alice_page = client.get(reverse(CHANGELIST))
    alice_foreign = client.get(change_url(other_sms_account))
    # bob
    client.force_login(other_staff_user)
    bob_page = client.get(reverse(CHANGELIST))
    # charlie, anonymous
    client.logout()
    anonymous = client.get(reverse(CHANGELIST))

    assert alice_page.status_code == 200
    assert list(alice_page.context["cl"].result_list) == [sms_account]
    assert alice_foreign.status_code in (302, 404)
    assert list(bob_page.context["cl"].result_list) == [other_sms_account]
    assert anonymous.status_code == 302
    assert "/admin/login/" in anonymous["Location"]


def test_secrets_are_write_only_in_the_form(client, staff_user, sms_account, settings):
    settings.SITE_URL = "https://shokti.example"
    client.force_login(staff_user)

    page = client.get(change_url(sms_account))

    assert page.status_code == 200
    content = page.content.decode()
    assert TWILIO_AUTH_TOKEN not in content
    assert 'type="password" name="secret_auth_token"' in content
    assert "Set; leave blank to keep it." in content
    assert f"https://shokti.example/channels/sms/{sms_account.webhook_token}/status" in content
    assert f"https://shokti.example/channels/sms/{sms_account.webhook_token}/inbound" in content


def test_blank_secret_keeps_the_stored_one_and_a_new_one_replaces_it(client, staff_user, sms_account):
    client.force_login(staff_user)

    kept = client.post(change_url(sms_account), form_data(sms_account, name="Alpha SMS"))
    sms_account.refresh_from_db()
    after_blank = (sms_account.name, sms_account.secrets)
    replaced = client.post(change_url(sms_account), form_data(sms_account, secret_auth_token="new-token-1"))
    sms_account.refresh_from_db()

    assert (kept.status_code, replaced.status_code) == (302, 302)
    assert after_blank == ("Alpha SMS", {"auth_token": TWILIO_AUTH_TOKEN})
    assert sms_account.secrets == {"auth_token": "new-token-1"}
    assert "new-token-1" not in sms_account.secrets_encrypted
    assert channel_settings_for(company_id=sms_account.company_id, channel=Channel.SMS)["auth_token"] == "new-token-1"


def test_a_secret_in_the_plain_settings_is_refused(client, staff_user, sms_account):
    client.force_login(staff_user)

    response = client.post(
        change_url(sms_account), form_data(sms_account, settings=json.dumps({"auth_token": "oops"}))
    )

    assert response.status_code == 200
    assert "Put auth_token in the secret fields" in response.content.decode()
    sms_account.refresh_from_db()
    assert "auth_token" not in sms_account.settings


def test_a_second_active_account_for_the_same_channel_is_refused(client, staff_user, sms_account):
    client.force_login(staff_user)
    new = ChannelAccount(company=sms_account.company, channel=Channel.SMS, name="Second", settings={})

    response = client.post(reverse("admin:channels_app_channelaccount_add"), form_data(new))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert ChannelAccount.objects.count() == 1


def test_staff_cannot_create_an_account_for_another_company(client, staff_user, other_company):
    client.force_login(staff_user)
    new = ChannelAccount(company=other_company, channel=Channel.EMAIL, name="Sneaky", settings={})

    response = client.post(reverse("admin:channels_app_channelaccount_add"), form_data(new))

    assert response.status_code == 200
    assert ChannelAccount.objects.count() == 0


def test_rotate_webhook_token_action(client, staff_user, sms_account):
    client.force_login(staff_user)
    old_token = sms_account.webhook_token

    response = client.post(
        reverse(CHANGELIST), {"action": "rotate_webhook_token", "_selected_action": [sms_account.pk]}, follow=True
    )

    sms_account.refresh_from_db()
    assert response.status_code == 200
    assert sms_account.webhook_token != old_token
    assert "Rotated the webhook token of 1 account(s)" in response.content.decode()


def test_callback_log_is_scoped_and_read_only(client, staff_user, other_staff_user, sms_account, other_sms_account):
    ProviderCallback.objects.create(company=sms_account.company, account=sms_account, channel="sms",
                                    provider_message_id="SM-A", status="delivered")
    ProviderCallback.objects.create(company=other_sms_account.company, account=other_sms_account, channel="sms",
                                    provider_message_id="SM-B", status="delivered")
    client.force_login(staff_user)

    page = client.get(reverse("admin:channels_app_providercallback_changelist"))

    assert [row.provider_message_id for row in page.context["cl"].result_list] == ["SM-A"]
    assert client.get(reverse("admin:channels_app_providercallback_add")).status_code == 403


def test_whatsapp_web_session_shows_the_qr_screenshot_to_ops(client, staff_user, company):
    account = account_create(company=company, channel=Channel.WHATSAPP_WEB, name="Alpha phone")
    session = WhatsAppWebSession.objects.create(
        account=account, state=WhatsAppWebSession.State.LOGIN_REQUIRED, qr_screenshot_png=b"\x89PNG fake"
    )
    client.force_login(staff_user)

    session_page = client.get(reverse("admin:channels_app_whatsappwebsession_change", args=[session.pk]))
    account_page = client.get(change_url(account))

    assert 'src="data:image/png;base64,iVBORyBmYWtl"' in session_page.content.decode()
    assert "QR login required" in account_page.content.decode()
    assert 'src="data:image/png;base64,' in account_page.content.decode()
