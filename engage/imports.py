"""Background imports of crm data: `crm_import` (40), a console import of a large file, in slices, on the job ledger.

crm cannot import engage, so crm.feed.imports asks for background work through a hook that
EngageConfig.ready registers (`import_job_enqueue`); the handler calls back into crm's service.
Each slice runs for up to IMPORT_SLICE_SECONDS (well under the task time limit), then queues the
next one keyed by the checkpoint it reached (`import:<id>:<rows done>`), so a slice is queued once,
and a retried or replayed slice resumes from the last committed batch.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings

from crm.feed.imports import import_record_fail, import_record_run
from crm.models import ImportRecord
from engage.ledger.registry import job_handler
from engage.ledger.services import job_enqueue

IMPORT_TASK = "crm_import"


def import_job_enqueue(*, import_record: ImportRecord) -> None:
    """crm's import hook: queue the record's next slice in the caller's transaction."""
    job_enqueue(
        company=import_record.company,
        task_name=IMPORT_TASK,
        payload={"import_record_id": import_record.pk},
        idempotency_key=f"import:{import_record.pk}:{import_record.processed_rows}",
    )


@job_handler(IMPORT_TASK, priority=40)
def crm_import(job) -> dict[str, Any]:
    record_id = job.payload["import_record_id"]
    deadline = time.monotonic() + int(getattr(settings, "IMPORT_SLICE_SECONDS", 240))
    try:
        finished = import_record_run(import_record_id=record_id, deadline=deadline)
    except Exception as error:
        if job.attempts >= job.max_attempts:
            import_record_fail(import_record_id=record_id, message=f"{type(error).__name__}: {error}")
        raise
    record = ImportRecord.objects.select_related("company").get(pk=record_id)
    if not finished:
        import_job_enqueue(import_record=record)
    return {"finished": finished, "processed_rows": record.processed_rows}
