"""Operations see the job ledger and replay/cancel jobs; both groups see messages (see crm/permissions.py)."""

from django.db import migrations

from crm.permissions import MARKETING, OPERATIONS, grant_operation


class Migration(migrations.Migration):
    dependencies = [
        ("engage", "0008_ai_staff_permissions"),
        ("crm", "0003_operations_marketing_groups"),
    ]

    operations = [
        grant_operation(OPERATIONS, "engage", ["view_job", "change_job", "view_message"]),
        grant_operation(MARKETING, "engage", ["view_message"]),
    ]
