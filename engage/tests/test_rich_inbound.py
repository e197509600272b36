"""Rich inbound messages end to end: the providers' documented payloads through the real webhook and engage's
receivers, media fetched by the `media_download` ledger job from local fakes of Meta's and Twilio's APIs."""

import datetime as dt
import json
from urllib.parse import urlencode

import pytest
from django.contrib.contenttypes.models import ContentType
from django.http import QueryDict
from django.urls import reverse
from twilio.request_validator import RequestValidator

from channels_app.tests.conftest import TWILIO_AUTH_TOKEN, WHATSAPP_APP_SECRET, account_create, meta_post
from channels_app.tests.test_provider_payloads import META_NUMBER, TWILIO_SID, twilio_fixture, whatsapp_fixture
from crm.models import Channel, Contact, Event, Lead
from crm.tests.factories import ContactFactory
from engage.conversations.context import conversation_messages
from engage.conversations.rich_inbound import messages_with_button
from engage.ledger.services import job_execute
from engage.models import Job, Message
from shokti.testing.media_samples import ogg_opus_bytes, png_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture
def meta_account(company, fake_graph_api):
    return account_create(
        company=company, channel=Channel.WHATSAPP_CLOUD, settings={"phone_number_id": META_NUMBER},
        secrets={"access_token": "EAAG-token", "app_secret": WHATSAPP_APP_SECRET},
    )


def post(client, account, name, payload=None):
    url = reverse("channels:whatsapp-cloud-webhook", kwargs={"token": account.webhook_token})
    response = meta_post(client, url, payload or whatsapp_fixture(name))
    assert response.status_code == 200
    return response


def media_job(message) -> Job:
    return Job.objects.get(task_name="media_download", payload__message_id=message.pk)


def test_a_photo_with_its_caption_becomes_a_turn_the_ai_reads_and_its_file_is_stored(
    client, meta_account, fake_graph_api, media_root
):
    # given Meta holds the photo
    fake_graph_api.media["1003383421387256"] = ("image/png", png_bytes())

    # when the documented image webhook arrives and the ledger runs its job
    post(client, meta_account, "image")
    message = Message.objects.get(direction="inbound")
    outcome = job_execute(job_id=media_job(message).pk)

    # then
    message.refresh_from_db()
    assert outcome == "completed"
    assert (message.body, message.media_type, message.media_status) == ("is this the leak?", "image", "stored")
    assert (message.media_content_type, message.media_size) == ("image/png", len(png_bytes()))
    assert message.media_file.name.startswith(f"inbound/{meta_account.company_id}/")
    assert (media_root / message.media_file.name).read_bytes() == png_bytes()
    assert message.sent_at == dt.datetime.fromtimestamp(1749416383, tz=dt.UTC)
    graph_paths = [request["path"] for request in fake_graph_api.requests]
    assert graph_paths == ["/v21.0/1003383421387256", "/download/1003383421387256"]
    assert all(request["authorization"] == "Bearer EAAG-token" for request in fake_graph_api.requests)
    assert conversation_messages(lead=message.lead) == [
        {"role": "user", "content": "The customer sent a photo: 'is this the leak?'"}
    ]


def test_a_voice_note_is_stored_as_audio_and_described_to_the_ai(client, meta_account, fake_graph_api, media_root):
    fake_graph_api.media["1003383421387257"] = ("audio/ogg; codecs=opus", ogg_opus_bytes())

    post(client, meta_account, "audio_voice")
    message = Message.objects.get(direction="inbound")
    job_execute(job_id=media_job(message).pk)

    message.refresh_from_db()
    assert (message.body, message.media_type, message.media_status, message.media_content_type) == (
        "[voice note]", "voice", "stored", "audio/ogg"
    )
    assert message.media_file.name.endswith(".ogg")
    assert conversation_messages(lead=message.lead)[0]["content"] == "The customer sent a voice note (not transcribed)."


def test_a_file_over_the_size_limit_is_refused_and_not_retried(client, meta_account, fake_graph_api, media_root, settings):
    settings.INBOUND_MEDIA_MAX_BYTES = 100
    fake_graph_api.media["1003383421387256"] = ("image/png", png_bytes(width=200, height=200) + b"\x00" * 500)

    post(client, meta_account, "image")
    message = Message.objects.get(direction="inbound")
    job = media_job(message)
    outcome = job_execute(job_id=job.pk)

    message.refresh_from_db()
    job.refresh_from_db()
    assert (outcome, job.status) == ("completed", Job.Status.COMPLETED)
    assert (message.media_status, message.media_file.name) == ("rejected", "")
    assert "at most 100 are accepted" in message.metadata["media_error"]
    # The declared size stopped it: the file itself was never downloaded.
    assert [request["path"] for request in fake_graph_api.requests] == ["/v21.0/1003383421387256"]
    assert not media_root.exists() or not any(media_root.rglob("*.*"))


@pytest.mark.parametrize(
    ("content_type", "content", "reason"),
    [
        ("text/html", b"<html><script>alert(1)</script></html>", "Media type 'text/html' is not accepted."),
        ("image/png", b"<html>not a png</html>", "The file is not the image/png it claims to be."),
        ("image/svg+xml", b"<svg xmlns='http://www.w3.org/2000/svg'/>", "Media type 'image/svg+xml' is not accepted."),
    ],
    ids=["html", "lying-png", "svg"],
)
def test_a_wrong_content_type_is_refused(client, meta_account, fake_graph_api, media_root, content_type, content, reason):
    fake_graph_api.media["1003383421387256"] = (content_type, content)

    post(client, meta_account, "image")
    message = Message.objects.get(direction="inbound")
    job_execute(job_id=media_job(message).pk)

    message.refresh_from_db()
    assert message.media_status == "rejected"
    assert message.metadata["media_error"] == reason
    assert not message.media_file


def test_a_graph_api_outage_is_retried_by_the_ledger(client, meta_account, fake_graph_api, media_root):
    fake_graph_api.media["1003383421387256"] = ("image/png", png_bytes())
    fake_graph_api.fail(status=503)

    post(client, meta_account, "image")
    message = Message.objects.get(direction="inbound")
    job = media_job(message)
    first = job_execute(job_id=job.pk)
    Job.objects.filter(pk=job.pk).update(next_run_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    second = job_execute(job_id=job.pk)

    message.refresh_from_db()
    assert (first, second, message.media_status) == ("failed", "completed", "stored")


def test_a_twilio_mms_photo_is_fetched_with_basic_auth(client, company, fake_twilio, media_root):
    account = account_create(
        company=company, channel=Channel.SMS, settings={"account_sid": TWILIO_SID, "from_number": "+15005550006"},
        secrets={"auth_token": TWILIO_AUTH_TOKEN},
    )
    params = twilio_fixture("inbound_mms", TWILIO=fake_twilio.url)
    media_path = dict(params)["MediaUrl0"][len(fake_twilio.url):]
    fake_twilio.media[media_path] = ("image/png", png_bytes())
    url = reverse("channels:sms-inbound", kwargs={"token": account.webhook_token})
    body = urlencode(params)
    signature = RequestValidator(TWILIO_AUTH_TOKEN).compute_signature(f"http://testserver{url}", QueryDict(body))

    response = client.post(url, body, content_type="application/x-www-form-urlencoded; charset=utf-8",
                           HTTP_X_TWILIO_SIGNATURE=signature)
    message = Message.objects.get(direction="inbound")
    job_execute(job_id=media_job(message).pk)

    message.refresh_from_db()
    assert response.status_code == 200
    assert (message.body, message.media_type, message.media_status) == ("is this the leak?", "image", "stored")
    [request] = [request for request in fake_twilio.requests if request.get("method") == "GET"]
    assert request["authorization"].startswith("Basic ")


def test_a_media_url_outside_the_twilio_account_is_refused(client, company, fake_twilio, media_root):
    account = account_create(
        company=company, channel=Channel.SMS, settings={"account_sid": TWILIO_SID, "from_number": "+15005550006"},
        secrets={"auth_token": TWILIO_AUTH_TOKEN},
    )
    contact = ContactFactory(company=company, phone="+8801711000009")
    message = Message.objects.create(
        company=company, contact=contact, direction="inbound", channel="sms", body="x", status="received",
        media_type="image", media_status="pending",
        metadata={"media": {"provider": "sms", "url": "http://169.254.169.254/latest/meta-data", "account_id": account.pk}},
    )
    from engage.conversations.media import message_media_store

    outcome = message_media_store(company_id=company.pk, message_id=message.pk)

    assert outcome["status"] == "rejected"
    assert fake_twilio.requests == []


def test_another_companys_job_cannot_fetch_with_this_companys_account(company, other_company, meta_account, media_root):
    contact = ContactFactory(company=other_company, phone="+8801711000009")
    message = Message.objects.create(
        company=other_company, contact=contact, direction="inbound", channel="whatsapp_cloud", body="x",
        status="received", media_type="image", media_status="pending",
        metadata={"media": {"provider": "whatsapp_cloud", "id": "1003383421387256", "account_id": meta_account.pk}},
    )
    from engage.conversations.media import message_media_store
    from engage.ledger.registry import JobPermanentError

    with pytest.raises(Exception) as raised:
        message_media_store(company_id=other_company.pk, message_id=message.pk)
    assert getattr(raised.value, "permanent", False) is True
    with pytest.raises(JobPermanentError):
        message_media_store(company_id=company.pk, message_id=message.pk)


# --- buttons, context, reactions, number changes, ads --------------------------------------


@pytest.fixture
def our_message(company):
    contact = ContactFactory(company=company, phone="+16505551234", name="Sheena Nelson")
    return Message.objects.create(
        company=company, contact=contact, direction="outbound", channel="whatsapp_cloud", body="Shall we come at 10?",
        status="sent", provider_message_id="wamid.OUR-REPLY-1",
    )


@pytest.mark.parametrize(
    ("name", "payload", "body"),
    [
        ("interactive_button_reply", "confirm-booking", "Yes, book it"),
        ("interactive_list_reply", "slot-tomorrow-10", "Tomorrow 10:00"),
        ("button", "UNSUBSCRIBE_FROM_PROMOS", "Unsubscribe from Promos"),
    ],
)
def test_button_and_list_replies_keep_their_stable_id(client, meta_account, company, name, payload, body):
    post(client, meta_account, name)

    message = Message.objects.get(direction="inbound")
    assert (message.body, message.button_payload) == (body, payload)
    assert list(messages_with_button(company=company, button_payload=payload)) == [message]
    assert conversation_messages(lead=message.lead)[0]["content"] == (
        f"{body} (the customer tapped this button; its id is {payload})"
    )


def test_a_reply_is_linked_to_the_message_it_answers(client, meta_account, our_message):
    post(client, meta_account, "context_reply")

    reply = Message.objects.get(direction="inbound")
    assert reply.reply_to == our_message
    assert reply.metadata["context_message_id"] == "wamid.OUR-REPLY-1"


def test_a_reaction_is_recorded_on_the_message_it_reacts_to(client, meta_account, our_message):
    post(client, meta_account, "reaction")

    our_message.refresh_from_db()
    assert Message.objects.filter(direction="inbound").count() == 0
    [reaction] = our_message.metadata["reactions"]
    assert (reaction["emoji"], reaction["from"]) == ("\U0001F44D", "+16505551234")
    assert Event.objects.filter(type="message.reaction", target_id=str(our_message.pk)).count() == 1


def test_a_change_of_number_moves_the_contact_to_the_new_number(client, meta_account, our_message):
    post(client, meta_account, "system")

    contact = Contact.objects.get(pk=our_message.contact_id)
    assert contact.phone == "+16505550000"
    assert Message.objects.filter(direction="inbound").count() == 0
    event = Event.objects.get(type="contact.phone_changed")
    assert (event.payload["old_phone"], event.payload["new_phone"]) == ("+16505551234", "+16505550000")


def test_a_lead_from_a_click_to_whatsapp_ad_records_the_ad(client, meta_account, company):
    post(client, meta_account, "referral_ad")

    lead = Lead.objects.get(company=company)
    assert lead.source == "ad"
    assert (lead.ad_source_id, lead.ad_headline, lead.ad_url) == (
        "120226305854810726", "AC service, 20% off this week", "https://fb.me/3cr4Wqqkv"
    )
    assert lead.ad_click_id.startswith("ARAkLkA8rmlFeiCktEJQ")
    created = Event.objects.get(type="lead.created", target_type=ContentType.objects.get_for_model(Lead))
    assert created.payload["source"] == "ad"
    assert created.payload["ad"]["source_id"] == "120226305854810726"
    assert created.payload["ad"]["ctwa_clid"] == lead.ad_click_id
    message = Message.objects.get(direction="inbound")
    assert message.metadata["referral"]["headline"] == "AC service, 20% off this week"


def test_an_ad_click_from_someone_with_an_open_lead_keeps_that_leads_source(client, meta_account, company):
    post(client, meta_account, "text")
    post(client, meta_account, "referral_ad")

    lead = Lead.objects.get(company=company)
    assert (lead.source, lead.ad_source_id) == ("whatsapp_cloud", "")
    assert Message.objects.filter(direction="inbound").count() == 2


def test_leads_are_counted_by_source(client, meta_account, company):
    from crm.selectors import lead_counts_by_source

    post(client, meta_account, "referral_ad")
    Lead.objects.filter(company=company).update(status=Lead.Status.WON)
    post(client, meta_account, "text")

    assert lead_counts_by_source(company=company) == {"ad": 1, "whatsapp_cloud": 1}


# --- statuses in full ----------------------------------------------------------------------


def test_statuses_keep_pricing_the_full_error_and_played(client, meta_account, company):
    contact = ContactFactory(company=company, phone="+16505551234")
    for wamid in ("wamid.OUR-REPLY-1", "wamid.OUR-VOICE-1", "wamid.OUR-FAILED-1"):
        Message.objects.create(
            company=company, contact=contact, direction="outbound", channel="whatsapp_cloud", body="hi",
            status="sent", provider_message_id=wamid,
        )

    for name in ("status_delivered", "status_played", "status_failed"):
        post(client, meta_account, name)

    delivered = Message.objects.get(provider_message_id="wamid.OUR-REPLY-1")
    played = Message.objects.get(provider_message_id="wamid.OUR-VOICE-1")
    failed = Message.objects.get(provider_message_id="wamid.OUR-FAILED-1")
    assert delivered.status == "delivered"
    assert delivered.delivered_at == dt.datetime.fromtimestamp(1749416400, tz=dt.UTC)
    assert delivered.metadata["pricing"]["category"] == "utility"
    assert played.played_at == dt.datetime.fromtimestamp(1749416400, tz=dt.UTC)
    assert Event.objects.filter(type="message.played", target_id=str(played.pk)).count() == 1
    assert failed.status == "failed"
    assert "the message failed to be delivered" in failed.error
    assert failed.metadata["errors"][0]["href"].endswith("/support/error-codes")
    assert json.dumps(failed.metadata)  # plain JSON


# --- the media in the operations console ----------------------------------------------------


def test_media_is_streamed_to_the_leads_staff_only(client, meta_account, fake_graph_api, media_root, staff_user,
                                                    other_staff_user):
    fake_graph_api.media["1003383421387256"] = ("image/png", png_bytes())
    post(client, meta_account, "image")
    message = Message.objects.get(direction="inbound")
    job_execute(job_id=media_job(message).pk)
    url = reverse("admin:crm_lead_media", args=[message.lead_id, message.pk])
    page_url = reverse("admin:crm_lead_change", args=[message.lead_id])

    anonymous = client.get(url)
    client.force_login(other_staff_user)
    other = client.get(url)
    client.force_login(staff_user)
    allowed = client.get(url)
    page = client.get(page_url)

    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    assert other.status_code == 404
    assert allowed.status_code == 200
    assert (allowed["Content-Type"], allowed["X-Content-Type-Options"]) == ("image/png", "nosniff")
    assert b"".join(allowed.streaming_content) == png_bytes()
    assert f'src="{url}"'.encode() in page.content
    assert "is this the leak?" in page.content.decode()


def test_another_leads_message_id_is_not_served(client, meta_account, fake_graph_api, media_root, staff_user, company):
    fake_graph_api.media["1003383421387256"] = ("image/png", png_bytes())
    post(client, meta_account, "image")
    message = Message.objects.get(direction="inbound")
    job_execute(job_id=media_job(message).pk)
    other_lead = Lead.objects.create(
        company=company, contact=ContactFactory(company=company), pipeline=message.lead.pipeline,
        stage=message.lead.stage,
    )
    client.force_login(staff_user)

    response = client.get(reverse("admin:crm_lead_media", args=[other_lead.pk, message.pk]))

    assert response.status_code == 404


def test_the_lead_list_filters_leads_from_ads(client, meta_account, staff_user, company):
    post(client, meta_account, "referral_ad")
    ContactFactory(company=company)
    client.force_login(staff_user)

    response = client.get(reverse("admin:crm_lead_changelist"), {"came_from": "ad"})

    assert response.status_code == 200
    assert [lead.source for lead in response.context["cl"].result_list] == ["ad"]
