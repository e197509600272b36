"""The engagement policy: a company's frequency caps, feature flags, send windows and campaign presets,
and the consent and cap checks every automated send goes through.

- `models`: `EngagementPolicy`, `CampaignPreset` (edited in the admin).
- `services`: `policy_for` (a cached snapshot), `policy_get_or_create`, `policy_presets_restore`.
- `consent`: `can_send`, `send_slot_reserve` / `send_slots_reserve` (atomic, under the caps),
  `send_intent_create`, `message_queue` (a queued message and its `message_send` ledger job, under
  consent and caps, in one transaction), `contact_opt_out`.
"""
