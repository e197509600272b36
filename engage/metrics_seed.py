"""engage's business counters at zero from start-up, for the label values it knows (EngageConfig.ready).

A labelled Prometheus counter has no series until its first increment, so "no data" hides a zero on
dashboards and alerts. These are the series engage increments: AI messages per agent, channel and
message type, job outcomes per registered task, campaign skip reasons, opt-outs and user events.
"""

from __future__ import annotations

from itertools import product

from crm.models import Channel
from engage.ai.models import AISession
from engage.campaigns.attribution import USER_EVENT_TYPES
from engage.campaigns.models import CampaignRecipient
from engage.ledger.registry import handler_names
from shokti.metrics import (
    ai_generations_total,
    ai_messages_delivered_total,
    ai_messages_failed_total,
    ai_messages_sent_total,
    campaign_recipients_skipped_total,
    counter_seed,
    jobs_processed_total,
    opt_outs_total,
    user_events_total,
)

# The AI agents and the message types each sends (engage/services/messages.py counts these).
AI_MESSAGE_TYPES = {"sales": ("reply", "followup"), "smartengage": ("reminder",), "coachnova": ("coaching",)}
SEND_STATUSES = ("sent", "failed")
FAILURE_REASONS = ("send_rejected", "undelivered")
JOB_OUTCOMES = ("succeeded", "retried", "dead")
OPT_OUT_REASONS = ("keyword", "unsubscribe_link")
USER_EVENT_SOURCES = ("app", "email")


def engage_counters_seed() -> None:
    channels = Channel.values
    counter_seed(ai_messages_sent_total, (
        {"agent_type": agent, "channel": channel, "message_type": message_type, "status": status}
        for agent, types in AI_MESSAGE_TYPES.items()
        for channel, message_type, status in product(channels, types, SEND_STATUSES)
    ))
    counter_seed(ai_messages_delivered_total, (
        {"agent_type": agent, "channel": channel} for agent, channel in product(AI_MESSAGE_TYPES, channels)
    ))
    counter_seed(ai_messages_failed_total, (
        {"agent_type": agent, "channel": channel, "reason": reason}
        for agent, channel, reason in product(AI_MESSAGE_TYPES, channels, FAILURE_REASONS)
    ))
    counter_seed(ai_generations_total, (
        {"agent_type": agent, "outcome": outcome} for agent, outcome in product(AI_MESSAGE_TYPES, AISession.Outcome.values)
    ))
    counter_seed(jobs_processed_total, (
        {"task": task, "outcome": outcome} for task, outcome in product(handler_names(), JOB_OUTCOMES)
    ))
    counter_seed(campaign_recipients_skipped_total, (
        {"reason": reason} for reason in CampaignRecipient.Reason.values
    ))
    counter_seed(opt_outs_total, (
        {"channel": channel, "reason": reason} for channel, reason in product(channels, OPT_OUT_REASONS)
    ))
    counter_seed(user_events_total, (
        {"event_type": event_type, "agent_type": agent, "channel": channel, "source": source}
        for event_type, agent, channel, source in product(USER_EVENT_TYPES, AI_MESSAGE_TYPES, channels, USER_EVENT_SOURCES)
    ))
