"""Operations run the AI side of engage; Marketing reads it (see crm/permissions.py)."""

from django.db import migrations

from crm.permissions import MARKETING, OPERATIONS, grant_operation


def codenames(actions, models):
    return [f"{action}_{model}" for model in models for action in actions]


class Migration(migrations.Migration):
    dependencies = [
        ("engage", "0007_smartengage_default_templates"),
        ("crm", "0003_operations_marketing_groups"),
    ]

    operations = [
        grant_operation(
            OPERATIONS,
            "engage",
            codenames(["view", "add", "change"], ["aiconfig", "knowledgedoc", "bannedphrase", "fallbacktext",
                                                  "prompttemplate", "prompttemplateversion", "sequence",
                                                  "sequencestep"])
            + codenames(["view", "change"], ["enrollment"])
            + codenames(["view"], ["aisession"]),
        ),
        # Marketing reads; the template studio grants it the right to edit templates.
        grant_operation(
            MARKETING,
            "engage",
            codenames(["view"], ["prompttemplate", "prompttemplateversion", "knowledgedoc", "fallbacktext",
                                 "bannedphrase", "aiconfig", "aisession", "sequence", "sequencestep", "enrollment"]),
        ),
    ]
