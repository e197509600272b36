"""The daily punctuality refresh and the weekly CoachNova run (see shokti/schedules.py)."""

from django.db import migrations

from shokti.schedules import schedules_operation

SCHEDULES = [
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
]


class Migration(migrations.Migration):
    dependencies = [
        ("coaching", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [schedules_operation(SCHEDULES)]
