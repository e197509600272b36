"""Celery beat task of burnout alerts (only queues ledger jobs)."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from reports.burnout.services import burnout_evaluate_all


@shared_task(name="reports.burnout_evaluate", ignore_result=True)
def burnout_evaluate_beat() -> dict:
    """Beat (hourly): one `burnout_evaluate` job per active company."""
    return burnout_evaluate_all(hour_key=timezone.now().strftime("%Y-%m-%dT%H"))
