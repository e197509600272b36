"""The default beat schedules: the PeriodicTasks a migrated database has in django-celery-beat's tables.

Data migrations make them (engage/migrations/0018_default_periodic_tasks.py and later ones, each
with its own frozen copy of its definitions, through `schedules_operation`), once: a schedule that exists by name is left exactly as ops left it in
the admin (time, arguments, enabled), so a later `migrate` changes nothing, and one deleted by hand
stays deleted. Ops edit them in the admin (Periodic tasks).

To add a periodic task: append it here (one dict: `name` unique and stable, `task` the Celery task
name, exactly one of `crontab` (minute/hour/day_of_week/day_of_month/month_of_year, UTC) or
`interval` (every/period), `priority` (Celery step 0-9, 0 first), `description`) and write a data
migration that creates it: `operations = [schedules_operation([<a frozen copy of the dict>])]`.
shokti/tests/test_schedules.py checks that a migrated database has every entry as written here.
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
    {
        "name": "housekeeping: purge expired short links and old skip rows",
        "task": "engage.housekeeping",
        "crontab": {"minute": "30", "hour": "3"},
        "priority": 5,
        "description": "03:30 UTC: deletes short links 30 days past their expiry and campaign skip rows past SMARTENGAGE_SKIPPED_RETENTION_DAYS.",
    },
    {
        "name": "channels: read email bounces and complaints",
        "task": "channels_app.email_bounces_poll",
        "interval": {"every": 5, "period": "minutes"},
        "priority": 4,
        "description": "Reads EMAIL_BOUNCE_MAILBOX_URL (VERP bounces, ARF complaints): a hard bounce or a complaint revokes email consent and shows on the message. Does nothing when unset.",
    },
    {
        "name": "jobs: reclaim expired leases",
        "task": "engage.jobs_reclaim",
        "interval": {"every": 10, "period": "seconds"},
        "priority": 0,
        "description": "Hands out again jobs whose worker stopped renewing their lease (killed, lost) and due jobs whose publish failed.",
    },
    {
        "name": "coaching: daily punctuality refresh",
        "task": "coaching.punctuality_daily",
        "crontab": {"minute": "15", "hour": "18"},
        "priority": 5,
        "description": "18:15 UTC (00:15 Asia/Dhaka, after the local day ends): one coaching_punctuality_daily job per company (bookings changed since the watermark, rolling 14/28-day stats).",
    },
    {
        "name": "coaching: weekly CoachNova run",
        "task": "coaching.coachnova_weekly",
        "crontab": {"minute": "0", "hour": "4", "day_of_week": "0"},
        "priority": 4,
        "description": "Sundays 04:00 UTC (10:00 Asia/Dhaka): a CoachNova run for every company with CoachNova on.",
    },
    {
        "name": "reports: burnout alerts",
        "task": "reports.burnout_evaluate",
        "crontab": {"minute": "20", "hour": "*"},
        "priority": 4,
        "description": "Hourly at :20: one burnout_evaluate job per active company (opens, updates or clears burnout alerts from the bookings of the last 5 weeks, in the company's time zone).",
    },
    {
        "name": "experiments: refresh outcomes",
        "task": "engage.experiments_refresh",
        "crontab": {"minute": "20", "hour": "*"},
        "priority": 5,
        "description": "Hourly at :20: one ledger job per running experiment (and per one stopped in the last 28 days) recomputes its units' outcomes, which the results read.",
    },
    {
        "name": "reports: refresh the dashboard's rollups",
        "task": "reports.rollups_tick",
        "interval": {"every": 5, "period": "minutes"},
        "priority": 5,
        "description": "Every 5 minutes: one reports_rollups_refresh job per active company (re-aggregates its last 3 local days, or from its watermark).",
    },
]


CRONTAB_FIELDS = ("minute", "hour", "day_of_week", "day_of_month", "month_of_year")


def schedules_create(apps, schedules: list[dict[str, Any]]) -> None:
    """Create the `schedules` that have no PeriodicTask of their name (with the migration's `apps`)."""
    from django.utils import timezone

    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    existing = set(PeriodicTask.objects.filter(name__in=[s["name"] for s in schedules]).values_list("name", flat=True))
    created = False
    for schedule in schedules:
        if schedule["name"] in existing:
            continue
        if "crontab" in schedule:
            values = {name: schedule["crontab"].get(name, "*") for name in CRONTAB_FIELDS}
            clock = CrontabSchedule.objects.filter(timezone="UTC", **values).order_by("pk").first()
            clock = clock or CrontabSchedule.objects.create(timezone="UTC", **values)
            when = {"crontab": clock}
        else:
            clock = IntervalSchedule.objects.filter(**schedule["interval"]).order_by("pk").first()
            clock = clock or IntervalSchedule.objects.create(**schedule["interval"])
            when = {"interval": clock}
        PeriodicTask.objects.create(
            name=schedule["name"], task=schedule["task"], kwargs="{}", priority=schedule["priority"],
            description=schedule["description"], enabled=True, **when,
        )
        created = True
    if created:
        # A running beat reloads its schedule when this changes (the models' own save() would do it).
        PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def schedules_delete(apps, schedules: list[dict[str, Any]]) -> None:
    from django.utils import timezone

    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    PeriodicTask.objects.filter(name__in=[s["name"] for s in schedules]).delete()
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def schedules_operation(schedules: list[dict[str, Any]]):
    """A migration operation that creates `schedules` where missing (never touching an existing one); back: deletes them."""
    from django.db import migrations

    return migrations.RunPython(
        lambda apps, schema_editor: schedules_create(apps, schedules),
        lambda apps, schema_editor: schedules_delete(apps, schedules),
    )
