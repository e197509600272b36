"""Customers' media in the operations console: streamed from storage to staff who may see the lead.

Media is never served from a public URL: the lead admin's `media/<message id>/` view checks the lead
is in the user's companies (the admin's tenant-scoped queryset) and that the message is the lead's.
"""

from __future__ import annotations

from django.http import FileResponse, Http404

from crm.models import Lead
from engage.models import Message

# Shown in the page (img, audio, video); anything else downloads.
INLINE_PREFIXES = ("image/", "audio/", "video/")


def lead_media_response(*, lead: Lead, message_id: int) -> FileResponse:
    """The stored file of one of the lead's messages, or 404."""
    message = (
        Message.objects.filter(pk=message_id, lead=lead, company_id=lead.company_id, media_status=Message.MediaStatus.STORED)
        .only("id", "media_file", "media_content_type", "metadata")
        .first()
    )
    if message is None or not message.media_file:
        raise Http404("No stored media for this message.")
    try:
        handle = message.media_file.storage.open(message.media_file.name, "rb")
    except FileNotFoundError:
        raise Http404("The media file is missing from storage.") from None
    content_type = message.media_content_type or "application/octet-stream"
    is_inline = content_type.startswith(INLINE_PREFIXES)
    filename = (message.metadata or {}).get("media", {}).get("filename") or message.media_file.name.rsplit("/", 1)[-1]
    response = FileResponse(handle, content_type=content_type, as_attachment=not is_inline, filename=filename)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, max-age=3600"
    return response
