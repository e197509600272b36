"""The beat schedule that reads the bounce mailbox (shokti/schedules.py; a frozen copy here)."""

from django.db import migrations

from shokti.schedules import schedules_operation

SCHEDULES = [
    {
        "name": "channels: read email bounces and complaints",
        "task": "channels_app.email_bounces_poll",
        "interval": {"every": 5, "period": "minutes"},
        "priority": 4,
        "description": "Reads EMAIL_BOUNCE_MAILBOX_URL (VERP bounces, ARF complaints): a hard bounce or a complaint revokes email consent and shows on the message. Does nothing when unset.",
    },
]


class Migration(migrations.Migration):
    dependencies = [
        ("channels_app", "0006_email_deliveries"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [schedules_operation(SCHEDULES)]
