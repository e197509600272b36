"""The hourly refresh of the experiments' outcomes; see shokti/schedules.py."""

from django.db import migrations

from shokti.schedules import schedules_operation

SCHEDULES = [
    {
        "name": "experiments: refresh outcomes",
        "task": "engage.experiments_refresh",
        "crontab": {"minute": "20", "hour": "*"},
        "priority": 5,
        "description": "Hourly at :20: one ledger job per running experiment (and per one stopped in the last 28 days) recomputes its units' outcomes, which the results read.",
    },
]


class Migration(migrations.Migration):
    dependencies = [
        ("engage", "0033_experiments"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [schedules_operation(SCHEDULES)]
