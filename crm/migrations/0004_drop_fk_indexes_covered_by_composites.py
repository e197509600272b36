"""Drop single-column foreign-key indexes that a composite index already starts with.

Every inbound message, job and event wrote these on insert for nothing: lookups by the column use
the composite index (e.g. message_company_created for company_id). Only the indexes go; the
foreign-key constraints stay as they are (Django's AlterField would drop and re-validate them, a
full scan of each table under lock), hence the state/database split.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('crm', '0003_operations_marketing_groups'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
            migrations.AlterField(
                model_name='contact',
                name='company',
                field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='contacts', to='crm.company', verbose_name='company'),
            ),
            migrations.AlterField(
                model_name='event',
                name='company',
                field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='events', to='crm.company', verbose_name='company'),
            ),
            migrations.AlterField(
                model_name='event',
                name='contact',
                field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='events', to='crm.contact', verbose_name='contact'),
            ),
            migrations.AlterField(
                model_name='event',
                name='target_type',
                field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, to='contenttypes.contenttype', verbose_name='target type'),
            ),
            migrations.AlterField(
                model_name='lead',
                name='company',
                field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='leads', to='crm.company', verbose_name='company'),
            ),
            ],
            database_operations=[
                migrations.RunSQL(
                    'DROP INDEX IF EXISTS "crm_contact_company_id_5104bcf2"',
                    reverse_sql='CREATE INDEX "crm_contact_company_id_5104bcf2" ON "crm_contact" ("company_id")',
                ),
                migrations.RunSQL(
                    'DROP INDEX IF EXISTS "crm_event_company_id_75f6d967"',
                    reverse_sql='CREATE INDEX "crm_event_company_id_75f6d967" ON "crm_event" ("company_id")',
                ),
                migrations.RunSQL(
                    'DROP INDEX IF EXISTS "crm_event_contact_id_1afe96ab"',
                    reverse_sql='CREATE INDEX "crm_event_contact_id_1afe96ab" ON "crm_event" ("contact_id")',
                ),
                migrations.RunSQL(
                    'DROP INDEX IF EXISTS "crm_event_target_type_id_3ada0875"',
                    reverse_sql='CREATE INDEX "crm_event_target_type_id_3ada0875" ON "crm_event" ("target_type_id")',
                ),
                migrations.RunSQL(
                    'DROP INDEX IF EXISTS "crm_lead_company_id_a70d7b4c"',
                    reverse_sql='CREATE INDEX "crm_lead_company_id_a70d7b4c" ON "crm_lead" ("company_id")',
                ),
            ],
        ),
    ]
