"""Marketing creates prompt templates too (a new agent type or locale), not only new versions of them."""

from django.db import migrations

from crm.permissions import MARKETING, grant_operation


class Migration(migrations.Migration):
    dependencies = [("engage", "0011_template_studio_permissions")]

    operations = [grant_operation(MARKETING, "engage", ["add_prompttemplate"])]
