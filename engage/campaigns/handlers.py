"""SmartEngage's ledger jobs: one reminder send (60) and one campaign run (50)."""

from __future__ import annotations

from typing import Any

from engage.campaigns.runner import campaign_run_execute
from engage.campaigns.runs import campaign_run_replay_prepare
from engage.campaigns.smartengage.sending import smartengage_job_send
from engage.ledger.registry import IO_QUEUE, job_handler


@job_handler("smartengage_send", priority=60, queue=IO_QUEUE)
def smartengage_send(job) -> dict[str, Any]:
    """Send the queued reminder written with this job (at most once: message_send is unique per job)."""

    return smartengage_job_send(job=job)


@job_handler("smartengage_campaign_run", priority=50, on_replay=campaign_run_replay_prepare)
def smartengage_campaign_run(job) -> dict[str, Any]:
    """Execute one queued campaign run (the campaign's lock decides whether it may)."""

    return campaign_run_execute(run_id=job.payload["run_id"], job=job)
