"""Celery task of experiments (beat): queue the outcome refresh of every running or recently stopped experiment."""

from __future__ import annotations

from celery import shared_task

from engage.experiments.services import experiments_outcomes_refresh_queue


@shared_task(name="engage.experiments_refresh", ignore_result=True)
def experiments_refresh() -> dict:
    """Beat (hourly): one ledger job per experiment that is running or stopped in the last 28 days."""
    return {"queued": experiments_outcomes_refresh_queue()}
