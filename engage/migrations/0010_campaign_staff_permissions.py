"""Operations run campaigns (run now, dry run, pause, cancel, retry: the change permission); Marketing reads them
(0031 lets Marketing run them too).

`bypass_frequency_caps` is granted to nobody by default: an owner gives it to the few who need it.
"""

from django.db import migrations

from crm.permissions import MARKETING, OPERATIONS, grant_operation


class Migration(migrations.Migration):
    dependencies = [
        ("engage", "0009_job_message_staff_permissions"),
        ("crm", "0003_operations_marketing_groups"),
    ]

    operations = [
        grant_operation(
            OPERATIONS,
            "engage",
            ["view_campaign", "add_campaign", "change_campaign", "view_campaignrun", "change_campaignrun",
             "view_campaignrecipient"],
        ),
        grant_operation(MARKETING, "engage", ["view_campaign", "view_campaignrun", "view_campaignrecipient"]),
    ]
