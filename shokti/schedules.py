"""The default beat schedules, and `schedules_sync()` which puts them in django-celery-beat's tables.

Append your periodic task to DEFAULT_SCHEDULES: one dict with
- `name`: unique, stable (it is the key: renaming it makes a second row),
- `task`: the Celery task name,
- exactly one of `crontab` (dict of minute/hour/day_of_week/day_of_month/month_of_year, UTC)
  or `interval` (dict of every/period, period one of days/hours/minutes/seconds),
- optional `kwargs` (dict), `queue` (None = the task's route), `priority` (Celery step 0-9,
  0 first; None = default), `enabled` (default True), `description`.

Sync creates what is missing and leaves existing rows exactly as they are: ops edit schedules
in the admin (time, arguments, enabled), and a deploy must not undo that. Every field of a
PeriodicTask is editable in the admin, so nothing is updated on an existing row.
`manage.py setup_periodic_tasks` runs it, and so does `migrate` (post_migrate), so a fresh
database has the schedules.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

logger = logging.getLogger(__name__)

DEFAULT_SCHEDULES: list[dict[str, Any]] = [
    # {"name": "smartengage: daily campaign", "task": "engage.tasks.campaign_daily",
    #  "crontab": {"minute": "0", "hour": "9"}, "kwargs": {}, "queue": None, "enabled": True},
    {
        "name": "jobs: relay lost and due jobs",
        "task": "engage.jobs_relay",
        "interval": {"every": 30, "period": "seconds"},
        "priority": 0,
        "description": "Re-dispatches ledger jobs whose broker message was lost or that came due; reclaims abandoned ones.",
    },
    {
        "name": "sequences: advance due steps",
        "task": "engage.sequences_advance",
        "interval": {"every": 60, "period": "seconds"},
        "priority": 2,
        "description": "Queues one sequence_step job per due enrollment (SKIP LOCKED, one job per enrollment and step).",
    },
    {
        "name": "smartengage: daily campaigns",
        "task": "engage.smartengage_campaign_run",
        "crontab": {"minute": "0", "hour": "9"},
        "priority": 3,
        "description": "09:00 UTC (15:00 Dhaka): queues a run of every active, unpaused SmartEngage campaign.",
    },
    {
        "name": "channels: relay lost WhatsApp Web deliveries",
        "task": "channels_app.whatsapp_web_relay",
        "interval": {"every": 60, "period": "seconds"},
        "priority": 0,
        "description": "Publishes again WhatsApp Web outbox rows whose task was lost (WHATSAPP_WEB_RELAY_AFTER_SECONDS); reports failed the ones pending too long.",
    },
]

CRONTAB_FIELDS = ("minute", "hour", "day_of_week", "day_of_month", "month_of_year")
INTERVAL_PERIODS = ("days", "hours", "minutes", "seconds", "microseconds")


@dataclass
class SyncReport:
    created: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def schedule_validate(*, schedule: dict[str, Any]) -> None:
    """ValueError when a DEFAULT_SCHEDULES entry is malformed: a typo must fail loudly, not silently."""
    known = {"name", "task", "crontab", "interval", "kwargs", "queue", "priority", "enabled", "description"}
    unknown = set(schedule) - known
    if unknown:
        raise ValueError(f"schedule {schedule.get('name')!r}: unknown keys {sorted(unknown)}")
    if not schedule.get("name") or not schedule.get("task"):
        raise ValueError(f"schedule {schedule!r}: `name` and `task` are required")
    if ("crontab" in schedule) == ("interval" in schedule):
        raise ValueError(f"schedule {schedule['name']!r}: give exactly one of `crontab` or `interval`")
    if "crontab" in schedule and set(schedule["crontab"]) - set(CRONTAB_FIELDS):
        raise ValueError(f"schedule {schedule['name']!r}: crontab keys are {CRONTAB_FIELDS}")
    if "interval" in schedule:
        interval = schedule["interval"]
        if set(interval) != {"every", "period"} or interval["period"] not in INTERVAL_PERIODS or interval["every"] < 1:
            raise ValueError(f"schedule {schedule['name']!r}: interval is {{'every': n >= 1, 'period': one of {INTERVAL_PERIODS}}}")


def _clock_for(schedule: dict[str, Any]) -> dict[str, Any]:
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule

    if "crontab" in schedule:
        values = {name: str(schedule["crontab"].get(name, "*")) for name in CRONTAB_FIELDS}
        crontab = CrontabSchedule.objects.filter(timezone="UTC", **values).order_by("pk").first()
        if crontab is None:
            crontab = CrontabSchedule.objects.create(timezone="UTC", **values)
        return {"crontab": crontab}
    interval = IntervalSchedule.objects.filter(**schedule["interval"]).order_by("pk").first()
    if interval is None:
        interval = IntervalSchedule.objects.create(**schedule["interval"])
    return {"interval": interval}


def schedules_sync(*, schedules: list[dict[str, Any]] | None = None) -> SyncReport:
    """Create the missing default PeriodicTasks; keep the existing ones as ops left them."""
    from django_celery_beat.models import PeriodicTask

    schedules = DEFAULT_SCHEDULES if schedules is None else schedules
    for schedule in schedules:
        schedule_validate(schedule=schedule)
    report = SyncReport()
    with transaction.atomic():
        existing = set(PeriodicTask.objects.filter(name__in=[s["name"] for s in schedules]).values_list("name", flat=True))
        for schedule in schedules:
            if schedule["name"] in existing:
                report.kept.append(schedule["name"])
                continue
            _, created = PeriodicTask.objects.get_or_create(
                name=schedule["name"],
                defaults={
                    "task": schedule["task"],
                    "kwargs": json.dumps(schedule.get("kwargs") or {}),
                    "queue": schedule.get("queue"),
                    "priority": schedule.get("priority"),
                    "enabled": schedule.get("enabled", True),
                    "description": schedule.get("description", ""),
                    **_clock_for(schedule),
                },
            )
            (report.created if created else report.kept).append(schedule["name"])
    if report.created:
        logger.info("periodic tasks created: %s", ", ".join(report.created))
    return report


def schedules_sync_after_migrate(sender, using: str = "default", **kwargs) -> None:
    """post_migrate receiver: a freshly migrated database gets the default schedules."""
    if using != "default":
        return
    schedules_sync()
