"""The daily housekeeping schedule (short links, old campaign skip rows); see shokti/schedules.py."""

from django.db import migrations

from shokti.schedules import schedules_operation

SCHEDULES = [
    {
        "name": "housekeeping: purge expired short links and old skip rows",
        "task": "engage.housekeeping",
        "crontab": {"minute": "30", "hour": "3"},
        "priority": 5,
        "description": "03:30 UTC: deletes short links 30 days past their expiry and campaign skip rows past SMARTENGAGE_SKIPPED_RETENTION_DAYS.",
    },
]


class Migration(migrations.Migration):
    dependencies = [
        ("engage", "0019_short_links"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [schedules_operation(SCHEDULES)]
