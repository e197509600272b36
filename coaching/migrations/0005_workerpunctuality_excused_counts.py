"""The stored windows' new excused counts (0004) for the rows written before them: the daily rolls them by one day
from yesterday's values, so they must be right (and the selection's `excused` skip reason reads them). Excused
bookings are few (a manager accepted each), so they are read one by one."""

from django.db import migrations

LATE_OUTCOMES = ("late", "no_show", "cancelled_by_worker")


def excused_counts_fill(apps, schema_editor):
    BookingPunctuality = apps.get_model("coaching", "BookingPunctuality")
    WorkerPunctuality = apps.get_model("coaching", "WorkerPunctuality")
    rows: dict = {}
    excused = (BookingPunctuality.objects.filter(is_excused=True, outcome__in=LATE_OUTCOMES)
               .values_list("worker_id", "local_date"))
    for worker_id, local_date in excused.iterator(chunk_size=2000):
        if worker_id not in rows:
            rows[worker_id] = WorkerPunctuality.objects.filter(worker_id=worker_id).first()
        row = rows[worker_id]
        if row is None:
            continue
        age = (row.as_of - local_date).days
        if 0 <= age < 28:
            row.excused_28 += 1
        if 0 <= age < 14:
            row.excused_14 += 1
    for row in rows.values():
        if row is not None:
            row.save(update_fields=["excused_14", "excused_28"])


class Migration(migrations.Migration):
    dependencies = [("coaching", "0004_punctuality_at_scale")]

    operations = [migrations.RunPython(excused_counts_fill, migrations.RunPython.noop)]
