"""The Operations and Marketing staff groups with their CRM permissions (see crm/permissions.py).

The grants are written out here, not imported, so this migration keeps doing what it did
when crm.permissions changes.
"""

from django.db import migrations

from crm.permissions import grant

GRAPH = ["contact", "pipeline", "stage", "lead", "service", "customer", "worker", "booking"]

GRANTS = {
    "Operations": [f"{action}_{model}" for model in [*GRAPH, "apikey"] for action in ("view", "add", "change")]
    + ["view_company", "change_company", "view_membership", "view_event"],
    "Marketing": [f"view_{model}" for model in [*GRAPH, "company", "event"]],
}


def groups_create(apps, schema_editor):
    for group_name, codenames in GRANTS.items():
        grant(group_name, "crm", codenames, apps=apps)


def groups_delete(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=list(GRANTS)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0002_lead_handoff"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(groups_create, groups_delete)]
