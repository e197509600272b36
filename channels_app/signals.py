"""How channels report back, without importing engage or coaching (engage connects receivers).

delivery_status_changed(sender, company_id, channel, provider_message_id, status, error, raw, occurred_at)
    A provider said what happened to a message it accepted: sent, delivered, read or failed.
    Sent once per (channel, provider_message_id, status): replays are dropped before the signal.
inbound_message_received(sender, company_id, channel, from_phone, from_email, from_name, text,
                         provider_message_id, raw, occurred_at)
    Somebody wrote to a company on a channel. Sent once per provider message id.

Receivers run inside the transaction that logs the callback: a receiver that raises undoes the
log row and the webhook answers 503, so the provider's retry is processed afresh.
"""

from django.dispatch import Signal

delivery_status_changed = Signal()
inbound_message_received = Signal()
