"""The template studio's permissions (see crm/permissions.py and docs/template-studio.md).

Marketing edits (a save is a new draft version: `add_prompttemplateversion`), previews and
publishes (`publish_prompttemplate`, a custom permission) prompt templates. Operations keeps
`view` only: 0008 had given it add/change on templates and versions, taken back here because
templates are the marketers' wording.
"""

from django.db import migrations

from crm.permissions import MARKETING, OPERATIONS, grant

MARKETING_GRANTS = ["add_prompttemplateversion", "change_prompttemplate", "publish_prompttemplate"]
OPERATIONS_REVOKED = ["add_prompttemplate", "change_prompttemplate", "add_prompttemplateversion",
                      "change_prompttemplateversion"]


def _revoke(apps, group_name, codenames):
    group = apps.get_model("auth", "Group").objects.filter(name=group_name).first()
    if group is not None:
        permissions = apps.get_model("auth", "Permission").objects.filter(
            content_type__app_label="engage", codename__in=codenames
        )
        group.permissions.remove(*permissions)


def forwards(apps, schema_editor):
    grant(MARKETING, "engage", MARKETING_GRANTS, apps=apps)
    _revoke(apps, OPERATIONS, OPERATIONS_REVOKED)


def backwards(apps, schema_editor):
    grant(OPERATIONS, "engage", OPERATIONS_REVOKED, apps=apps)
    _revoke(apps, MARKETING, MARKETING_GRANTS)


class Migration(migrations.Migration):
    dependencies = [
        ("engage", "0010_campaign_staff_permissions"),
        ("crm", "0003_operations_marketing_groups"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="prompttemplate",
            options={'ordering': ['company', 'agent_type', 'locale', 'name'], 'permissions': [('publish_prompttemplate', 'Can publish and roll back prompt template versions')], 'verbose_name': 'prompt template', 'verbose_name_plural': 'prompt templates'},
        ),
        migrations.RunPython(forwards, backwards),
    ]
