"""Marketing launches and watches its campaigns too (issue 19: a marketer runs a campaign and watches it finish):
Run now, Dry run, Pause, Resume, Cancel and Retry failed are the change permission on campaigns and runs."""

from django.db import migrations

from crm.permissions import MARKETING, grant_operation


class Migration(migrations.Migration):
    dependencies = [
        ("engage", "0030_message_attachment"),
    ]

    operations = [
        grant_operation(MARKETING, "engage", ["change_campaign", "change_campaignrun"]),
    ]
