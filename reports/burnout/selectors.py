"""Reads of burnout alerts: the dashboard card's count, the coaching hook's provider, the by-segment summary."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count, Q

from crm.models import Company
from reports.burnout.models import BurnoutAlert

UNRESOLVED = ~Q(status=BurnoutAlert.Status.RESOLVED)


def open_alert_count(company: Company) -> int:
    """Alerts of the company not resolved yet (open, acknowledged or acted on): the dashboard's card."""
    return BurnoutAlert.objects.filter(UNRESOLVED, company=company).count()


def workers_under_open_alert(*, company: Company, worker_ids: Iterable[int]) -> set[int]:
    """coaching's burnout provider: the workers among `worker_ids` with an unresolved alert (no punctuality
    coaching for them; CoachNova sends a care message instead)."""
    worker_ids = list(worker_ids)
    if not worker_ids:
        return set()
    return set(BurnoutAlert.objects.filter(UNRESOLVED, company=company, worker_id__in=worker_ids)
               .values_list("worker_id", flat=True))


def alerts_by_segment(*, alerts) -> list[dict]:
    """Unresolved alerts counted by zone and service category (the admin's default view: teams, not people)."""
    rows = (alerts.filter(UNRESOLVED).values("zone", "service_category")
            .annotate(total=Count("pk"), alert=Count("pk", filter=Q(level=BurnoutAlert.Level.ALERT)),
                      watch=Count("pk", filter=Q(level=BurnoutAlert.Level.WATCH)),
                      unacknowledged=Count("pk", filter=Q(status=BurnoutAlert.Status.OPEN)))
            .order_by("zone", "service_category"))
    return list(rows)


def unresolved_alert_of(*, worker) -> BurnoutAlert | None:
    """The worker's unresolved alert (at most one: a partial unique index), for their page."""
    return BurnoutAlert.objects.filter(UNRESOLVED, company_id=worker.company_id, worker=worker).first()
