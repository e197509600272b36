"""`sequence_step` (70): send one due step of a sequence enrollment and advance it.

Email steps are handed on to the ledger's `email_sequence` job (60, engage/handlers/messaging.py).
"""

from __future__ import annotations

from typing import Any

from engage.handlers import job_handler


@job_handler("sequence_step", priority=70)
def sequence_step(job) -> dict[str, Any]:
    from engage.services.sequences import sequence_step_run

    return sequence_step_run(job=job, enrollment_id=job.payload["enrollment_id"], step_id=job.payload["step_id"])
