"""Configurations still on the default hand-off keywords get the wider default ("talk to someone", "customer
care", "কারো সাথে কথা বলতে চাই" ...). A list a company edited is left as it is."""

from django.db import migrations

PREVIOUS = ["human", "agent", "real person", "representative", "মানুষ", "এজেন্ট", "প্রতিনিধি"]
WIDENED = [
    "human", "agent", "real person", "representative", "talk to someone", "speak to someone", "talk to a person",
    "speak to a person", "customer care", "customer service",
    "মানুষ", "এজেন্ট", "প্রতিনিধি", "কাস্টমার কেয়ার", "কারো সাথে কথা বলতে চাই", "কারও সঙ্গে কথা বলতে চাই",
    "manusher sathe kotha", "manush er sathe kotha",
]


def widen(apps, schema_editor):
    AIConfig = apps.get_model("engage", "AIConfig")
    for config in AIConfig.objects.only("pk", "handoff_keywords").iterator():
        if config.handoff_keywords == PREVIOUS:
            AIConfig.objects.filter(pk=config.pk).update(handoff_keywords=WIDENED)


def narrow(apps, schema_editor):
    AIConfig = apps.get_model("engage", "AIConfig")
    for config in AIConfig.objects.only("pk", "handoff_keywords").iterator():
        if config.handoff_keywords == WIDENED:
            AIConfig.objects.filter(pk=config.pk).update(handoff_keywords=PREVIOUS)


class Migration(migrations.Migration):
    dependencies = [("engage", "0035_experiment_permissions")]

    operations = [migrations.RunPython(widen, narrow)]
