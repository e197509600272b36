"""The staff groups and the permissions they carry, granted by data migrations.

Two groups exist (created by `crm/migrations/0003_operations_marketing_groups.py`, which writes
out the same grants as `CRM_GRANTS` below so it never changes after the fact):

- **Operations** runs the console: view/add/change on the CRM graph (contacts, pipelines, stages,
  leads, services, customers, workers, bookings, API keys), view/change on companies, view on
  memberships and on the event timeline (an audit trail nobody edits). No delete, no users.
- **Marketing** reads CRM data; the template studio grants its own permissions later.

Later apps add permissions for their models in a data migration of their own, because a
migration cannot grant permissions of models that do not exist yet:

    from crm.permissions import OPERATIONS, grant_operation

    class Migration(migrations.Migration):
        dependencies = [("engage", "0004_campaign"), ("crm", "0003_operations_marketing_groups")]
        operations = [
            grant_operation(OPERATIONS, "engage", ["view_job", "change_job", "view_message"]),
        ]

`grant_operation` makes sure the app's permissions exist first (they are normally created by
`post_migrate`, which runs only after all migrations).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.db import migrations

OPERATIONS = "Operations"
MARKETING = "Marketing"

CRM_GRAPH = ["contact", "pipeline", "stage", "lead", "service", "customer", "worker", "booking"]


def _codenames(actions: Iterable[str], models: Iterable[str]) -> list[str]:
    return [f"{action}_{model}" for model in models for action in actions]


# group -> app label -> permission codenames
CRM_GRANTS: dict[str, dict[str, list[str]]] = {
    OPERATIONS: {
        "crm": _codenames(["view", "add", "change"], [*CRM_GRAPH, "apikey"])
        + _codenames(["view", "change"], ["company"])
        + _codenames(["view"], ["membership", "event"]),
    },
    MARKETING: {
        "crm": _codenames(["view"], [*CRM_GRAPH, "company", "event"]),
    },
}


def permissions_ensure(*, apps=global_apps, app_labels: Iterable[str]) -> None:
    """Create the content types and default permissions of `app_labels` now, not at post_migrate."""
    for app_label in app_labels:
        app_config = apps.get_app_config(app_label)
        # Historical app configs have no models module; create_permissions skips those.
        previous = getattr(app_config, "models_module", None)
        app_config.models_module = previous or True
        try:
            create_permissions(app_config, apps=apps, verbosity=0)
        finally:
            app_config.models_module = previous


def grant(group_name: str, app_label: str, codenames: Iterable[str], *, apps=global_apps) -> None:
    """Give `group_name` (created if missing) the permissions `codenames` of `app_label`; idempotent."""
    codenames = list(codenames)
    permissions_ensure(apps=apps, app_labels=[app_label])
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    group, _ = group_model.objects.get_or_create(name=group_name)
    permissions = list(
        permission_model.objects.filter(content_type__app_label=app_label, codename__in=codenames)
    )
    missing = sorted(set(codenames) - {permission.codename for permission in permissions})
    if missing:
        raise LookupError(f"No such permissions in {app_label}: {', '.join(missing)}")
    group.permissions.add(*permissions)


def grant_operation(group_name: str, app_label: str, codenames: Iterable[str]) -> migrations.RunPython:
    """A migration operation granting `codenames` of `app_label` to `group_name` (no-op in reverse)."""
    codenames = list(codenames)

    def forwards(apps, schema_editor):
        grant(group_name, app_label, codenames, apps=apps)

    return migrations.RunPython(forwards, migrations.RunPython.noop)
