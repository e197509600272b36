"""The reports' beat task: it only queues ledger jobs."""

from __future__ import annotations

from celery import shared_task

from reports.rollups.services import rollups_tick


@shared_task(name="reports.rollups_tick", ignore_result=True)
def reports_rollups_tick() -> dict:
    """Beat (every few minutes): one `reports_rollups_refresh` job per active company."""
    return rollups_tick()
