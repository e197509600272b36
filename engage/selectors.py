"""Reads of engage, always scoped to a company."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Min, Q
from django.utils import timezone

from crm.models import Company
from engage.models import Job


def queue_stats(*, company: Company) -> dict[str, Any]:
    """Counts of the company's jobs by state, and the age of its oldest queued job in seconds."""
    aggregate = Job.objects.filter(company=company).aggregate(
        queued=Count("id", filter=Q(status=Job.Status.QUEUED)),
        processing=Count("id", filter=Q(status=Job.Status.PROCESSING)),
        completed=Count("id", filter=Q(status=Job.Status.COMPLETED)),
        failed=Count("id", filter=Q(status=Job.Status.FAILED)),
        dlq=Count("id", filter=Q(status=Job.Status.DEAD)),
        oldest_queued_at=Min("created_at", filter=Q(status=Job.Status.QUEUED)),
    )
    oldest = aggregate.pop("oldest_queued_at")
    aggregate["oldest_queued_age_seconds"] = (
        round((timezone.now() - oldest).total_seconds(), 3) if oldest is not None else None
    )
    aggregate["company_id"] = company.pk
    return aggregate
