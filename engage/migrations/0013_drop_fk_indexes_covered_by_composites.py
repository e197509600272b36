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
        ('crm', '0004_drop_fk_indexes_covered_by_composites'),
        ('engage', '0012_marketing_adds_templates'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
            migrations.AlterField(
                model_name='job',
                name='company',
                field=models.ForeignKey(blank=True, db_index=False, help_text='Empty for system jobs.', null=True, on_delete=django.db.models.deletion.CASCADE, related_name='jobs', to='crm.company', verbose_name='company'),
            ),
            migrations.AlterField(
                model_name='message',
                name='company',
                field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='messages', to='crm.company', verbose_name='company'),
            ),
            migrations.AlterField(
                model_name='message',
                name='contact',
                field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='messages', to='crm.contact', verbose_name='contact'),
            ),
            migrations.AlterField(
                model_name='message',
                name='lead',
                field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='messages', to='crm.lead', verbose_name='lead'),
            ),
            ],
            database_operations=[
                migrations.RunSQL(
                    'DROP INDEX IF EXISTS "engage_job_company_id_92570cd6"',
                    reverse_sql='CREATE INDEX "engage_job_company_id_92570cd6" ON "engage_job" ("company_id")',
                ),
                migrations.RunSQL(
                    'DROP INDEX IF EXISTS "engage_message_company_id_6aaa6a49"',
                    reverse_sql='CREATE INDEX "engage_message_company_id_6aaa6a49" ON "engage_message" ("company_id")',
                ),
                migrations.RunSQL(
                    'DROP INDEX IF EXISTS "engage_message_contact_id_fffb8bc4"',
                    reverse_sql='CREATE INDEX "engage_message_contact_id_fffb8bc4" ON "engage_message" ("contact_id")',
                ),
                migrations.RunSQL(
                    'DROP INDEX IF EXISTS "engage_message_lead_id_e6dcf5a5"',
                    reverse_sql='CREATE INDEX "engage_message_lead_id_e6dcf5a5" ON "engage_message" ("lead_id")',
                ),
            ],
        ),
    ]
