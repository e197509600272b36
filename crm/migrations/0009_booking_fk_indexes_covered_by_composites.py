"""Drop the single-column indexes on booking.company, .customer and .worker: the composite indexes
(company, scheduled_at), (customer, finished_at) and (worker, scheduled_at) start with those columns and
serve the same lookups and cascades, and every index costs each booking written (the bookings feed
writes them by the thousand).

Only the indexes go: Django's own AlterField would also drop and re-add the foreign keys, and re-adding
one checks every row of the table under an exclusive lock.
"""

import django.db.models.deletion
from django.db import migrations, models

INDEXES = {
    "crm_booking_company_id_6a1f3c9f": "company_id",
    "crm_booking_customer_id_6276e8dc": "customer_id",
    "crm_booking_worker_id_ef38bbcc": "worker_id",
}


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0008_import_record"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="booking",
                    name="company",
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='bookings', to='crm.company', verbose_name='company'),
                ),
                migrations.AlterField(
                    model_name="booking",
                    name="customer",
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='bookings', to='crm.customer', verbose_name='customer'),
                ),
                migrations.AlterField(
                    model_name="booking",
                    name="worker",
                    field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='bookings', to='crm.worker', verbose_name='worker'),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql=f'DROP INDEX IF EXISTS "{name}"',
                    reverse_sql=f'CREATE INDEX IF NOT EXISTS "{name}" ON "crm_booking" ("{column}")',
                )
                for name, column in INDEXES.items()
            ],
        ),
    ]
