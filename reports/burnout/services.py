"""Burnout alerts: the evaluation (one company, every worker with jobs lately), the lifecycle a manager drives
(acknowledge, act with a note, resolve with an outcome) and the notifications of a new alert.

The evaluation runs as a ledger job per company (`burnout_evaluate`, queued by the hourly beat) and is idempotent:
an alert is opened by one INSERT guarded by the partial unique index "one unresolved alert per worker"; an open
alert is updated in place (level, numbers); numbers back under every threshold mark it `cleared_at`, but only a
manager resolves it, with the outcome kept."""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, connection, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext, gettext_noop

from coaching.punctuality import company_zone
from crm.models import Booking, Company, Membership, User, Worker
from crm.services import event_record
from engage import api as engage
from reports.burnout import counts_sql
from reports.burnout.models import BurnoutAlert, BurnoutSettings
from reports.burnout.rules import HISTORY_DAYS, Counts, Evaluation, Job, Thresholds, counts_of, evaluate, judge

logger = logging.getLogger(__name__)

EVALUATE_TASK = "burnout_evaluate"
NOTIFY_TASK = "burnout_alert_notify"
ALERT_EVENT = "worker.burnout_alert"  # also the outbound webhook's event (engage.webhooks.WEBHOOK_EVENT_TYPES)
MANAGER_ROLES = (Membership.Role.OWNER, Membership.Role.OPERATIONS)
Status = BurnoutAlert.Status


def burnout_settings_for(*, company: Company) -> BurnoutSettings:
    row, _ = BurnoutSettings.objects.get_or_create(company=company)
    return row


def _jobs_by_worker(*, company: Company, since: dt.datetime, until: dt.datetime) -> dict[int, list[Job]]:
    rows = (Booking.objects.filter(company=company, worker__isnull=False, scheduled_at__gte=since,
                                   scheduled_at__lte=until)
            .values_list("worker_id", "scheduled_at", "started_at", "finished_at", "status", "cancelled_by",
                         "arrived_at", "rating", "zone", "service__category", "service__duration_minutes"))
    jobs: dict[int, list[Job]] = defaultdict(list)
    for (worker_id, scheduled, started, finished, status, cancelled_by, arrived, rating, zone, category,
         duration) in rows.iterator(chunk_size=5000):
        start = started or scheduled
        end = finished if finished and finished > start else start + dt.timedelta(minutes=duration or 60)
        cancelled = status == Booking.Status.CANCELLED
        jobs[worker_id].append(Job(
            start=start, end=end, scheduled_at=scheduled, is_cancelled=cancelled,
            is_cancelled_by_worker=cancelled and cancelled_by == Booking.CancelledBy.WORKER,
            arrived_at=arrived, rating=rating, zone=zone, category=category or "",
        ))
    return jobs


def counts_by_worker(*, company: Company, thresholds: Thresholds, zone, now: dt.datetime) -> dict[int, Counts]:
    """Every worker's numbers over the last HISTORY_DAYS: one grouped query on PostgreSQL (`counts_sql`), the jobs
    read into Python and counted by `rules.counts_of` elsewhere (the embedded mode's SQLite; the same definitions,
    tested equal)."""
    since = now - dt.timedelta(days=HISTORY_DAYS + 1)
    if connection.vendor == "postgresql":
        return counts_sql.counts_by_worker(company=company, thresholds=thresholds, zone=zone, since=since, now=now)
    jobs = _jobs_by_worker(company=company, since=since, until=now)
    return {worker_id: counts_of(worker_jobs, thresholds=thresholds, zone=zone, now=now)
            for worker_id, worker_jobs in jobs.items()}


def worker_burnout_evaluate(*, worker: Worker, now: dt.datetime | None = None) -> Evaluation:
    """The rules over one worker's jobs, without writing anything (the worker's page and the tests)."""
    now = now or timezone.now()
    company = worker.company
    jobs = _jobs_by_worker(company=company, since=now - dt.timedelta(days=HISTORY_DAYS + 1), until=now)
    return evaluate(jobs.get(worker.pk, []), thresholds=Thresholds.from_settings(burnout_settings_for(
        company=company)), zone=company_zone(company), now=now)


def burnout_evaluate(*, company: Company, now: dt.datetime | None = None, notify: bool = True) -> dict:
    """Evaluate every worker of the company with jobs in the last weeks; open, update or clear their alerts.

    `notify=False` (the demo) opens alerts without the managers' email job (the timeline event and its webhook stay)."""
    now = now or timezone.now()
    row = burnout_settings_for(company=company)
    if not row.is_enabled:
        return {"skipped": "disabled"}
    thresholds, zone = Thresholds.from_settings(row), company_zone(company)
    numbers = counts_by_worker(company=company, thresholds=thresholds, zone=zone, now=now)
    active = set(Worker.objects.filter(company=company, is_active=True).values_list("pk", flat=True)) & set(numbers)
    open_alerts = {alert.worker_id: alert for alert in
                   BurnoutAlert.objects.filter(company=company).exclude(status=Status.RESOLVED)}
    counts = {"evaluated": 0, "opened": 0, "updated": 0, "cleared": 0, "escalated": 0}
    changes: dict[int, dict] = {}
    escalated: list[BurnoutAlert] = []
    for worker_id in sorted(active | set(open_alerts)):
        result = judge(numbers.get(worker_id) or Counts(), thresholds=thresholds, zone=zone, now=now)
        counts["evaluated"] += 1
        alert = open_alerts.get(worker_id)
        if alert is None:
            if result.level and _alert_open(company=company, worker_id=worker_id, result=result, now=now,
                                            notify=notify):
                counts["opened"] += 1
            continue
        fields: dict = {"metrics": result.metrics}
        if result.level:
            fields.update(level=_higher(alert.level, result.level), signals=result.signals,
                          summary=result.summary[:500], cleared_at=None)
            counts["updated"] += 1
            if fields["level"] != alert.level:
                escalated.append(alert)
        elif alert.cleared_at is None:
            fields["cleared_at"] = now
            counts["cleared"] += 1
        if any(getattr(alert, name) != value for name, value in fields.items()):
            changes[alert.pk] = fields
    # Only an unresolved alert is touched (a manager may resolve one meanwhile); an alert whose numbers did not
    # move costs nothing but its share of one UPDATE of evaluated_at.
    unresolved = BurnoutAlert.objects.exclude(status=Status.RESOLVED)
    unresolved.filter(pk__in=[alert.pk for alert in open_alerts.values()]).update(evaluated_at=now)
    for pk, fields in changes.items():
        unresolved.filter(pk=pk).update(**fields)
    for alert in escalated:
        _alert_escalated(alert=alert, notify=notify)
    counts["escalated"] = len(escalated)
    return counts


def _alert_escalated(*, alert: BurnoutAlert, notify: bool) -> None:
    """A watch became an alert: the managers hear it as they heard the watch (timeline event, webhook, email)."""
    alert.refresh_from_db()
    if alert.status == Status.RESOLVED:
        return
    with transaction.atomic():
        event_record(company=alert.company, type=ALERT_EVENT, contact=alert.worker.contact, target=alert.worker,
                     source="burnout", payload=alert_payload(alert, is_escalation=True))
        if notify:
            engage.job_enqueue(company=alert.company, task_name=NOTIFY_TASK, payload={"alert_id": alert.pk},
                               idempotency_key=f"{NOTIFY_TASK}:{alert.pk}:{alert.level}")


def _higher(current: str, new: str) -> str:
    # An open alert never drops from alert to watch on its own: the manager resolves it.
    return BurnoutAlert.Level.ALERT if BurnoutAlert.Level.ALERT in (current, new) else BurnoutAlert.Level.WATCH


def _alert_open(*, company: Company, worker_id: int, result: Evaluation, now: dt.datetime,
                notify: bool = True) -> BurnoutAlert | None:
    """Open the worker's alert, record it (timeline, webhook) and queue the managers' email; None when another
    evaluation opened it first (the partial unique index)."""
    worker = Worker.objects.select_related("contact").get(pk=worker_id)
    try:
        with transaction.atomic():
            alert = BurnoutAlert.objects.create(
                company=company, worker=worker, level=result.level, summary=result.summary[:500],
                signals=result.signals, metrics=result.metrics, zone=result.zone, service_category=result.category,
                opened_at=now, evaluated_at=now,
            )
            event_record(company=company, type=ALERT_EVENT, contact=worker.contact, target=worker, source="burnout",
                         payload=alert_payload(alert))
            if notify:
                engage.job_enqueue(company=company, task_name=NOTIFY_TASK, payload={"alert_id": alert.pk},
                                   idempotency_key=f"{NOTIFY_TASK}:{alert.pk}")
    except IntegrityError:
        return None
    return alert


def alert_payload(alert: BurnoutAlert, *, is_escalation: bool = False) -> dict:
    """What the webhook and the timeline carry: the numbers, no judgement of the person."""
    return {"alert_id": alert.pk, "worker_id": alert.worker_id, "worker_name": alert.worker.contact.name,
            "level": alert.level, "is_escalation": is_escalation, "summary": alert.summary, "signals": alert.signals,
            "metrics": alert.metrics, "zone": alert.zone, "service_category": alert.service_category}


def managers_of(*, company: Company) -> list[str]:
    """The email addresses of the company's owners and Operations staff (active users)."""
    return sorted(set(User.objects.filter(memberships__company=company, memberships__role__in=MANAGER_ROLES,
                                          is_active=True).exclude(email="").values_list("email", flat=True)))


def burnout_alert_notify(*, alert_id: int) -> dict:
    """Email the managers about a new alert or a watch that became an alert, once per level (the ledger job may run
    twice: `notified_level` is claimed first)."""
    alert = BurnoutAlert.objects.select_related("company", "worker__contact").filter(pk=alert_id).first()
    if alert is None:
        return {"skipped": "missing"}
    recipients = managers_of(company=alert.company)
    if not recipients:
        return {"skipped": "no managers"}
    with transaction.atomic():
        claimed = (BurnoutAlert.objects.filter(pk=alert.pk).exclude(notified_level=alert.level)
                   .exclude(status=Status.RESOLVED).update(notified_level=alert.level, notified_at=timezone.now()))
        if not claimed:
            return {"skipped": "already notified"}
        # Inside the transaction: a failed send releases the claim and the ledger retries the job. In the site's
        # language (LANGUAGE_CODE): users have no language of their own yet.
        with translation.override(settings.LANGUAGE_CODE):
            subject, body = _email_subject(alert), _email_body(alert)
        send_mail(subject=subject, message=body, from_email=None, recipient_list=recipients)
    return {"notified": len(recipients)}


def _email_subject(alert: BurnoutAlert) -> str:
    return gettext("[%(company)s] Burnout %(level)s: %(worker)s") % {
        "company": alert.company.name, "level": alert.get_level_display().lower(), "worker": alert.worker.contact.name}


def _email_body(alert: BurnoutAlert) -> str:
    """The managers' email in the active language, the numbers as placeholders."""
    lines = [gettext("%(worker)s may be overworked: %(numbers)s.") % {"worker": alert.worker.contact.name,
                                                                      "numbers": alert.explanation}]
    if alert.notified_level:
        lines.append(gettext("The watch on this worker is now an alert."))
    lines += [
        "",
        gettext("Zone: %(zone)s; service: %(service)s.") % {"zone": alert.zone or "—",
                                                            "service": alert.service_category or "—"},
        gettext("CoachNova sends this worker a care message instead of punctuality coaching while the alert is "
                "open."),
        gettext("Acknowledge it, record what you did (fewer jobs, a day off) and resolve it in the console:"),
        f"{settings.SITE_URL.rstrip('/')}/admin/reports/burnoutalert/{alert.pk}/change/",
    ]
    return "\n".join(lines) + "\n"


def _authorize(*, alert: BurnoutAlert, actor: User) -> None:
    """Owners and Operations of the alert's company (or a superuser) drive its lifecycle."""
    if actor.is_superuser:
        return
    if not Membership.objects.filter(user=actor, company_id=alert.company_id, role__in=MANAGER_ROLES).exists():
        raise PermissionDenied(gettext_noop("Only the company's owners and Operations staff handle burnout alerts."))


def _transition(*, alert: BurnoutAlert, actor: User, allowed_from: tuple[str, ...], event: str, **fields) -> bool:
    _authorize(alert=alert, actor=actor)
    with transaction.atomic():
        changed = BurnoutAlert.objects.filter(pk=alert.pk, status__in=allowed_from).update(**fields)
        if not changed:
            return False
        alert.refresh_from_db()
        event_record(company=alert.company, type=event, contact=alert.worker.contact, target=alert.worker,
                     actor=actor, source="burnout",
                     payload={"alert_id": alert.pk, "level": alert.level, "status": alert.status,
                              **{key: value for key, value in fields.items()
                                 if key in ("action", "action_note", "outcome", "outcome_note")}})
    return True


def burnout_alert_acknowledge(*, alert: BurnoutAlert, actor: User) -> bool:
    """open → acknowledged (False when it was not open)."""
    return _transition(alert=alert, actor=actor, allowed_from=(Status.OPEN,), event="burnout.acknowledged",
                       status=Status.ACKNOWLEDGED, acknowledged_at=timezone.now(), acknowledged_by=actor)


def burnout_alert_act(*, alert: BurnoutAlert, actor: User, action: str, note: str) -> bool:
    """Record what was done (fewer jobs, a day off ...); acknowledges an open alert on the way."""
    if action not in BurnoutAlert.Action.values:
        raise ValidationError({"action": ValidationError(gettext_noop("Unknown action %(action)r."), params={"action": action})})
    if not note.strip():
        raise ValidationError({"note": gettext_noop("Say what was done.")})
    now = timezone.now()
    fields = {"status": Status.ACTED, "acted_at": now, "acted_by": actor, "action": action, "action_note": note.strip()}
    if alert.acknowledged_at is None:
        fields.update(acknowledged_at=now, acknowledged_by=actor)
    return _transition(alert=alert, actor=actor, allowed_from=(Status.OPEN, Status.ACKNOWLEDGED, Status.ACTED),
                       event="burnout.acted", **fields)


def burnout_alert_resolve(*, alert: BurnoutAlert, actor: User, outcome: str, note: str = "") -> bool:
    """Close the alert with its outcome (kept); the worker may get a new alert at a later evaluation."""
    if outcome not in BurnoutAlert.Outcome.values:
        raise ValidationError({"outcome": ValidationError(gettext_noop("Unknown outcome %(outcome)r."), params={"outcome": outcome})})
    return _transition(alert=alert, actor=actor, allowed_from=(Status.OPEN, Status.ACKNOWLEDGED, Status.ACTED),
                       event="burnout.resolved", status=Status.RESOLVED, resolved_at=timezone.now(),
                       resolved_by=actor, outcome=outcome, outcome_note=note.strip())


def burnout_alert_viewed(*, alert: BurnoutAlert, actor: User, page: str = "alert") -> None:
    """A manager saw one worker's burnout details (the alert's page, or the worker's page showing it): the
    worker's timeline says who looked, where and when."""
    event_record(company=alert.company, type="burnout.viewed", contact=alert.worker.contact, target=alert.worker,
                 actor=actor, source="burnout", payload={"alert_id": alert.pk, "page": page})


def burnout_evaluate_all(*, hour_key: str) -> dict:
    """The beat: one `burnout_evaluate` job per active company, keyed by the hour (a repeat is a no-op)."""
    queued = 0
    with transaction.atomic():
        for company in Company.objects.filter(is_active=True).only("pk"):
            engage.job_enqueue(company=company, task_name=EVALUATE_TASK, payload={},
                               idempotency_key=f"{EVALUATE_TASK}:{company.pk}:{hour_key}")
            queued += 1
    return {"queued": queued}
