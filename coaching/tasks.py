"""Celery beat tasks of coaching: the daily punctuality refresh and the weekly CoachNova run (both only queue
ledger jobs)."""

from __future__ import annotations

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from coaching.runs import coaching_runs_weekly
from crm.models import Company
from engage.api import job_enqueue


@shared_task(name="coaching.punctuality_daily", ignore_result=True)
def punctuality_daily_all() -> dict:
    """Beat (daily): one `coaching_punctuality_daily` job per active company."""
    day = timezone.now().date().isoformat()
    queued = 0
    with transaction.atomic():
        for company in Company.objects.filter(is_active=True).only("pk"):
            job_enqueue(company=company, task_name="coaching_punctuality_daily", payload={},
                        idempotency_key=f"coaching_punctuality_daily:{company.pk}:{day}")
            queued += 1
    return {"queued": queued}


@shared_task(name="coaching.coachnova_weekly", ignore_result=True)
def coachnova_weekly() -> dict:
    """Beat (Sunday 04:00 UTC = 10:00 Asia/Dhaka): a CoachNova run for every company with it on."""
    return coaching_runs_weekly()
