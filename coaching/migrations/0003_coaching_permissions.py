"""Operations staff run CoachNova: settings, runs and their workers (accepting a reason is a change of the row);
marketing reads them."""

from django.db import migrations

from crm.permissions import MARKETING, OPERATIONS, grant_operation

OPERATIONS_GRANTS = [
    "view_coachingsettings", "change_coachingsettings", "add_coachingsettings",
    "view_coachingrun", "change_coachingrun",
    "view_coachingrecipient", "change_coachingrecipient",
    "view_bookingpunctuality", "view_workerpunctuality", "change_workerpunctuality",
]
MARKETING_GRANTS = ["view_coachingsettings", "view_coachingrun", "view_coachingrecipient", "view_workerpunctuality"]


class Migration(migrations.Migration):
    dependencies = [("coaching", "0002_coaching_schedules"), ("auth", "0012_alter_user_first_name_max_length")]

    operations = [
        grant_operation(OPERATIONS, "coaching", OPERATIONS_GRANTS),
        grant_operation(MARKETING, "coaching", MARKETING_GRANTS),
    ]
