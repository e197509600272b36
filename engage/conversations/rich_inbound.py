"""What a channel's inbound message carries besides its text, kept on the message (engage's side of issue 17).

`engage.receivers` captures the message with `inbound_message_capture` (its body the text, the
caption or a description), then this module stores the rest in the same transaction: the media to
fetch (a `media_download` ledger job, engage/conversations/media.py), the tapped button's stable id, the
message it replies to, the provider's timestamp, the click-to-WhatsApp ad on the lead. Reactions
and change-of-number notices are not conversation turns: they update what they are about.
Delivery reports add what `message_status_update` does not keep: a voice note played, an email
complaint, pricing and the provider's full error.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from crm.models import Company, Contact, Lead
from crm.services import event_record, phone_normalize
from engage.ledger.services import job_enqueue
from engage.messaging.models import Message, MessageAttachment

logger = logging.getLogger(__name__)

MEDIA_DOWNLOAD = "media_download"
# The body of a message that has no text of its own (shown in the thread; the AI gets `media_describe`).
BODY_PLACEHOLDERS = {
    "image": "[photo]",
    "audio": "[audio]",
    "voice": "[voice note]",
    "video": "[video]",
    "document": "[document]",
    "sticker": "[sticker]",
    "location": "[location]",
    "contacts": "[contact card]",
    "button": "[button]",
    "interactive": "[button]",
}
# How the AI hears about media: "the customer sent a photo: 'is this the leak?'".
MEDIA_NOUNS = {
    "image": "a photo",
    "audio": "an audio file",
    "voice": "a voice note",
    "video": "a video",
    "document": "a document",
    "sticker": "a sticker",
    "location": "a location",
    "contacts": "a contact card",
}
AD_FIELDS = {"source_id": "ad_source_id", "headline": "ad_headline", "source_url": "ad_url", "ctwa_clid": "ad_click_id"}


def inbound_body(*, kind: str, text: str) -> str:
    """The message's body: what the customer wrote, or a short description of what they sent."""
    return text.strip() or BODY_PLACEHOLDERS.get(kind, f"[{kind}]")


def ad_summary(referral: dict[str, Any]) -> dict[str, Any]:
    """The referral's attribution fields (what the lead and its first event keep)."""
    keys = ("source_id", "source_type", "source_url", "headline", "body", "media_type", "ctwa_clid")
    return {key: str(referral[key])[:1000] for key in keys if referral.get(key)}


def media_describe(*, media_type: str, caption: str = "", metadata: dict[str, Any] | None = None) -> str:
    """A text the model can read for a message that is (also) media."""
    metadata = metadata or {}
    kinds = metadata.get("attachment_kinds") or []
    if len(kinds) > 1:
        nouns = [MEDIA_NOUNS.get(kind, f"a {kind}") for kind in kinds]
        listed = ", ".join(nouns[:-1]) + f" and {nouns[-1]}"
        description = f"The customer sent {len(kinds)} files: {listed}"
        return f"{description}: '{caption}'" if caption else f"{description}."
    noun = MEDIA_NOUNS.get(media_type, f"a {media_type}")
    description = f"The customer sent {noun}"
    if media_type == "location" and metadata.get("location"):
        location = metadata["location"]
        place = ", ".join(str(location[key]) for key in ("name", "address") if location.get(key))
        where = f"{location.get('latitude')}, {location.get('longitude')}"
        return f"{description}: {place} ({where})" if place else f"{description}: {where}"
    if media_type == "contacts" and caption:
        return f"{description}: {caption}"
    if media_type == "voice":
        description += " (not transcribed)"
    if metadata.get("media", {}).get("filename"):
        description += f" named '{metadata['media']['filename']}'"
    return f"{description}: '{caption}'" if caption else f"{description}."


def _our_message_id(*, company: Company, channel: str, provider_message_id: str) -> int | None:
    if not provider_message_id:
        return None
    return (
        Message.objects.filter(company=company, channel=channel, provider_message_id=provider_message_id)
        .values_list("id", flat=True)
        .first()
    )


def inbound_details_store(
    *,
    company: Company,
    channel: str,
    message_id: int,
    lead_id: int,
    kind: str,
    caption: str = "",
    media: dict[str, Any] | None = None,
    reply: dict[str, Any] | None = None,
    context_message_id: str = "",
    referral: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
    channel_number: str = "",
    attachments: list[dict[str, Any]] | None = None,
) -> None:
    """Keep the media, button, reply context, ad, provider time and the number written to (`channel_number`,
    which replies go from) of a just-captured inbound message."""
    metadata: dict[str, Any] = {"kind": kind}
    changes: dict[str, Any] = {}
    if caption:
        metadata["caption"] = caption
    if extra:
        metadata.update({key: value for key, value in extra.items() if value not in (None, "", [], {})})
    if kind in Message.MediaType.values:
        changes["media_type"] = kind
    if media and attachments is None:
        attachments = [{**media, "kind": kind}]
    if media:
        metadata["media"] = media
        changes["media_status"] = Message.MediaStatus.PENDING
        changes["media_content_type"] = str(media.get("mime_type") or "")[:100]
    if attachments and len(attachments) > 1:
        # What the AI and the thread say of several files: "3 files: a photo, a photo and a voice note".
        metadata["attachment_kinds"] = [str(item.get("kind") or kind) for item in attachments]
    if reply:
        metadata["reply"] = reply
        changes["button_payload"] = str(reply.get("id") or "")[:256]
    if context_message_id:
        metadata["context_message_id"] = context_message_id
        changes["reply_to_id"] = _our_message_id(company=company, channel=channel, provider_message_id=context_message_id)
    if referral:
        metadata["referral"] = referral
    if channel_number:
        changes["channel_number"] = channel_number[:64]
    if occurred_at is not None:
        # An inbound message was sent when the provider says, not when its webhook reached us.
        changes["sent_at"] = occurred_at
    Message.objects.filter(pk=message_id, company=company).update(metadata=metadata, updated_at=timezone.now(), **changes)
    if attachments:
        MessageAttachment.objects.bulk_create([
            MessageAttachment(
                company=company, message_id=message_id, position=position, source=item,
                media_type=item.get("kind") if item.get("kind") in Message.MediaType.values else Message.MediaType.DOCUMENT,
            )
            for position, item in enumerate(attachments)
        ])
    if media or attachments:
        job_enqueue(
            company=company, task_name=MEDIA_DOWNLOAD, payload={"message_id": message_id},
            idempotency_key=f"{MEDIA_DOWNLOAD}:{message_id}",
        )
    if referral:
        _lead_ad_record(company=company, lead_id=lead_id, referral=referral)


def _lead_ad_record(*, company: Company, lead_id: int, referral: dict[str, Any]) -> None:
    """A lead that started from an ad (source `ad`, set when it was created) keeps the ad; an older lead keeps its own."""
    summary = ad_summary(referral)
    fields = {column: summary.get(key, "")[: Lead._meta.get_field(column).max_length] for key, column in AD_FIELDS.items()}
    Lead.objects.filter(pk=lead_id, company=company, source="ad", ad_source_id="").update(
        ad_referral=summary, updated_at=timezone.now(), **fields
    )


@transaction.atomic
def message_reaction_record(
    *, company: Company, channel: str, provider_message_id: str, emoji: str, from_phone: str,
    occurred_at: datetime | None = None, reaction_id: str = "",
) -> Message | None:
    """A reaction is kept on the message it reacts to (an empty emoji removes the person's reaction)."""
    message = (
        Message.objects.select_for_update()
        .filter(company=company, channel=channel, provider_message_id=provider_message_id)
        .first()
    )
    if message is None:
        logger.info("reaction %r to unknown %s message %s ignored", emoji, channel, provider_message_id)
        return None
    reactions = [item for item in (message.metadata or {}).get("reactions", []) if item.get("from") != from_phone]
    if emoji:
        reactions.append({"emoji": emoji, "from": from_phone, "at": (occurred_at or timezone.now()).isoformat()})
    message.metadata = {**(message.metadata or {}), "reactions": reactions}
    message.save(update_fields=["metadata", "updated_at"])
    event_record(
        company=company, type="message.reaction", contact=message.contact, target=message,
        payload={"message_id": message.pk, "channel": channel, "emoji": emoji, "reaction_id": reaction_id},
        source=channel, occurred_at=occurred_at,
    )
    return message


@transaction.atomic
def contact_number_change(
    *, company: Company, channel: str, from_phone: str, new_phone: str, body: str = "",
    occurred_at: datetime | None = None,
) -> Contact | None:
    """WhatsApp's change-of-number notice: the contact keeps its history under the new number."""
    try:
        old = phone_normalize(phone=from_phone, region=company.default_region)
        new = phone_normalize(phone=new_phone if new_phone.startswith("+") else f"+{new_phone}", region=company.default_region)
    except Exception:
        logger.warning("change of number %s -> %s not understood; ignored", from_phone, new_phone)
        return None
    contact = Contact.objects.select_for_update().filter(company=company, phone=old).first()
    if contact is None:
        return None
    taken = Contact.objects.filter(company=company, phone=new).exclude(pk=contact.pk).exists()
    if not taken:
        contact.phone = new
        contact.save(update_fields=["phone", "updated_at"])
    event_record(
        company=company, type="contact.phone_changed", contact=contact, target=contact,
        payload={"channel": channel, "old_phone": old, "new_phone": new, "is_applied": not taken, "text": body[:300]},
        source=channel, occurred_at=occurred_at,
    )
    return contact


def message_delivery_details_record(
    *, company_id: int | None, channel: str, provider_message_id: str, status: str, error: str = "",
    details: dict[str, Any] | None = None, occurred_at: datetime | None = None,
) -> Message | None:
    """What a status adds to the message: pricing, the provider's full errors, a voice note played,
    an email bounced or reported as spam (channels_app revoked the contact's email consent already)."""
    details = details or {}
    if not provider_message_id or not (details or status in ("played", "complained")):
        return None
    occurred_at = occurred_at or timezone.now()
    with transaction.atomic():
        message = (
            Message.objects.select_for_update()
            .select_related("company", "contact")
            .filter(company_id=company_id, channel=channel, provider_message_id=provider_message_id)
            .first()
        )
        if message is None:
            return None
        metadata = dict(message.metadata or {})
        fields = ["metadata", "updated_at"]
        if details.get("pricing"):
            metadata["pricing"] = details["pricing"]
        if details.get("conversation"):
            metadata["conversation"] = details["conversation"]
        if details.get("errors"):
            metadata["errors"] = details["errors"]
        if details.get("bounce"):
            metadata["bounce"] = details["bounce"]
        if status == "played" and message.played_at is None:
            message.played_at = occurred_at
            fields.append("played_at")
        if status == "complained":
            metadata["complaint"] = {"at": occurred_at.isoformat(), **(details.get("complaint") or {})}
            message.error = (f"{message.error}; " if message.error else "") + f"complaint: {error or 'reported as spam'}"
            fields.append("error")
        message.metadata = metadata
        message.save(update_fields=fields)
        if status in ("played", "complained"):
            event_record(
                company=message.company, type=f"message.{status}", contact=message.contact, target=message,
                payload={"message_id": message.pk, "channel": channel, **({"error": error} if error else {})},
                source=channel, correlation_id=message.correlation_id, occurred_at=occurred_at,
            )
    return message


def messages_with_button(*, company: Company, button_payload: str):
    """Inbound messages of the company whose tapped button (or list row) had this id (indexed)."""
    return Message.objects.filter(Q(company=company) & Q(button_payload=button_payload))
