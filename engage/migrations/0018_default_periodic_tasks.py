"""The default beat schedules (django-celery-beat PeriodicTasks), made once by this migration.

A frozen copy of the definitions as they were when it was written (shokti.schedules.DEFAULT_SCHEDULES
documents the current set; a new default schedule gets its own data migration). Create-if-missing:
a schedule that exists by name is left exactly as ops left it in the admin (time, arguments,
enabled), so running this on a database that already has them changes nothing. Reversible: going
back deletes the schedules of these names.
"""

from django.db import migrations

from shokti.schedules import schedules_operation

SCHEDULES = [
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

class Migration(migrations.Migration):
    dependencies = [
        ("engage", "0017_campaign_run_disabled_status"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [schedules_operation(SCHEDULES)]
