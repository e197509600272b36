"""Voice against a local fake TTS server: the approved text as speech, stored and linked from the message; any
failure sends the text alone and records why."""

import datetime as dt
import json

import pytest
from rest_framework.test import APIClient

from coaching.models import CoachingSettings
from coaching.punctuality import punctuality_backfill
from coaching.runs import coaching_run_trigger
from coaching.tests.helpers import booking_of, dhaka, worker_of
from coaching.voice import VoiceError, tts_provider
from engage.models import Job
from engage.tests.helpers import run_job
from shokti.testing.fake_tts import AUDIO, FakeTTS

AS_OF = dt.date(2026, 11, 30)
TEXT = ("করিম ভাই, আপনার কাজের জন্য ধন্যবাদ। গত দুই সপ্তাহে তিনটি বুকিংয়ে একটু দেরি হয়েছে। "
        "দেরি হলে আগে গ্রাহককে জানালে সুবিধা হয়। কী কারণে দেরি হয়েছিল, জানাবেন?")


@pytest.fixture
def fake_tts(settings, tmp_path):
    server = FakeTTS()
    server.start()
    settings.COACHNOVA_TTS_PROVIDER, settings.COACHNOVA_TTS_BASE_URL = "openai", server.url
    settings.COACHNOVA_TTS_API_KEY, settings.MEDIA_ROOT = "tts-key", str(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def voice_run(company, monkeypatch, fake_openai):
    monkeypatch.setattr("coaching.runs.quiet_hours_end", lambda **kwargs: None)
    fake_openai.reply(TEXT)
    worker = worker_of(company, phone="+8801911000951", name="Karim Mia")
    for day in (20, 21, 22):
        booking_of(worker, dhaka(2026, 11, day), late_minutes=30)
    punctuality_backfill(company=company, as_of=AS_OF)
    CoachingSettings.objects.filter(company=company).update(holdout_percent=0, is_voice_enabled=True,
                                                            channel="console")

    def run():
        coaching_run = coaching_run_trigger(company=company, as_of=AS_OF)
        assert run_job(Job.objects.get(task_name="coachnova_run", payload={"run_id": coaching_run.pk})) == "completed"
        return coaching_run.recipients.get(worker=worker)

    return run


@pytest.mark.django_db
def test_the_text_goes_with_a_link_to_its_speech(fake_tts, voice_run):
    row = voice_run()

    [(path, headers, body)] = fake_tts.requests
    assert path == "/v1/audio/speech" and headers["Authorization"] == "Bearer tts-key" and json.loads(body)["input"] == TEXT
    assert row.status == "coached" and row.voice_status == "sent (link)" and row.audio.name
    assert row.message.body.startswith(TEXT) and "/coaching/audio/" in row.message.body
    audio = APIClient().get("/coaching/audio/" + row.audio.name.rsplit("/", 1)[-1])
    assert audio.status_code == 200 and b"".join(audio.streaming_content) == AUDIO
    assert APIClient().get("/coaching/audio/not-a-real-name-at-all.mp3").status_code == 404


@pytest.mark.django_db
def test_a_failing_tts_sends_the_text_alone_and_says_why(fake_tts, voice_run):
    fake_tts.fail(status=503)

    row = voice_run()

    assert row.status == "coached" and row.message.body == TEXT and not row.audio
    assert row.voice_status == "failed, text sent alone: openai: HTTP 503"


@pytest.mark.django_db
def test_no_provider_configured_sends_the_text_alone(settings, voice_run):
    settings.COACHNOVA_TTS_PROVIDER = ""
    row = voice_run()
    assert row.message.body == TEXT and row.voice_status.startswith("failed, text sent alone: no TTS provider")


def test_azure_and_elevenlabs_speak_to_the_same_fake(settings):
    server = FakeTTS()
    server.start()
    try:
        settings.COACHNOVA_TTS_BASE_URL, settings.COACHNOVA_TTS_API_KEY = server.url, "k"
        for provider, path in (("azure", "/cognitiveservices/v1"), ("elevenlabs", "/v1/text-to-speech/v1")):
            settings.COACHNOVA_TTS_PROVIDER, settings.COACHNOVA_TTS_VOICE = provider, "v1"
            assert tts_provider().synthesize("আপনাকে ধন্যবাদ") == AUDIO
            assert server.requests[-1][0] == path
        assert b"xml:lang='bn-BD'" in server.requests[0][2]
        server.stop()
        with pytest.raises(VoiceError):
            tts_provider().synthesize("x")
    finally:
        server.failure_status = None


# --- WhatsApp: the speech as a native audio message ---------------------------------------------------------------

WA_PHONE_NUMBER_ID = "1098765"


@pytest.fixture
def whatsapp_voice_run(company, monkeypatch, fake_openai, fake_graph_api, settings):
    from channels_app.tests.conftest import account_create
    from engage.messaging.services import channel_settings_cache_clear

    settings.SITE_URL = "https://shokti.example"
    channel_settings_cache_clear()
    account_create(company=company, channel="whatsapp_cloud", settings={"phone_number_id": WA_PHONE_NUMBER_ID},
                   secrets={"access_token": "EAAG-token", "app_secret": "s", "verify_token": "v"})
    monkeypatch.setattr("coaching.runs.quiet_hours_end", lambda **kwargs: None)
    fake_openai.reply(TEXT)
    worker = worker_of(company, phone="+8801911000952", name="Karim Mia", is_whatsapp_consented=True)
    for day in (20, 21, 22):
        booking_of(worker, dhaka(2026, 11, day), late_minutes=30)
    punctuality_backfill(company=company, as_of=AS_OF)
    CoachingSettings.objects.filter(company=company).update(holdout_percent=0, is_voice_enabled=True,
                                                            channel="whatsapp_cloud")

    def run():
        coaching_run = coaching_run_trigger(company=company, as_of=AS_OF)
        assert run_job(Job.objects.get(task_name="coachnova_run", payload={"run_id": coaching_run.pk})) == "completed"
        row = coaching_run.recipients.get(worker=worker)
        assert run_job(row.message.job) == "completed"
        row.refresh_from_db()
        row.message.refresh_from_db()
        return row

    yield run
    channel_settings_cache_clear()


@pytest.mark.django_db
def test_on_whatsapp_the_speech_goes_as_an_audio_message(fake_tts, fake_graph_api, whatsapp_voice_run):
    row = whatsapp_voice_run()

    # then: the text, then Meta's documented audio message by link (no caption: audio has none)
    text, audio = fake_graph_api.requests
    assert text["path"].endswith(f"/{WA_PHONE_NUMBER_ID}/messages")
    assert text["json"]["type"] == "text" and text["json"]["text"]["body"] == TEXT
    link = "https://shokti.example/coaching/audio/" + row.audio.name.rsplit("/", 1)[-1]
    assert audio["json"] == {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "8801911000952",
                             "type": "audio", "audio": {"link": link}}
    assert audio["authorization"] == "Bearer EAAG-token" and audio["path"] == text["path"]
    message = row.message
    assert row.voice_status == "sent (audio message)" and message.body == TEXT and "/coaching/audio/" not in message.body
    assert (message.status, message.media_type, message.media_url, message.media_content_type) == (
        "sent", "audio", link, "audio/mpeg")
    assert message.metadata["media_provider_message_id"].startswith("wamid.") and "media_error" not in message.metadata
    served = APIClient().get(link.removeprefix("https://shokti.example"))
    assert served.status_code == 200 and served["Content-Type"] == "audio/mpeg"
    assert b"".join(served.streaming_content) == AUDIO


@pytest.mark.django_db
def test_an_audio_message_whatsapp_refuses_leaves_the_text_sent_and_says_why(fake_tts, fake_graph_api,
                                                                            whatsapp_voice_run):
    fake_graph_api.reject["audio"] = (400, {"error": {"message": "(#131053) Media upload error", "code": 131053}})

    row = whatsapp_voice_run()

    assert [request["json"]["type"] for request in fake_graph_api.requests] == ["text", "audio"]
    message = row.message
    assert row.status == "coached" and message.status == "sent" and message.body == TEXT
    assert message.metadata["media_error"] == "Graph API 400 (131053): (#131053) Media upload error"
    assert "media_provider_message_id" not in message.metadata


@pytest.mark.django_db
def test_a_failing_tts_on_whatsapp_sends_the_text_alone(fake_tts, fake_graph_api, whatsapp_voice_run):
    fake_tts.fail(status=500)

    row = whatsapp_voice_run()

    [text] = fake_graph_api.requests
    assert text["json"]["type"] == "text" and text["json"]["text"]["body"] == TEXT
    assert row.voice_status == "failed, text sent alone: openai: HTTP 500" and not row.audio
    assert row.message.media_url == "" and row.message.metadata == {}
