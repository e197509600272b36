"""Reads of the job ledger, always scoped to a company."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Min, Q
from django.utils import timezone

from crm.models import Company
from engage.ledger.models import Job


def queue_stats(*, company: Company) -> dict[str, Any]:
    """Counts of the company's jobs by state, and how long its oldest due queued job has waited, in seconds.

    `queued` includes jobs scheduled for later (also counted in `scheduled`); the age counts only
    jobs that are due, from when they came due, so a follow-up planned for tomorrow is not "late".
    """
    now = timezone.now()
    aggregate = Job.objects.filter(company=company).aggregate(
        queued=Count("id", filter=Q(status=Job.Status.QUEUED)),
        scheduled=Count("id", filter=Q(status=Job.Status.QUEUED, next_run_at__gt=now)),
        processing=Count("id", filter=Q(status=Job.Status.PROCESSING)),
        completed=Count("id", filter=Q(status=Job.Status.COMPLETED)),
        failed=Count("id", filter=Q(status=Job.Status.FAILED)),
        dlq=Count("id", filter=Q(status=Job.Status.DEAD)),
        cancelled=Count("id", filter=Q(status=Job.Status.CANCELLED)),
        oldest_due_at=Min("next_run_at", filter=Q(status=Job.Status.QUEUED, next_run_at__lte=now)),
    )
    oldest = aggregate.pop("oldest_due_at")
    aggregate["oldest_queued_age_seconds"] = round((now - oldest).total_seconds(), 3) if oldest is not None else None
    aggregate["company_id"] = company.pk
    return aggregate


def jobs_oldest_due_age_seconds() -> float | None:
    """Across every company: how long the oldest due queued job has waited (None when none waits). One
    indexed read (the job_due partial index), for /health?deep=1."""
    now = timezone.now()
    oldest = (
        Job.objects.filter(status=Job.Status.QUEUED, next_run_at__lte=now)
        .order_by("next_run_at").values_list("next_run_at", flat=True).first()
    )
    return round((now - oldest).total_seconds(), 3) if oldest is not None else None
