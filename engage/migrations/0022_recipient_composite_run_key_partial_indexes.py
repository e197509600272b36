"""Campaign recipients: one composite foreign key for run, campaign and company; fewer, partial indexes.

Writing a run's recipients (hundreds of thousands of skipped rows in a 1M-customer run) paid a
deferred foreign-key check a row for each of company, campaign and run at COMMIT. On PostgreSQL,
(run_id, campaign_id, company_id) now refers to the run's (id, campaign_id, company_id): one check
instead of three, which also holds a recipient's campaign and company to its run's. The company and
campaign fields keep their ORM relations (and CASCADE) without constraints of their own. SQLite
(the embedded mode) keeps its three plain foreign keys.

Indexes: run_id alone is the prefix of campaignrecipient_run_status; campaign_id alone served no
query (intents this cycle use campaignrecipient_once_per_cycle, the funnel goes by message_id);
message_id, job_id and template_version_id are empty on skipped and dry-run rows, and every lookup
by them is by a value, so their indexes become partial (IS NOT NULL).

The fields change in the state only, the database by explicit SQL: Django's AlterField would drop
and re-create (re-validate) each foreign key it touches.
"""

import django.db.models.deletion
from django.db import migrations, models

RECIPIENT = "engage_campaignrecipient"
COMPOSITE_FK = "campaignrecipient_run_campaign_company_fk"
# Django's own names for the single-column foreign keys this replaces (0006_campaigns).
SINGLE_FKS = {
    "engage_campaignrecipient_company_id_5b8af3f9_fk_crm_company_id": ("company_id", "crm_company"),
    "engage_campaignrecip_campaign_id_e9cff82e_fk_engage_ca": ("campaign_id", "engage_campaign"),
    "engage_campaignrecip_run_id_610e3999_fk_engage_ca": ("run_id", "engage_campaignrun"),
}
DROPPED_INDEXES = {
    "engage_campaignrecipient_run_id_610e3999": "run_id",
    "engage_campaignrecipient_campaign_id_e9cff82e": "campaign_id",
    "engage_campaignrecipient_message_id_5c2b3b06": "message_id",
    "engage_campaignrecipient_job_id_a792c585": "job_id",
    "engage_campaignrecipient_template_version_id_69ff792a": "template_version_id",
}


class PostgreSQLOnlyRunSQL(migrations.RunSQL):
    """RunSQL that does nothing on other databases."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):

    dependencies = [
        ('crm', '0004_drop_fk_indexes_covered_by_composites'),
        ('engage', '0021_recipient_reason_label'),
    ]

    operations = [
        migrations.AddConstraint(
            model_name='campaignrun',
            constraint=models.UniqueConstraint(fields=('id', 'campaign', 'company'), name='campaignrun_id_campaign_company'),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='campaignrecipient',
                    name='campaign',
                    field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='recipients', to='engage.campaign', verbose_name='campaign'),
                ),
                migrations.AlterField(
                    model_name='campaignrecipient',
                    name='company',
                    field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.CASCADE, related_name='campaign_recipients', to='crm.company', verbose_name='company'),
                ),
                migrations.AlterField(
                    model_name='campaignrecipient',
                    name='job',
                    field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='engage.job', verbose_name='job'),
                ),
                migrations.AlterField(
                    model_name='campaignrecipient',
                    name='message',
                    field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='campaign_recipients', to='engage.message', verbose_name='message'),
                ),
                migrations.AlterField(
                    model_name='campaignrecipient',
                    name='run',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='recipients', to='engage.campaignrun', verbose_name='run'),
                ),
                migrations.AlterField(
                    model_name='campaignrecipient',
                    name='template_version',
                    field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='engage.prompttemplateversion', verbose_name='template version'),
                ),
            ],
            database_operations=[
                PostgreSQLOnlyRunSQL(
                    [
                        f'ALTER TABLE "{RECIPIENT}" ADD CONSTRAINT "{COMPOSITE_FK}"'
                        ' FOREIGN KEY ("run_id", "campaign_id", "company_id")'
                        ' REFERENCES "engage_campaignrun" ("id", "campaign_id", "company_id") DEFERRABLE INITIALLY DEFERRED',
                        *(f'ALTER TABLE "{RECIPIENT}" DROP CONSTRAINT IF EXISTS "{name}"' for name in SINGLE_FKS),
                    ],
                    reverse_sql=[
                        *(
                            f'ALTER TABLE "{RECIPIENT}" ADD CONSTRAINT "{name}" FOREIGN KEY ("{column}")'
                            f' REFERENCES "{table}" ("id") DEFERRABLE INITIALLY DEFERRED'
                            for name, (column, table) in SINGLE_FKS.items()
                        ),
                        f'ALTER TABLE "{RECIPIENT}" DROP CONSTRAINT "{COMPOSITE_FK}"',
                    ],
                ),
                migrations.RunSQL(
                    [f'DROP INDEX IF EXISTS "{name}"' for name in DROPPED_INDEXES],
                    reverse_sql=[
                        f'CREATE INDEX "{name}" ON "{RECIPIENT}" ("{column}")' for name, column in DROPPED_INDEXES.items()
                    ],
                ),
            ],
        ),
        migrations.AddIndex(
            model_name='campaignrecipient',
            index=models.Index(condition=models.Q(('message__isnull', False)), fields=['message'], name='campaignrecipient_message'),
        ),
        migrations.AddIndex(
            model_name='campaignrecipient',
            index=models.Index(condition=models.Q(('job__isnull', False)), fields=['job'], name='campaignrecipient_job'),
        ),
        migrations.AddIndex(
            model_name='campaignrecipient',
            index=models.Index(condition=models.Q(('template_version__isnull', False)), fields=['template_version'], name='campaignrecipient_template'),
        ),
    ]
