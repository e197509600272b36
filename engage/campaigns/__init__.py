"""SmartEngage campaigns: who is due a reminder, the reminders themselves, runs, and what they led to.

- `models`: `Campaign`, `CampaignRun`, `CampaignRecipient`, `ShortLink`.
- `segmentation`: the eligibility rules, written once, used by the segment and by the skip records.
- `deeplinks`: signed booking links and short links. `attribution`: opens, clicks, bookings, the funnel.
- `smartengage`: the ten-step reminder pipeline (plan, generate, write intents, send).
- `runs`: trigger, cancel, retry, pause a run; `runner`: a run's execution in time slices.
- `merge`, `handlers`, `tasks`, `apis` (send-single, send-bulk, run-segment), `event_apis`
  (`/events`, `/book`, `/l/<code>`, `/api/deeplinks/verify`).
See docs/smartengage.md and docs/campaigns.md.
"""
