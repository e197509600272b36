"""Experiments are the marketers' (issue 22: "a marketer sets up new reminder wording vs current, 10% holdout"):
Marketing sets them up, runs and stops them and sets the company holdout; Operations reads them."""

from django.db import migrations

from crm.permissions import MARKETING, OPERATIONS, grant_operation

MODELS = ["experiment", "experimentvariant", "experimentsettings"]


class Migration(migrations.Migration):
    dependencies = [
        ("engage", "0034_experiments_refresh_schedule"),
    ]

    operations = [
        grant_operation(MARKETING, "engage", [f"{action}_{model}" for model in MODELS
                                              for action in ("view", "add", "change")]),
        grant_operation(OPERATIONS, "engage", [f"view_{model}" for model in MODELS]),
    ]
