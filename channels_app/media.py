"""Fetching what customers send (photos, voice notes, documents) from the provider that holds it.

Plain functions `engage` calls from its ledger job (engage/conversations/media.py); channels_app stores
nothing here. WhatsApp Cloud: GET the Graph API media endpoint with the account's token, which
answers a short-lived URL on Meta's media host, then GET that URL with the same token. Twilio: GET
the MediaUrl of the inbound MMS with HTTP basic auth (AccountSid, auth token).

Every download is limited before it is trusted: INBOUND_MEDIA_MAX_BYTES (the declared size and the
bytes actually read), INBOUND_MEDIA_ALLOWED_TYPES (the media type, without its parameters), and
the first bytes must look like the type they claim for the common image, audio and document types.
A file outside the limits raises `MediaRejected` (permanent: a retry gets the same file); a
provider outage raises a transient `ChannelError`, so the job retries.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings

from channels_app.adapters.whatsapp_cloud import graph_url
from channels_app.base import ChannelError
from channels_app.models import ChannelAccount
from channels_app.payloads import media_type_base

logger = logging.getLogger(__name__)

CHUNK = 64 * 1024
# Leading bytes of the types people send most; a file claiming one of these must start so.
SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "audio/ogg": (b"OggS",),
    "video/ogg": (b"OggS",),
    "application/pdf": (b"%PDF-",),
    "audio/amr": (b"#!AMR",),
}


class MediaRejected(ChannelError):
    """The file is too large, of a type we do not take, or not what it claims to be."""

    def __init__(self, message: str):
        super().__init__(message, permanent=True)


@dataclass(frozen=True)
class FetchedMedia:
    content: bytes
    content_type: str
    filename: str = ""
    sha256_verified: bool | None = None


def media_max_bytes() -> int:
    return int(getattr(settings, "INBOUND_MEDIA_MAX_BYTES", 16 * 1024 * 1024))


def media_allowed_types() -> frozenset[str]:
    return frozenset(media_type_base(value) for value in getattr(settings, "INBOUND_MEDIA_ALLOWED_TYPES", ()))


def media_type_check(content_type: str, content: bytes) -> str:
    """The base media type if allowed and the bytes look like it; MediaRejected otherwise."""
    base = media_type_base(content_type)
    if base not in media_allowed_types():
        raise MediaRejected(f"Media type {base or 'unknown'!r} is not accepted.")
    signatures = SIGNATURES.get(base)
    if base == "image/webp":
        if not (content[:4] == b"RIFF" and content[8:12] == b"WEBP"):
            raise MediaRejected("The file is not the image/webp it claims to be.")
    elif base in ("video/mp4", "audio/mp4", "video/3gpp") and content[4:8] != b"ftyp":
        raise MediaRejected(f"The file is not the {base} it claims to be.")
    elif signatures and not content.startswith(signatures):
        raise MediaRejected(f"The file is not the {base} it claims to be.")
    return base


def _timeout() -> float:
    return float(getattr(settings, "CHANNELS_HTTP_TIMEOUT_SECONDS", 10))


def _download(url: str, *, headers: dict[str, str] | None = None, auth: Any = None) -> tuple[bytes, str]:
    """The body (at most the size limit) and its Content-Type; MediaRejected past the limit."""
    limit = media_max_bytes()
    try:
        with requests.get(url, headers=headers or {}, auth=auth, timeout=_timeout(), stream=True) as response:
            if response.status_code in (404, 410):
                raise MediaRejected(f"The provider no longer has this media (HTTP {response.status_code}).")
            if response.status_code >= 400:
                raise ChannelError(
                    f"Media download answered HTTP {response.status_code}.",
                    permanent=response.status_code in (401, 403),
                )
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > limit:
                raise MediaRejected(f"The file is {int(declared):,} bytes; at most {limit:,} are accepted.")
            chunks, size = [], 0
            for chunk in response.iter_content(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise MediaRejected(f"The file is over {limit:,} bytes; at most {limit:,} are accepted.")
                chunks.append(chunk)
            return b"".join(chunks), response.headers.get("Content-Type", "")
    except requests.RequestException as error:
        raise ChannelError(f"Media download failed: {error.__class__.__name__}", permanent=False) from None


def _sha256_matches(expected: str, content: bytes) -> bool | None:
    if not expected:
        return None
    digest = hashlib.sha256(content).digest()
    return expected in (digest.hex(), base64.b64encode(digest).decode(), base64.urlsafe_b64encode(digest).decode())


def _host_allowed(url: str, hosts: set[str]) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("https", "http") and (parts.hostname or "") in hosts


def _whatsapp_fetch(account: ChannelAccount, media: dict[str, Any]) -> FetchedMedia:
    secrets = account.secrets
    token = secrets.get("access_token", "")
    if not token:
        raise ChannelError("The WhatsApp account has no access token.", permanent=True)
    headers = {"Authorization": f"Bearer {token}"}
    try:
        response = requests.get(
            graph_url(str(media["id"]), version=account.settings.get("api_version")), headers=headers, timeout=_timeout()
        )
        described = response.json() if response.content else {}
    except requests.RequestException as error:
        raise ChannelError(f"Graph API unavailable: {error.__class__.__name__}", permanent=False) from None
    except ValueError:
        described = {}
    if response.status_code >= 500 or response.status_code == 429:
        raise ChannelError(f"Graph API answered {response.status_code}.", permanent=False)
    if response.status_code >= 400 or not isinstance(described, dict) or not described.get("url"):
        raise MediaRejected(f"The Graph API has no such media (HTTP {response.status_code}).")
    declared_size = described.get("file_size")
    if isinstance(declared_size, int | str) and str(declared_size).isdigit() and int(declared_size) > media_max_bytes():
        raise MediaRejected(f"The file is {int(declared_size):,} bytes; at most {media_max_bytes():,} are accepted.")
    hosts = {urlsplit(settings.WHATSAPP_GRAPH_API_BASE_URL).hostname or "", *getattr(settings, "WHATSAPP_MEDIA_HOSTS", ())}
    if not _host_allowed(described["url"], hosts):
        raise MediaRejected("The Graph API pointed outside Meta's media hosts.")
    content, content_type = _download(described["url"], headers=headers)
    content_type = content_type or described.get("mime_type") or media.get("mime_type", "")
    base = media_type_check(content_type, content)
    return FetchedMedia(
        content=content, content_type=base, filename=media.get("filename", ""),
        sha256_verified=_sha256_matches(str(described.get("sha256") or media.get("sha256") or ""), content),
    )


def _twilio_fetch(account: ChannelAccount, media: dict[str, Any]) -> FetchedMedia:
    account_sid, auth_token = account.settings.get("account_sid", ""), account.secrets.get("auth_token", "")
    if not account_sid or not auth_token:
        raise ChannelError("The SMS account has no Twilio credentials.", permanent=True)
    url = str(media.get("url") or "")
    prefix = f"{settings.TWILIO_API_BASE_URL.rstrip('/')}/2010-04-01/Accounts/{account_sid}/"
    if not url.startswith(prefix):
        raise MediaRejected("The media URL is not this Twilio account's.")
    content, content_type = _download(url, auth=(account_sid, auth_token))
    base = media_type_check(content_type or media.get("mime_type", ""), content)
    return FetchedMedia(content=content, content_type=base)


def media_fetch(*, company_id: int, media: dict[str, Any]) -> FetchedMedia:
    """Download the media an inbound message names (its `media` from the inbound signal), within the limits."""
    account = ChannelAccount.objects.filter(pk=media.get("account_id"), company_id=company_id).first()
    if account is None:
        raise ChannelError("The channel account of this media is gone.", permanent=True)
    if media.get("provider") == "whatsapp_cloud" and media.get("id"):
        return _whatsapp_fetch(account, media)
    if media.get("provider") == "sms" and media.get("url"):
        return _twilio_fetch(account, media)
    raise ChannelError("Nothing to fetch: the message names no provider media.", permanent=True)
