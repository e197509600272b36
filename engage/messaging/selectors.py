"""Reads of messages that the send path needs."""

from __future__ import annotations

import functools

from django.db import connection

from crm.models import Channel, Contact
from engage.messaging.models import Message

# Channels where a company may have several numbers (channels_app.selectors.NUMBER_SETTING).
NUMBERED_CHANNELS = frozenset({Channel.SMS, Channel.WHATSAPP_CLOUD})


@functools.lru_cache(maxsize=1)
def _reply_number_sql() -> str:
    # Plain SQL on the send path, the partial index's predicate written out literally (as the inbound
    # probes do): a prepared statement's generic plan then still proves it and probes that index.
    table = connection.ops.quote_name(Message._meta.db_table)
    return (
        f"SELECT channel_number FROM {table} WHERE contact_id = %s AND channel = %s"
        f" AND direction = '{Message.Direction.INBOUND.value}' AND channel_number <> ''"
        " ORDER BY created_at DESC LIMIT 1"
    )


def contact_reply_number(*, contact: Contact | int, channel: str) -> str:
    """The company's number the contact last wrote to on `channel` (WhatsApp phone_number_id, Twilio To), or "".

    One probe of the partial index `message_contact_reply_number`. "" for a contact who never wrote on
    this channel (the account's default number is used then) and on channels without numbers.
    """
    if channel not in NUMBERED_CHANNELS:
        return ""
    contact_id = contact if isinstance(contact, int) else contact.pk
    with connection.cursor() as cursor:
        cursor.execute(_reply_number_sql(), [contact_id, str(channel)])
        row = cursor.fetchone()
    return row[0] if row else ""
