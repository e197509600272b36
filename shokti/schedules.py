"""The default beat schedules: the PeriodicTasks a migrated database has in django-celery-beat's tables.

Data migrations make them (engage/migrations/0018_default_periodic_tasks.py, with its own frozen
copy of these definitions), once: a schedule that exists by name is left exactly as ops left it in
the admin (time, arguments, enabled), so a later `migrate` changes nothing, and one deleted by hand
stays deleted. Ops edit them in the admin (Periodic tasks).

To add a periodic task: append it here (one dict: `name` unique and stable, `task` the Celery task
name, exactly one of `crontab` (minute/hour/day_of_week/day_of_month/month_of_year, UTC) or
`interval` (every/period), `priority` (Celery step 0-9, 0 first), `description`) and write a data
migration that creates it the same way; shokti/tests/test_schedules.py checks that a migrated
database has every entry as written here. `schedules_missing()` (and `manage.py
setup_periodic_tasks`, which reports) lists the ones a database lacks.
"""

from __future__ import annotations

from typing import Any

DEFAULT_SCHEDULES: list[dict[str, Any]] = [
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


def schedules_missing() -> list[str]:
    """The names of DEFAULT_SCHEDULES that have no PeriodicTask in the database."""
    from django_celery_beat.models import PeriodicTask

    present = set(PeriodicTask.objects.filter(name__in=[s["name"] for s in DEFAULT_SCHEDULES]).values_list("name", flat=True))
    return [schedule["name"] for schedule in DEFAULT_SCHEDULES if schedule["name"] not in present]
