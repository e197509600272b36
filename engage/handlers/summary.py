"""`ai_summary` (90): keep Lead.summary current after a conversation turn (debounced per 10 minutes)."""

from __future__ import annotations

from typing import Any

from engage.handlers import job_handler


@job_handler("ai_summary", priority=90)
def ai_summary(job) -> dict[str, Any]:
    from engage.services.ai_reply import lead_summary_refresh

    return lead_summary_refresh(lead_id=job.payload["lead_id"])
