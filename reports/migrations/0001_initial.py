from django.db import migrations


class Migration(migrations.Migration):
    """The app's first node: rollups and burnout alerts add their tables after it."""

    initial = True
    dependencies = [("coaching", "0003_coaching_permissions")]
    operations: list = []
