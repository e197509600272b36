"""Every attachment of a message kept: a Twilio MMS with NumMedia=3 (MediaUrl0..2, MediaContentType0..2)
and WhatsApp media, one MessageAttachment each, each fetched by the message's `media_download` ledger
job from the local fake Twilio / Graph API within the size and type limits, and each shown on the lead's
page (photo, audio player, file link) and streamed only to the lead's staff."""

from urllib.parse import urlencode

import pytest
from django.http import QueryDict
from django.urls import reverse
from twilio.request_validator import RequestValidator

from channels_app.tests.conftest import TWILIO_AUTH_TOKEN, WHATSAPP_APP_SECRET, account_create, meta_post
from channels_app.tests.test_provider_payloads import META_NUMBER, TWILIO_SID, twilio_fixture, whatsapp_fixture
from crm.models import Channel
from engage.conversations.context import conversation_messages
from engage.ledger.services import job_execute
from engage.models import Job, Message, MessageAttachment
from shokti.testing.media_samples import ogg_opus_bytes, png_bytes

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
MMS_SID = "MM7f0e8ae6ade43cb3c0ce4525424e404f"


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture
def sms_account(company, fake_twilio):
    return account_create(
        company=company, channel=Channel.SMS, settings={"account_sid": TWILIO_SID, "from_number": "+15005550006"},
        secrets={"auth_token": TWILIO_AUTH_TOKEN},
    )


def media_path(index: int) -> str:
    return f"/2010-04-01/Accounts/{TWILIO_SID}/Messages/{MMS_SID}/Media/ME{index:032d}"


def mms_params(fake_twilio, types: list[str]) -> list[tuple[str, str]]:
    """Twilio's documented MMS request, with NumMedia=len(types) and a MediaUrlN/MediaContentTypeN each."""
    params = [(key, value) for key, value in twilio_fixture("inbound_mms", TWILIO=fake_twilio.url)
              if not key.startswith(("MediaUrl", "MediaContentType", "NumMedia"))]
    params.append(("NumMedia", str(len(types))))
    for index, content_type in enumerate(types):
        params += [(f"MediaContentType{index}", content_type), (f"MediaUrl{index}", fake_twilio.url + media_path(index))]
    return params


def mms_post(client, account, params) -> Message:
    url = reverse("channels:sms-inbound", kwargs={"token": account.webhook_token})
    body = urlencode(params)
    signature = RequestValidator(TWILIO_AUTH_TOKEN).compute_signature(f"http://testserver{url}", QueryDict(body))
    response = client.post(url, body, content_type="application/x-www-form-urlencoded; charset=utf-8",
                           HTTP_X_TWILIO_SIGNATURE=signature)
    assert response.status_code == 200
    return Message.objects.get(direction="inbound")


def run_media_job(message) -> str:
    job = Job.objects.get(task_name="media_download", payload__message_id=message.pk)
    return job_execute(job_id=job.pk)


def test_an_mms_with_three_attachments_keeps_and_stores_each(client, sms_account, fake_twilio, media_root):
    # given Twilio holds a photo, a voice note and a PDF
    for index, (content_type, content) in enumerate(
        [("image/png", png_bytes()), ("audio/ogg", ogg_opus_bytes()), ("application/pdf", PDF)]
    ):
        fake_twilio.media[media_path(index)] = (content_type, content)

    message = mms_post(client, sms_account, mms_params(fake_twilio, ["image/png", "audio/ogg", "application/pdf"]))
    outcome = run_media_job(message)

    # then
    assert outcome == "completed"
    attachments = list(message.attachments.order_by("position"))
    assert [(a.position, a.media_type, a.status, a.content_type) for a in attachments] == [
        (0, "image", "stored", "image/png"), (1, "audio", "stored", "audio/ogg"), (2, "document", "stored", "application/pdf"),
    ]
    assert [(media_root / a.file.name).read_bytes() for a in attachments] == [png_bytes(), ogg_opus_bytes(), PDF]
    assert len({a.file.name for a in attachments}) == 3
    assert all(a.company_id == message.company_id for a in attachments)
    # each fetched once, with the account's basic auth
    gets = [request for request in fake_twilio.requests if request.get("method") == "GET"]
    assert sorted(request["path"] for request in gets) == [media_path(i) for i in range(3)]
    assert all(request["authorization"].startswith("Basic ") for request in gets)
    # the message mirrors its first attachment; the AI hears of all three
    message.refresh_from_db()
    assert (message.body, message.media_type, message.media_status, message.media_file.name) == (
        "is this the leak?", "image", "stored", attachments[0].file.name,
    )
    [turn] = conversation_messages(lead=message.lead)
    assert "3 files: a photo, an audio file and a document" in turn["content"]
    assert "is this the leak?" in turn["content"]


def test_limits_apply_to_each_attachment_on_its_own(client, sms_account, fake_twilio, media_root, settings):
    settings.INBOUND_MEDIA_MAX_BYTES = 4096
    fake_twilio.media[media_path(0)] = ("image/png", png_bytes())
    fake_twilio.media[media_path(1)] = ("image/png", png_bytes(width=400, height=400, rgb=(1, 2, 3)) + b"\0" * 5000)
    fake_twilio.media[media_path(2)] = ("application/x-msdownload", b"MZ\x90\x00")

    message = mms_post(client, sms_account, mms_params(fake_twilio, ["image/png", "image/png", "application/x-msdownload"]))
    run_media_job(message)

    first, too_large, wrong_type = message.attachments.order_by("position")
    assert (first.status, too_large.status, wrong_type.status) == ("stored", "rejected", "rejected")
    assert "at most 4,096" in too_large.error and not too_large.file
    assert "not accepted" in wrong_type.error and not wrong_type.file
    message.refresh_from_db()
    assert message.media_status == "stored"


def test_a_provider_outage_retries_only_what_is_missing(client, sms_account, fake_twilio, media_root):
    for index in range(2):
        fake_twilio.media[media_path(index)] = ("image/png", png_bytes())
    message = mms_post(client, sms_account, mms_params(fake_twilio, ["image/png", "image/png"]))
    job = Job.objects.get(task_name="media_download", payload__message_id=message.pk)

    # the first download passes, the second meets an outage: the job fails and retries
    fake_twilio.failures.clear()
    original_answer = type(fake_twilio).answer
    calls = {"n": 0}

    def flaky(self, method, path, headers, body):
        if method == "GET" and path == media_path(1) and calls["n"] == 0:
            calls["n"] += 1
            return 503, {"message": "down"}
        return original_answer(self, method, path, headers, body)

    type(fake_twilio).answer = flaky
    try:
        first_run = job_execute(job_id=job.pk)
        Job.objects.filter(pk=job.pk).update(next_run_at=job.next_run_at)
        second_run = job_execute(job_id=job.pk)
    finally:
        type(fake_twilio).answer = original_answer

    assert (first_run, second_run) == ("failed", "completed")
    assert list(message.attachments.order_by("position").values_list("status", flat=True)) == ["stored", "stored"]
    gets = [request["path"] for request in fake_twilio.requests if request.get("method") == "GET"]
    assert gets.count(media_path(0)) == 1  # stored on the first run, not fetched again


def test_whatsapp_media_is_one_attachment(client, company, fake_graph_api, media_root):
    account = account_create(
        company=company, channel=Channel.WHATSAPP_CLOUD, settings={"phone_number_id": META_NUMBER},
        secrets={"access_token": "EAAG-token", "app_secret": WHATSAPP_APP_SECRET},
    )
    fake_graph_api.media["1003383421387257"] = ("audio/ogg", ogg_opus_bytes())
    url = reverse("channels:whatsapp-cloud-webhook", kwargs={"token": account.webhook_token})
    assert meta_post(client, url, whatsapp_fixture("audio_voice")).status_code == 200
    message = Message.objects.get(direction="inbound")

    run_media_job(message)

    [attachment] = message.attachments.all()
    assert (attachment.media_type, attachment.status, attachment.content_type) == ("voice", "stored", "audio/ogg")
    assert attachment.source["id"] == "1003383421387257"
    message.refresh_from_db()
    assert (message.media_status, message.media_file.name) == ("stored", attachment.file.name)


def test_each_attachment_is_shown_and_streamed_to_the_leads_staff_only(
    client, sms_account, fake_twilio, media_root, staff_user, other_staff_user
):
    for index, (content_type, content) in enumerate(
        [("image/png", png_bytes()), ("audio/ogg", ogg_opus_bytes()), ("application/pdf", PDF)]
    ):
        fake_twilio.media[media_path(index)] = (content_type, content)
    message = mms_post(client, sms_account, mms_params(fake_twilio, ["image/png", "audio/ogg", "application/pdf"]))
    run_media_job(message)
    urls = [reverse("admin:crm_lead_attachment", args=[message.lead_id, message.pk, i]) for i in range(3)]

    anonymous = client.get(urls[1])
    client.force_login(other_staff_user)
    other = client.get(urls[1])
    client.force_login(staff_user)
    page = client.get(reverse("admin:crm_lead_change", args=[message.lead_id])).content.decode()
    served = [client.get(url) for url in urls]
    missing = client.get(reverse("admin:crm_lead_attachment", args=[message.lead_id, message.pk, 3]))

    assert anonymous.status_code == 302 and other.status_code == 404 and missing.status_code == 404
    assert f'<img src="{urls[0]}"' in page
    assert f'<audio controls preload="metadata" src="{urls[1]}"' in page
    assert f'<a href="{urls[2]}" class="media-file">' in page
    assert [response["Content-Type"] for response in served] == ["image/png", "audio/ogg", "application/pdf"]
    assert b"".join(served[1].streaming_content) == ogg_opus_bytes()
    assert served[2]["Content-Disposition"].startswith("attachment")


def test_attachments_are_tenant_scoped(client, sms_account, fake_twilio, media_root, other_company):
    message = mms_post(client, sms_account, mms_params(fake_twilio, ["image/png"]))

    assert MessageAttachment.objects.filter(company=other_company).count() == 0
    assert MessageAttachment.objects.get(message=message).company_id == sms_account.company_id


def test_the_message_admin_lists_its_attachments(client, sms_account, fake_twilio, media_root, staff_user):
    message = mms_post(client, sms_account, mms_params(fake_twilio, ["image/png", "audio/ogg"]))
    client.force_login(staff_user)

    page = client.get(reverse("admin:engage_message_change", args=[message.pk]))

    assert page.status_code == 200
    html = page.content.decode()
    assert "Message attachments" in html and html.count("Downloading") >= 2
    assert sms_account.settings["from_number"] in html  # the number written to
