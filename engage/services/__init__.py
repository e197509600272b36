"""Writes and business rules of engage, one module per area, re-exported here."""

from engage.services.inbound import InboundResult, inbound_is_opt_out, inbound_message_capture
from engage.services.jobs import (
    dlq_replay,
    job_cancel,
    job_claim,
    job_dispatch,
    job_enqueue,
    job_execute,
    job_replay,
    jobs_relay,
)
from engage.services.messages import channel_settings_for, message_send, message_status_update

__all__ = [
    "InboundResult",
    "channel_settings_for",
    "dlq_replay",
    "inbound_is_opt_out",
    "inbound_message_capture",
    "job_cancel",
    "job_claim",
    "job_dispatch",
    "job_enqueue",
    "job_execute",
    "job_replay",
    "jobs_relay",
    "message_send",
    "message_status_update",
]
