"""Customers' media: fetch the photo, voice note or file a customer sent, and store it (the `media_download` job, 60).

Queued by `engage.conversations.rich_inbound.inbound_details_store` with the inbound message. The fetch
(provider API, credentials, size and type limits) is channels_app's (`channels_app.media`); this
handler stores the bytes with Django's storage API (INBOUND_MEDIA_STORAGE, the file system under
MEDIA_ROOT by default) and records them on the message. A file outside the limits is recorded as
refused (not retried); a provider outage raises, so the ledger retries with backoff.

Media is never served from a public URL: the lead admin's `media/<message id>/` view
(`lead_media_response`) checks the lead is in the user's companies and the message is the lead's.
"""

from __future__ import annotations

import mimetypes
import uuid
from typing import Any

from django.core.files.base import ContentFile
from django.http import FileResponse, Http404
from django.utils import timezone

from channels_app.media import MediaRejected, media_fetch
from crm.models import Lead
from engage.ledger.registry import JobPermanentError
from engage.messaging.models import Message, MessageAttachment, inbound_media_storage

EXTENSIONS = {"audio/ogg": ".ogg", "image/jpeg": ".jpg", "audio/mpeg": ".mp3", "audio/mp4": ".m4a", "text/plain": ".txt"}


def media_file_name(*, company_id: int, message_id: int, content_type: str, position: int = 0) -> str:
    """An unguessable name under inbound/<company>/<yyyy>/<mm>/."""
    extension = EXTENSIONS.get(content_type) or mimetypes.guess_extension(content_type) or ".bin"
    now = timezone.now()
    suffix = f"-{position}" if position else ""
    return f"inbound/{company_id}/{now:%Y}/{now:%m}/{message_id}{suffix}-{uuid.uuid4().hex}{extension}"


def _attachment_store(*, company_id: int, attachment: MessageAttachment) -> bool | None:
    """Fetch and store one attachment: True stored, False refused (size, type), None done before.

    A provider outage raises (the job retries; the attachments stored so far stay stored)."""
    if attachment.status != Message.MediaStatus.PENDING:
        return None
    pending = MessageAttachment.objects.filter(pk=attachment.pk, status=Message.MediaStatus.PENDING)
    try:
        fetched = media_fetch(company_id=company_id, media=attachment.source)
    except MediaRejected as error:
        pending.update(status=Message.MediaStatus.REJECTED, error=str(error)[:500], updated_at=timezone.now())
        return False
    storage = inbound_media_storage()
    name = storage.save(
        media_file_name(
            company_id=company_id, message_id=attachment.message_id, content_type=fetched.content_type,
            position=attachment.position,
        ),
        ContentFile(fetched.content),
    )
    source = {**attachment.source, "sha256_verified": fetched.sha256_verified}
    if not pending.update(
        file=name, status=Message.MediaStatus.STORED, content_type=fetched.content_type, size=len(fetched.content),
        source=source, updated_at=timezone.now(),
    ):
        storage.delete(name)  # another run stored it first: keep one copy
        return None
    return True


def _attachments_store(*, company_id: int, message: Message, attachments: list[MessageAttachment]) -> dict[str, Any]:
    """Every attachment of the message in turn, then the first one mirrored onto the message."""
    outcomes = [_attachment_store(company_id=company_id, attachment=attachment) for attachment in attachments]
    first = MessageAttachment.objects.get(pk=attachments[0].pk)
    metadata = dict(message.metadata or {})
    if first.status == Message.MediaStatus.REJECTED:
        metadata["media_error"] = first.error
    elif first.status == Message.MediaStatus.STORED:
        metadata["sha256_verified"] = first.source.get("sha256_verified")
    Message.objects.filter(pk=message.pk).update(
        media_status=first.status, media_file=first.file.name or "", media_content_type=first.content_type or
        message.media_content_type, media_size=first.size, metadata=metadata, updated_at=timezone.now(),
    )
    statuses = list(MessageAttachment.objects.filter(message_id=message.pk).order_by("position").values_list(
        "status", flat=True
    ))
    return {
        "message_id": message.pk, "status": first.status, "attachments": statuses,
        "stored_now": sum(1 for outcome in outcomes if outcome), "refused_now": outcomes.count(False),
    }


def message_media_store(*, company_id: int, message_id: int) -> dict[str, Any]:
    """Fetch and store the media of one inbound message of the company (idempotent: stored once).

    A message with attachments (every message captured since they exist) has each fetched and kept
    on its own row, within the limits each; an older one its single `media` on the message itself.
    """

    message = Message.objects.filter(pk=message_id, company_id=company_id).only(
        "id", "company_id", "media_status", "media_file", "metadata", "media_content_type"
    ).first()
    if message is None:
        raise JobPermanentError(f"No message {message_id} in company {company_id}.")
    attachments = list(MessageAttachment.objects.filter(message_id=message_id, company_id=company_id).order_by("position"))
    if attachments:
        return _attachments_store(company_id=company_id, message=message, attachments=attachments)
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


# Shown in the page (img, audio, video); anything else downloads.
INLINE_PREFIXES = ("image/", "audio/", "video/")


def _file_response(*, stored, content_type: str, filename: str) -> FileResponse:
    try:
        handle = stored.storage.open(stored.name, "rb")
    except FileNotFoundError:
        raise Http404("The media file is missing from storage.") from None
    content_type = content_type or "application/octet-stream"
    is_inline = content_type.startswith(INLINE_PREFIXES)
    response = FileResponse(handle, content_type=content_type, as_attachment=not is_inline, filename=filename)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, max-age=3600"
    return response


def lead_attachment_response(*, lead: Lead, message_id: int, position: int) -> FileResponse:
    """The stored attachment `position` of one of the lead's messages, or 404."""
    attachment = (
        MessageAttachment.objects.filter(
            message_id=message_id, position=position, company_id=lead.company_id, message__lead=lead,
            status=Message.MediaStatus.STORED,
        )
        .only("id", "file", "content_type", "source")
        .first()
    )
    if attachment is None or not attachment.file:
        raise Http404("No stored attachment for this message.")
    filename = attachment.source.get("filename") or attachment.file.name.rsplit("/", 1)[-1]
    return _file_response(stored=attachment.file, content_type=attachment.content_type, filename=filename)


def lead_media_response(*, lead: Lead, message_id: int) -> FileResponse:
    """The stored file of one of the lead's messages, or 404."""
    message = (
        Message.objects.filter(pk=message_id, lead=lead, company_id=lead.company_id, media_status=Message.MediaStatus.STORED)
        .only("id", "media_file", "media_content_type", "metadata")
        .first()
    )
    if message is None or not message.media_file:
        raise Http404("No stored media for this message.")
    filename = (message.metadata or {}).get("media", {}).get("filename") or message.media_file.name.rsplit("/", 1)[-1]
    return _file_response(stored=message.media_file, content_type=message.media_content_type, filename=filename)
