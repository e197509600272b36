"""Voice: the approved coaching text as speech, through a small provider interface.

Providers (COACHNOVA_TTS_PROVIDER): "openai" (an OpenAI-compatible `POST /v1/audio/speech`), "azure" (Azure
Speech's REST `cognitiveservices/v1` with SSML, a `bn-BD` voice such as bn-BD-NabanitaNeural), "elevenlabs"
(`POST /v1/text-to-speech/{voice_id}`, model eleven_v3). The audio is stored (default storage,
coaching/audio/<random>.mp3) and sent by link (`/coaching/audio/<name>`): as a native audio message on a channel
that sends audio (WhatsApp Cloud, after the text), in the text elsewhere (SMS). Any failure (no provider, HTTP error, timeout, empty audio) sends the text alone and records why
on the worker's row (`voice_status`)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from xml.sax.saxutils import escape

import requests
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

AUDIO_DIR = "coaching/audio"
AUDIO_CONTENT_TYPE = "audio/mpeg"  # mp3: one of the audio types WhatsApp takes (aac, amr, mpeg, mp4, ogg/opus)


class VoiceError(Exception):
    """Speech could not be made; the text goes alone."""


@dataclass(frozen=True)
class TTSConfig:
    provider: str
    base_url: str
    api_key: str
    voice: str
    model: str
    timeout: float


def tts_config() -> TTSConfig:
    return TTSConfig(
        provider=settings.COACHNOVA_TTS_PROVIDER, base_url=settings.COACHNOVA_TTS_BASE_URL.rstrip("/"),
        api_key=settings.COACHNOVA_TTS_API_KEY, voice=settings.COACHNOVA_TTS_VOICE, model=settings.COACHNOVA_TTS_MODEL,
        timeout=settings.COACHNOVA_TTS_TIMEOUT_SECONDS,
    )


class TTSProvider:
    name = ""

    def __init__(self, config: TTSConfig) -> None:
        self.config = config

    def request(self, text: str) -> tuple[str, dict, dict | None, bytes | None]:  # url, headers, json, body
        raise NotImplementedError

    def synthesize(self, text: str) -> bytes:
        url, headers, body_json, body = self.request(text)
        try:
            response = requests.post(url, headers=headers, json=body_json, data=body, timeout=self.config.timeout)
        except requests.RequestException as error:
            raise VoiceError(f"{self.name}: {type(error).__name__}") from None
        if response.status_code != 200:
            raise VoiceError(f"{self.name}: HTTP {response.status_code}")
        if not response.content or not response.headers.get("Content-Type", "").startswith("audio/"):
            raise VoiceError(f"{self.name}: no audio in the answer")
        return response.content


class OpenAISpeech(TTSProvider):
    name = "openai"

    def request(self, text):
        return (f"{self.config.base_url or 'https://api.openai.com'}/v1/audio/speech",
                {"Authorization": f"Bearer {self.config.api_key}"},
                {"model": self.config.model or "gpt-4o-mini-tts", "voice": self.config.voice or "alloy",
                 "input": text, "response_format": "mp3"}, None)


class AzureSpeech(TTSProvider):
    name = "azure"

    def request(self, text):
        voice = self.config.voice or "bn-BD-NabanitaNeural"
        ssml = (f"<speak version='1.0' xml:lang='bn-BD'><voice xml:lang='bn-BD' name='{escape(voice)}'>"
                f"{escape(text)}</voice></speak>")
        return (f"{self.config.base_url}/cognitiveservices/v1",
                {"Ocp-Apim-Subscription-Key": self.config.api_key, "Content-Type": "application/ssml+xml",
                 "X-Microsoft-OutputFormat": "audio-24khz-48kbitrate-mono-mp3", "User-Agent": "shokti"},
                None, ssml.encode())


class ElevenLabs(TTSProvider):
    name = "elevenlabs"

    def request(self, text):
        return (f"{self.config.base_url or 'https://api.elevenlabs.io'}/v1/text-to-speech/{self.config.voice}",
                {"xi-api-key": self.config.api_key, "Accept": "audio/mpeg"},
                {"text": text, "model_id": self.config.model or "eleven_v3", "language_code": "bn"}, None)


PROVIDERS = {provider.name: provider for provider in (OpenAISpeech, AzureSpeech, ElevenLabs)}


def tts_provider() -> TTSProvider:
    config = tts_config()
    if config.provider not in PROVIDERS:
        raise VoiceError("no TTS provider configured (COACHNOVA_TTS_PROVIDER)")
    return PROVIDERS[config.provider](config)


def speech_store(*, text: str) -> str:
    """Synthesize `text`, store it, return the stored name (VoiceError on any failure)."""
    audio = tts_provider().synthesize(text)
    return default_storage.save(f"{AUDIO_DIR}/{secrets.token_urlsafe(18)}.mp3", ContentFile(audio))


def audio_url(name: str) -> str:
    return f"{settings.SITE_URL.rstrip('/')}/coaching/audio/{name.rsplit('/', 1)[-1]}"
