"""engage's public surface: what the other apps (coaching, reports) may call. Everything else is private to
its feature package and may change without notice.

Background work through the ledger:
    `job_enqueue(company=..., task_name=..., payload=..., idempotency_key=...)` in your transaction; handle it
    with `@job_handler("task_name", priority=...)` (idempotent; raise `JobPermanentError` for the dead letters).

Send a message under consent and the frequency caps:
    `message_queue(company=..., contact=..., channel=..., body=..., agent_type="coachnova",
    message_type="coaching", idempotency_key=..., role=ROLE_WORKER)` reserves the slot, writes the queued
    message and its ledger job in one transaction; the job sends it once. With `media_url=...,
    media_content_type=...` the message carries one file by link: sent natively where
    `channel_sends_media(channel, media_type)` (WhatsApp Cloud: an audio message after the text), else
    the text goes alone; `message.metadata["media_error"]` says why the file did not go. `can_send(...)` asks without
    reserving; `contact_opt_out(...)` withdraws consent. Inside a handler of your own, `message_send(job=...)`
    sends at most once per job.

Generate with the safety filter and the approved fallback:
    `ai_generate(company=..., agent_type=..., purpose=..., messages=[...], message_type=..., locale=...,
    channel=..., contact=...)` returns a `GenerationResult`: `.text` (the model's if it passed the filter,
    else the fallback), `.outcome`, `.session` (the AISession), `.is_sendable` (False: send nothing).

Render a published template:
    `template_latest_approved(company=..., agent_type=..., locale=..., name=...)`, then
    `template_render(body=version.body, agent_type=..., context={...})`; `templates_seed_defaults(company=...)`.

Answer inbound messages of your own: `inbound_claim_hook_register(hook)` at start-up; `hook(*, contact, message_id) -> bool`
    is asked before the sales AI replies to an inbound message (True: the app took it, no AI reply).

Bengali for people: `date_bn(date)`, `number_bn(n)`.

The company's engagement policy: `policy_for(company=...)` (caps per role, flags, send window, presets).

Experiments (engage.experiments): `experiment_exposures_for(company=..., applies_to="coaching", unit_ids=[worker
    ids])` gives each unit's `Exposure` in the company's running CoachNova (or "ai_replies") experiment, storing
    the assignment at this first exposure: `.is_holdout` (send nothing from the experiment; record the skip as
    `holdout`), else `.variant_kind`, `.template_version` (render it instead of the latest approved),
    `.settings`, and `.assignment_id` (pass it to `message_queue(..., experiment_assignment_id=...)`, so the
    message is attributed to its arm). {} when none runs. CoachNova does this (coaching/runs.py).
    `experiment_send_at(company=..., contact=..., exposure=..., window=(start, end))`: when the arm sends (None:
    now; a send-setting arm's window start, the send-time arm's best hour); pass it as `message_queue(...,
    run_at=...)`, which queues the message now, sends it then and asks consent again at that time.

For the reports (read-only): `AISession`, `Campaign`, `CampaignRecipient`, `attributed_bookings(company=...)` (the
one attribution rule), the user-event types (`NOTIFICATION_OPENED`, `CLICK_EVENT_TYPES`), `queue_stats(company=...)`,
`template_version_labels(company=..., ids=[...])` ({id: "<template name> v<N>"}, one query).
"""

from channels_app.registry import channel_sends_media
from engage.ai.bengali import date_bn, number_bn
from engage.ai.client import GenerationRequest, GenerationResult, ai_generate, ai_generate_many
from engage.ai.models import AISession
from engage.campaigns.attribution import CLICK_EVENT_TYPES, NOTIFICATION_OPENED, attributed_bookings
from engage.campaigns.models import Campaign, CampaignRecipient
from engage.conversations.claims import inbound_claim_hook_register
from engage.experiments.send_time import experiment_send_at
from engage.experiments.services import Exposure, experiment_exposures_for
from engage.ledger.models import Job
from engage.ledger.registry import JobPermanentError, job_handler
from engage.ledger.selectors import queue_stats
from engage.ledger.services import job_enqueue
from engage.messaging.models import AgentType, Message
from engage.messaging.services import message_send
from engage.policy.consent import QueuedMessage, SendDecision, can_send, contact_opt_out, message_queue
from engage.policy.services import ROLE_CUSTOMER, ROLE_WORKER, policy_for
from engage.prompts.rendering import template_latest_approved, template_render
from engage.prompts.selectors import template_version_labels
from engage.prompts.services import templates_seed_defaults

__all__ = [
    "CLICK_EVENT_TYPES",
    "NOTIFICATION_OPENED",
    "ROLE_CUSTOMER",
    "ROLE_WORKER",
    "AISession",
    "AgentType",
    "Campaign",
    "CampaignRecipient",
    "Exposure",
    "GenerationRequest",
    "GenerationResult",
    "Job",
    "JobPermanentError",
    "Message",
    "QueuedMessage",
    "SendDecision",
    "ai_generate",
    "ai_generate_many",
    "attributed_bookings",
    "can_send",
    "channel_sends_media",
    "contact_opt_out",
    "date_bn",
    "experiment_exposures_for",
    "experiment_send_at",
    "inbound_claim_hook_register",
    "job_enqueue",
    "job_handler",
    "message_queue",
    "message_send",
    "number_bn",
    "policy_for",
    "queue_stats",
    "template_latest_approved",
    "template_render",
    "template_version_labels",
    "templates_seed_defaults",
]
