"""A lead's conversation in a real browser (Debian's Chromium): the photo and the voice note the customer sent
on WhatsApp are shown and playable, fetched by the ledger job from the local fake Graph API."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from playwright.sync_api import expect

from channels_app.tests.conftest import WHATSAPP_APP_SECRET, account_create, meta_post
from channels_app.tests.test_provider_payloads import META_NUMBER, whatsapp_fixture
from crm.models import Channel
from crm.permissions import CRM_GRANTS, OPERATIONS, grant
from engage.ledger.services import job_execute
from engage.models import Job, Message
from shokti.testing.media_samples import ogg_opus_bytes, png_bytes

PASSWORD = "pass-word-123"  # crm.tests.factories.UserFactory's


def lead_open(page, live_server, user, lead_id: int) -> None:
    """Log `user` in to the console and land on the lead's page."""
    lead_url = reverse("admin:crm_lead_change", args=[lead_id])
    page.set_default_timeout(15_000)
    page.goto(f"{live_server.url}{reverse('admin:login')}?next={lead_url}")
    page.fill("#id_username", user.email)
    page.fill("#id_password", PASSWORD)
    page.click("#login-form [type=submit]")
    page.wait_for_url(re.compile(re.escape(lead_url)))


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_photo_and_a_voice_note_show_in_the_leads_conversation(
    page, live_server, client, company, staff_user, fake_graph_api, settings, tmp_path
):
    # given: the customer sent a photo with a caption and a voice note; the ledger fetched both
    # a transactional test's flush empties the groups (the migrations' grants are gone): grant again
    grant(OPERATIONS, "crm", CRM_GRANTS[OPERATIONS]["crm"])
    staff_user.groups.add(Group.objects.get(name=OPERATIONS))
    settings.MEDIA_ROOT = str(tmp_path / "media")
    account = account_create(
        company=company, channel=Channel.WHATSAPP_CLOUD, settings={"phone_number_id": META_NUMBER},
        secrets={"access_token": "EAAG-token", "app_secret": WHATSAPP_APP_SECRET},
    )
    fake_graph_api.media["1003383421387256"] = ("image/png", png_bytes(width=64, height=48))
    fake_graph_api.media["1003383421387257"] = ("audio/ogg; codecs=opus", ogg_opus_bytes(seconds=2))
    url = reverse("channels:whatsapp-cloud-webhook", kwargs={"token": account.webhook_token})
    for name in ("image", "audio_voice"):
        assert meta_post(client, url, whatsapp_fixture(name)).status_code == 200
    for job in Job.objects.filter(task_name="media_download"):
        assert job_execute(job_id=job.pk) == "completed"
    photo = Message.objects.get(media_type="image")
    voice = Message.objects.get(media_type="voice")
    assert (photo.media_status, voice.media_status) == ("stored", "stored")

    # when: operations staff open the lead
    lead_open(page, live_server, staff_user, photo.lead_id)

    # then: the photo is drawn, with its caption
    image = page.locator(f"#message-{photo.pk} .media-image img")
    expect(image).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    assert image.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [64, 48]
    expect(page.locator(f"#message-{photo.pk} .body")).to_have_text("is this the leak?")
    # and the voice note is a player the browser can decode (two seconds of Opus)
    audio = page.locator(f"#message-{voice.pk} .media-voice audio")
    expect(audio).to_be_visible()
    page.wait_for_function("a => a.readyState >= 1 && a.duration > 0", arg=audio.element_handle())
    duration = audio.evaluate("a => a.duration")
    assert 1.9 <= duration <= 2.1
    assert audio.evaluate("a => a.error") is None


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_every_attachment_of_an_mms_shows_in_the_leads_conversation(
    page, live_server, client, company, staff_user, fake_twilio, settings, tmp_path
):
    from channels_app.tests.conftest import TWILIO_AUTH_TOKEN
    from channels_app.tests.test_provider_payloads import TWILIO_SID
    from engage.tests.test_attachments import media_path, mms_params, mms_post

    # given: one MMS carrying a photo and a voice note; the ledger fetched both
    grant(OPERATIONS, "crm", CRM_GRANTS[OPERATIONS]["crm"])
    staff_user.groups.add(Group.objects.get(name=OPERATIONS))
    settings.MEDIA_ROOT = str(tmp_path / "media")
    account = account_create(
        company=company, channel=Channel.SMS, settings={"account_sid": TWILIO_SID, "from_number": "+15005550006"},
        secrets={"auth_token": TWILIO_AUTH_TOKEN},
    )
    fake_twilio.media[media_path(0)] = ("image/png", png_bytes(width=64, height=48))
    fake_twilio.media[media_path(1)] = ("audio/ogg", ogg_opus_bytes(seconds=2))
    message = mms_post(client, account, mms_params(fake_twilio, ["image/png", "audio/ogg"]))
    assert job_execute(job_id=Job.objects.get(task_name="media_download").pk) == "completed"

    # when: operations staff open the lead
    lead_open(page, live_server, staff_user, message.lead_id)

    # then: both attachments of the one message are shown, the photo drawn and the voice note playable
    image = page.locator(f"#message-{message.pk} .attachment.media-image img")
    expect(image).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    assert image.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [64, 48]
    audio = page.locator(f"#message-{message.pk} .attachment.media-audio audio")
    expect(audio).to_be_visible()
    page.wait_for_function("a => a.readyState >= 1 && a.duration > 0", arg=audio.element_handle())
    assert 1.9 <= audio.evaluate("a => a.duration") <= 2.1
    expect(page.locator(f"#message-{message.pk} .body")).to_have_text("is this the leak?")
