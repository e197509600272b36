"""What providers post, read into the shapes `services.inbound_message_report` / `delivery_status_report` take.

Pure functions: no database, no network. A payload that is not what the provider documents raises
`PayloadError` (the webhook answers 400 and writes nothing). Everything a customer can send becomes
one inbound item: its `kind` (text, image, audio, voice, video, document, sticker, location,
contacts, button, interactive, reaction, system), the text a person would read (the text, the
caption, the tapped button's title, the place's name ...), the media to fetch later, the tapped
button's stable id, the message it replies to, and the ad it came from.

Sources: Meta, WhatsApp Cloud API "messages webhook reference" (one page per message type and the
status reference), and Twilio, "Messaging webhooks" (inbound parameters) and "Track the message
status of outbound messages" (status callback parameters). The fixtures in
channels_app/tests/fixtures/ are those documented samples.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

# Message kinds that carry a file to fetch from the provider.
MEDIA_KINDS = ("image", "audio", "voice", "video", "document", "sticker")
# Kinds logged but never a conversation turn (nothing a person wrote).
IGNORED_KINDS = ("unsupported", "unknown", "request_welcome", "errors")

WHATSAPP_STATUSES = {"sent": "sent", "delivered": "delivered", "read": "read", "failed": "failed", "played": "played"}
# Twilio's message states, mapped to ours; the rest (queued, sending, accepted ...) are only logged.
TWILIO_STATUSES = {"sent": "sent", "delivered": "delivered", "read": "read", "undelivered": "failed", "failed": "failed"}
TWILIO_ERROR_DOCS = "https://www.twilio.com/docs/api/errors/"


class PayloadError(ValueError):
    """Not the provider's documented shape."""


def provider_time(value: Any) -> dt.datetime | None:
    """A provider's Unix timestamp (seconds, as a string or a number), or None."""
    try:
        return dt.datetime.fromtimestamp(int(value), tz=dt.UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def media_type_base(value: str) -> str:
    """`audio/ogg; codecs=opus` -> `audio/ogg`: media types compared without their parameters."""
    return (value or "").split(";", 1)[0].strip().lower()


def _text(value: Any, limit: int = 4096) -> str:
    return str(value or "").replace("\x00", "").strip()[:limit]


# --- WhatsApp Cloud API -----------------------------------------------------------------------


def whatsapp_changes(payload: Any) -> list[dict[str, Any]]:
    """The `value` object of every change of a webhook body (validated: each is a JSON object)."""
    try:
        changes = [change["value"] for entry in payload["entry"] for change in entry["changes"]]
    except (KeyError, TypeError):
        raise PayloadError("Not a WhatsApp Business webhook payload.") from None
    if not all(isinstance(value, dict) for value in changes):
        raise PayloadError("Not a WhatsApp Business webhook payload.")
    return changes


def whatsapp_phone_number_id(value: dict[str, Any]) -> str:
    metadata = value.get("metadata")
    return str(metadata.get("phone_number_id") or "") if isinstance(metadata, dict) else ""


def whatsapp_error_text(errors: list[dict[str, Any]]) -> str:
    """Every error in full: `code: title - message (details) href`, the part that says what to do included."""
    parts = []
    for error in errors:
        text = f"{error.get('code')}: {error.get('title', '')}".strip()
        message = str(error.get("message") or "")
        if message and message != error.get("title"):
            text += f" - {message}"
        details = (error.get("error_data") or {}).get("details") if isinstance(error.get("error_data"), dict) else ""
        if details:
            text += f" ({details})"
        if error.get("href"):
            text += f" {error['href']}"
        parts.append(text)
    return "; ".join(parts)


def whatsapp_status(item: dict[str, Any]) -> dict[str, Any]:
    """One entry of `statuses`: our status, the full error, pricing and conversation, the provider's time."""
    provider_status = str(item["status"])
    errors = [error for error in item.get("errors") or [] if isinstance(error, dict)]
    details: dict[str, Any] = {}
    if isinstance(item.get("pricing"), dict):
        details["pricing"] = item["pricing"]
    if isinstance(item.get("conversation"), dict):
        details["conversation"] = item["conversation"]
    if errors:
        details["errors"] = [
            {
                "code": error.get("code"),
                "title": error.get("title", ""),
                "message": error.get("message", ""),
                "details": (error.get("error_data") or {}).get("details", "") if isinstance(error.get("error_data"), dict) else "",
                "href": error.get("href", ""),
            }
            for error in errors
        ]
    return {
        "provider_message_id": str(item["id"]),
        "status": WHATSAPP_STATUSES.get(provider_status, provider_status),
        "error": whatsapp_error_text(errors),
        "raw": item,
        "occurred_at": provider_time(item.get("timestamp")),
        "details": details,
    }


def _whatsapp_media(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    media = {
        "provider": "whatsapp_cloud",
        "id": str(body["id"]),
        "mime_type": str(body.get("mime_type") or ""),
        "sha256": str(body.get("sha256") or ""),
    }
    if body.get("filename"):
        media["filename"] = _text(body["filename"], 255)
    return media


def _location_text(location: dict[str, Any]) -> str:
    named = ", ".join(_text(location.get(key), 300) for key in ("name", "address") if location.get(key))
    return named or f"{location.get('latitude')}, {location.get('longitude')}"


def _contacts_text(contacts: list[dict[str, Any]]) -> str:
    people = []
    for contact in contacts:
        name = (contact.get("name") or {}).get("formatted_name", "") if isinstance(contact.get("name"), dict) else ""
        phones = ", ".join(str(phone.get("phone", "")) for phone in contact.get("phones") or [] if isinstance(phone, dict))
        people.append(" ".join(part for part in (_text(name, 200), phones) if part))
    return "; ".join(person for person in people if person)


def whatsapp_message(item: dict[str, Any], *, names: dict[str, str], phone_number_id: str) -> dict[str, Any]:
    """One entry of `messages`, every documented type, as an inbound item (KeyError/TypeError if malformed)."""
    sender = str(item["from"])
    kind = str(item.get("type") or "unknown")
    text, caption = "", ""
    media: dict[str, Any] | None = None
    reply: dict[str, Any] | None = None
    extra: dict[str, Any] = {}
    if kind == "text":
        text = _text(item["text"]["body"])
    elif kind in ("image", "video", "document", "sticker", "audio"):
        body = item[kind]
        media = _whatsapp_media(kind, body)
        caption = _text(body.get("caption"), 1024)
        if kind == "audio" and body.get("voice"):
            kind = "voice"
        if kind == "sticker":
            extra["animated"] = bool(body.get("animated"))
        text = caption or (media.get("filename", "") if kind == "document" else "")
    elif kind == "location":
        location = item["location"]
        extra["location"] = {key: location.get(key) for key in ("latitude", "longitude", "name", "address", "url") if key in location}
        text = _location_text(location)
    elif kind == "contacts":
        contacts = [contact for contact in item["contacts"] if isinstance(contact, dict)]
        extra["contacts"] = contacts
        text = _contacts_text(contacts)
    elif kind == "button":
        # A template's quick-reply button: `payload` is the id the template set, `text` its label.
        button = item["button"]
        reply = {"kind": "quick_reply", "id": _text(button.get("payload"), 256), "title": _text(button.get("text"), 256)}
        text = reply["title"]
    elif kind == "interactive":
        interactive = item["interactive"]
        reply_kind = str(interactive.get("type") or "")
        chosen = interactive.get(reply_kind) if reply_kind in ("button_reply", "list_reply") else None
        if not isinstance(chosen, dict):
            chosen = interactive.get("button_reply") or interactive.get("list_reply") or {}
            reply_kind = "button_reply" if "button_reply" in interactive else "list_reply"
        reply = {"kind": reply_kind, "id": _text(chosen.get("id"), 256), "title": _text(chosen.get("title"), 256)}
        if chosen.get("description"):
            reply["description"] = _text(chosen["description"], 300)
        text = reply["title"]
    elif kind == "reaction":
        reaction = item["reaction"]
        extra["reaction"] = {"message_id": str(reaction["message_id"]), "emoji": _text(reaction.get("emoji"), 32)}
        text = extra["reaction"]["emoji"]
    elif kind == "system":
        system = item["system"]
        extra["system"] = {
            "type": str(system.get("type") or ""),
            "body": _text(system.get("body"), 500),
            "new_wa_id": str(system.get("new_wa_id") or system.get("wa_id") or ""),
        }
        text = extra["system"]["body"]
    context = item.get("context") if isinstance(item.get("context"), dict) else {}
    if context.get("forwarded") or context.get("frequently_forwarded"):
        extra["forwarded"] = True
    referral = item.get("referral") if isinstance(item.get("referral"), dict) else None
    return {
        "attachments": [{**media, "kind": kind}] if media else [],
        "provider_message_id": str(item["id"]),
        "from_phone": sender if sender.startswith("+") else f"+{sender}",
        "from_name": names.get(sender, ""),
        "text": text,
        "kind": kind,
        "caption": caption,
        "media": media,
        "reply": reply,
        "context_message_id": str(context.get("id") or ""),
        "referral": referral,
        "extra": extra,
        "to_address": phone_number_id,
        "raw": item,
        "occurred_at": provider_time(item.get("timestamp")),
    }


def whatsapp_value_items(value: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(statuses, inbound messages) of one change value; PayloadError if any of it is malformed."""
    phone_number_id = whatsapp_phone_number_id(value)
    try:
        statuses = [whatsapp_status(item) for item in value.get("statuses", [])]
        names = {
            str(contact.get("wa_id")): _text((contact.get("profile") or {}).get("name"), 200)
            for contact in value.get("contacts", [])
        }
        inbound = [
            whatsapp_message(item, names=names, phone_number_id=phone_number_id) for item in value.get("messages", [])
        ]
    except (KeyError, TypeError, AttributeError):
        raise PayloadError("Not a WhatsApp Business webhook payload.") from None
    return statuses, inbound


# --- Twilio -----------------------------------------------------------------------------------

_MEDIA_URL = re.compile(r"^MediaUrl(\d+)$")


def _twilio_kind(content_type: str) -> str:
    base = media_type_base(content_type)
    if base.startswith("image/"):
        return "image"
    if base.startswith("audio/"):
        return "audio"
    if base.startswith("video/"):
        return "video"
    if base in ("text/vcard", "text/x-vcard"):
        return "contacts"
    return "document"


def twilio_inbound(params: dict[str, str]) -> dict[str, Any]:
    """An inbound SMS or MMS (MessageSid, From, To, Body, NumMedia, MediaUrlN, MediaContentTypeN)."""
    sid, from_phone = params.get("MessageSid", ""), params.get("From", "")
    try:
        media_count = int(params.get("NumMedia") or 0)
    except ValueError:
        raise PayloadError("NumMedia is a number.") from None
    if not sid or not from_phone or ("Body" not in params and not media_count):
        raise PayloadError("MessageSid, From and Body (or media) are required.")
    # Every attachment of an MMS (Twilio sends at most 10): MediaUrlN with MediaContentTypeN.
    attachments = []
    for index in range(min(media_count, 10)):
        url = params.get(f"MediaUrl{index}", "")
        if url:
            mime_type = params.get(f"MediaContentType{index}", "")
            attachments.append({"provider": "sms", "url": url, "mime_type": mime_type, "kind": _twilio_kind(mime_type)})
    text = _text(params.get("Body"))
    kind, media, extra = "text", None, {}
    if attachments:
        # The message's kind and `media` are its first attachment's; `attachments` lists them all.
        kind = attachments[0]["kind"]
        media = {key: attachments[0][key] for key in ("provider", "url", "mime_type")}
    return {
        "attachments": attachments,
        "provider_message_id": sid,
        "from_phone": from_phone,
        "text": text,
        "kind": kind,
        "caption": text if media else "",
        "media": media,
        "extra": extra,
        "to_address": params.get("To", ""),
        "raw": params,
    }


def _twilio_done_date(value: str) -> dt.datetime | None:
    """RawDlrDoneDate (YYMMDDhhmm, UTC) of a delivered status, when the carrier gave one."""
    try:
        return dt.datetime.strptime(value, "%y%m%d%H%M").replace(tzinfo=dt.UTC) if value else None
    except ValueError:
        return None


def twilio_status(params: dict[str, str]) -> dict[str, Any]:
    sid, provider_status = params.get("MessageSid", ""), params.get("MessageStatus", "")
    if not sid or not provider_status:
        raise PayloadError("MessageSid and MessageStatus are required.")
    error_code = params.get("ErrorCode") or ""
    error = ""
    details: dict[str, Any] = {}
    if error_code:
        error = f"Twilio error {error_code}"
        if params.get("ErrorMessage"):
            error += f": {params['ErrorMessage']}"
        error += f" {TWILIO_ERROR_DOCS}{error_code}"
        details["errors"] = [{
            "code": error_code, "title": "", "message": params.get("ErrorMessage", ""), "details": "",
            "href": f"{TWILIO_ERROR_DOCS}{error_code}",
        }]
    return {
        "provider_message_id": sid,
        "status": TWILIO_STATUSES.get(provider_status, provider_status),
        "error": error,
        "raw": params,
        "occurred_at": _twilio_done_date(params.get("RawDlrDoneDate", "")),
        "details": details,
    }
