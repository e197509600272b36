"""`followup_bumpup` (95): a nudge after silence, continuing on a cadence up to the company's maximum."""

from __future__ import annotations

from typing import Any

from engage.handlers import job_handler


@job_handler("followup_bumpup", priority=95)
def followup_bumpup(job) -> dict[str, Any]:
    from engage.services.followups import followup_send

    payload = job.payload
    return followup_send(
        job=job, lead_id=payload["lead_id"], inbound_message_id=payload["inbound_message_id"],
        number=int(payload.get("number", 1)),
    )
