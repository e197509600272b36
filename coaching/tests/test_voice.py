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
