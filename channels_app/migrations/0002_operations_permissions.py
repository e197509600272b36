"""Operations staff manage channel accounts and read callbacks and WhatsApp Web sessions."""

from django.db import migrations

from crm.permissions import OPERATIONS, grant_operation


class Migration(migrations.Migration):
    dependencies = [
        ("channels_app", "0001_initial"),
        ("crm", "0003_operations_marketing_groups"),
    ]

    operations = [
        grant_operation(
            OPERATIONS,
            "channels_app",
            [
                "view_channelaccount",
                "add_channelaccount",
                "change_channelaccount",
                "view_providercallback",
                "view_whatsappwebsession",
            ],
        ),
    ]
