"""How channels report back, without importing engage or coaching (engage connects receivers).

delivery_status_changed(sender, company_id, channel, provider_message_id, status, error, raw, occurred_at,
                        details)
    A provider said what happened to a message it accepted: sent, delivered, read, failed, played
    (a voice note was played) or complained (an email was reported as spam). `occurred_at` is the
    provider's own time when it gives one. `details`: {"pricing": {...}, "conversation": {...},
    "errors": [{"code", "title", "message", "details", "href"}], "bounce": {...}}, each when known.
    Sent once per (channel, provider_message_id, status): replays are dropped before the signal.
inbound_message_received(sender, company_id, channel, from_phone, from_email, from_name, text,
                         provider_message_id, raw, occurred_at, kind, caption, media, reply,
                         context_message_id, referral, extra, to_address, attachments)
    Somebody wrote to a company on a channel. Sent once per provider message id.
    kind     text, image, audio, voice, video, document, sticker, location, contacts, button,
             interactive, reaction or system (channels_app.payloads)
    text     what a person would read: the text, caption, tapped button's title, place ... ("" if none)
    caption  a media message's caption
    media    {"provider", "account_id", "id" (WhatsApp media id) or "url" (Twilio MediaUrl),
             "mime_type", "sha256", "filename"}: fetch it with channels_app.media.media_fetch
    attachments  every file of the message, in order (an MMS carries up to 10, MediaUrl0..N): each a
             `media` dict plus its "kind" (image, audio, video, document, ...); `media` is the first
    reply    {"kind": quick_reply | button_reply | list_reply, "id": the stable id or payload, "title"}
    context_message_id   the provider id of the message this one replies to
    referral the click-to-WhatsApp ad it came from (source_id, source_url, headline, ctwa_clid ...)
    extra    location, contacts, reaction {"message_id", "emoji"}, system {"type", "body", "new_wa_id"}
    to_address           the number written to (WhatsApp phone_number_id, Twilio To)
    occurred_at          the provider's timestamp of the message

Receivers run inside the transaction that logs the callback: a receiver that raises undoes the
log row and the webhook answers 503, so the provider's retry is processed afresh.
"""

from django.dispatch import Signal

delivery_status_changed = Signal()
inbound_message_received = Signal()
