"""`media_download` (60): fetch the photo, voice note or file a customer sent, and store it.

Queued by `engage.services.rich_inbound.inbound_details_store` with the inbound message. The fetch
(provider API, credentials, size and type limits) is channels_app's (`channels_app.media`); this
handler stores the bytes with Django's storage API (INBOUND_MEDIA_STORAGE, the file system under
MEDIA_ROOT by default) and records them on the message. A file outside the limits is recorded as
refused (not retried); a provider outage raises, so the ledger retries with backoff.
"""

from __future__ import annotations

import mimetypes
import uuid
from typing import Any

from django.core.files.base import ContentFile
from django.utils import timezone

from engage.handlers import JobPermanentError, job_handler

EXTENSIONS = {"audio/ogg": ".ogg", "image/jpeg": ".jpg", "audio/mpeg": ".mp3", "audio/mp4": ".m4a", "text/plain": ".txt"}


def media_file_name(*, company_id: int, message_id: int, content_type: str) -> str:
    """An unguessable name under inbound/<company>/<yyyy>/<mm>/."""
    extension = EXTENSIONS.get(content_type) or mimetypes.guess_extension(content_type) or ".bin"
    now = timezone.now()
    return f"inbound/{company_id}/{now:%Y}/{now:%m}/{message_id}-{uuid.uuid4().hex}{extension}"


def message_media_store(*, company_id: int, message_id: int) -> dict[str, Any]:
    """Fetch and store the media of one inbound message of the company (idempotent: stored once)."""
    from channels_app.media import MediaRejected, media_fetch
    from engage.models import Message
    from engage.models.messages import inbound_media_storage

    message = Message.objects.filter(pk=message_id, company_id=company_id).only(
        "id", "company_id", "media_status", "media_file", "metadata"
    ).first()
    if message is None:
        raise JobPermanentError(f"No message {message_id} in company {company_id}.")
    if message.media_status == Message.MediaStatus.STORED:
        return {"message_id": message_id, "status": "stored", "name": message.media_file.name}
    media = (message.metadata or {}).get("media")
    if not media:
        raise JobPermanentError("The message names no media to fetch.")
    try:
        fetched = media_fetch(company_id=company_id, media=media)
    except MediaRejected as error:
        metadata = {**(message.metadata or {}), "media_error": str(error)}
        Message.objects.filter(pk=message_id, media_status=Message.MediaStatus.PENDING).update(
            media_status=Message.MediaStatus.REJECTED, metadata=metadata, updated_at=timezone.now()
        )
        return {"message_id": message_id, "status": "rejected", "reason": str(error)}
    storage = inbound_media_storage()
    name = storage.save(
        media_file_name(company_id=company_id, message_id=message_id, content_type=fetched.content_type),
        ContentFile(fetched.content),
    )
    metadata = {**(message.metadata or {}), "sha256_verified": fetched.sha256_verified}
    stored = Message.objects.filter(pk=message_id).exclude(media_status=Message.MediaStatus.STORED).update(
        media_file=name, media_status=Message.MediaStatus.STORED, media_content_type=fetched.content_type,
        media_size=len(fetched.content), metadata=metadata, updated_at=timezone.now(),
    )
    if not stored:  # another run stored it first: keep one copy
        storage.delete(name)
        return {"message_id": message_id, "status": "stored"}
    return {"message_id": message_id, "status": "stored", "name": name, "size": len(fetched.content)}


@job_handler("media_download", priority=60)
def media_download(job) -> dict[str, Any]:
    return message_media_store(company_id=job.company_id, message_id=job.payload["message_id"])
