"""How channels report back, without importing engage or coaching (engage connects receivers).

delivery_status_changed(sender, channel, provider_message_id, status, error, raw, occurred_at)
    A provider said what happened to a message it accepted: sent, delivered, read or failed.
inbound_message_received(sender, company_id, channel, from_phone, from_email, from_name, text,
                         provider_message_id, raw, occurred_at)
    Somebody wrote to a company on a channel.
"""

from django.dispatch import Signal

delivery_status_changed = Signal()
inbound_message_received = Signal()
