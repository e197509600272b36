"""Conversations with leads: inbound messages, AI replies, hand-off to a person, follow-ups, sequences.

- `inbound`: `inbound_message_capture` (the webhook's one-transaction hot path), opt-out keywords.
- `replies`: the AI reply to an inbound message, the lead's summary. `context`: what the model sees.
- `handoff`: a person takes over, replies, hands back. `followups`: nudges after silence.
- `sequences` (+ `models`: `Sequence`, `SequenceStep`, `Enrollment`): multi-step outreach.
- `merge`: the messages and AI sessions of a merged contact. `handlers`, `tasks`, `apis`
  (`POST /inbound-message`).
See docs/ai.md.
"""
