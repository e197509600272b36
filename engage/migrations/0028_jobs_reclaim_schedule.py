"""The 10-second lease reclaim (jobs whose worker died, jobs whose publish failed); see shokti/schedules.py."""

from django.db import migrations

from shokti.schedules import schedules_operation

SCHEDULES = [
    {
        "name": "jobs: reclaim expired leases",
        "task": "engage.jobs_reclaim",
        "interval": {"every": 10, "period": "seconds"},
        "priority": 0,
        "description": "Hands out again jobs whose worker stopped renewing their lease (killed, lost) and due jobs whose publish failed.",
    },
]


class Migration(migrations.Migration):
    dependencies = [
        ("engage", "0027_job_lease_expires_at"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [schedules_operation(SCHEDULES)]
