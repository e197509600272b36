"""Messages: every inbound and outbound message (`Message`), sending through a channel, delivery statuses.

- `models`: `Message`, `AgentType`.
- `services`: `message_send` (at most once per ledger job), `message_status_update` (forward-only),
  `channel_settings_for` (the company's channel account, cached per process).
- `selectors`: `contact_reply_number` (the number a contact last wrote to: replies go from it).
- `handlers`: the ledger's `opt_out_confirmation`, `opt_in_confirmation` and `email_sequence` jobs.
"""
