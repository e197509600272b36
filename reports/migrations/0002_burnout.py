"""Burnout alerts: per-company thresholds, the alerts, the hourly evaluation's beat schedule (see
shokti/schedules.py) and Operations' permissions (owners are superusers or Operations too; the services check the
membership role)."""

import django.core.validators
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

from crm.permissions import OPERATIONS, grant_operation
from shokti.schedules import schedules_operation

SCHEDULES = [
    {
        "name": "reports: burnout alerts",
        "task": "reports.burnout_evaluate",
        "crontab": {"minute": "20", "hour": "*"},
        "priority": 4,
        "description": "Hourly at :20: one burnout_evaluate job per active company (opens, updates or clears burnout alerts from the bookings of the last 5 weeks, in the company's time zone).",
    },
]
OPERATIONS_GRANTS = ["view_burnoutalert", "change_burnoutalert", "view_burnoutsettings", "change_burnoutsettings",
                     "add_burnoutsettings"]


class Migration(migrations.Migration):

    dependencies = [
        ('crm', '0010_console_indexes'),
        ('reports', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ('django_celery_beat', '0019_alter_periodictasks_options'),
        ('auth', '0012_alter_user_first_name_max_length'),
    ]

    operations = [
        migrations.CreateModel(
            name='BurnoutSettings',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('watch_hours_7d', models.PositiveSmallIntegerField(default=48, help_text="Hours on jobs in the last 7 local days that open a watch (Bangladesh's Labour Act: 48 h).", verbose_name='watch at hours in 7 days')),
                ('alert_hours_7d', models.PositiveSmallIntegerField(default=55, help_text='Hours on jobs in the last 7 local days that open an alert (WHO/ILO: 55 h or more a week).', verbose_name='alert at hours in 7 days')),
                ('max_days_without_break', models.PositiveSmallIntegerField(default=7, help_text='A watch when the worker has had jobs on this many local days in a row or more.', validators=[django.core.validators.MinValueValidator(2)], verbose_name='days in a row without a day off')),
                ('late_night_hour', models.PositiveSmallIntegerField(default=22, help_text='A job with any part between this local hour and 05:00 counts as late-night.', validators=[django.core.validators.MaxValueValidator(23)], verbose_name='late night from (hour)')),
                ('late_night_jobs', models.PositiveSmallIntegerField(default=2, help_text='A watch at this many late-night jobs in the last 7 local days.', validators=[django.core.validators.MinValueValidator(1)], verbose_name='late-night jobs in 7 days')),
                ('back_to_back_gap_minutes', models.PositiveSmallIntegerField(default=30, help_text='Two jobs with less than this between the end of one and the start of the next are back to back.', verbose_name='back-to-back gap (minutes)')),
                ('back_to_back_pairs', models.PositiveSmallIntegerField(default=3, help_text='A watch at this many back-to-back pairs in the last 7 local days.', validators=[django.core.validators.MinValueValidator(1)], verbose_name='back-to-back pairs in 7 days')),
                ('trend_min_count', models.PositiveSmallIntegerField(default=3, help_text='Cancellations, ratings or late arrivals a worker needs in the last 14 days before a trend counts.', validators=[django.core.validators.MinValueValidator(1)], verbose_name='trend minimum count')),
                ('rating_drop', models.DecimalField(decimal_places=2, default=0.5, help_text='A watch when the average rating of the last 14 days is this much below the 14 days before.', max_digits=3, validators=[django.core.validators.MinValueValidator(0.01)], verbose_name='rating drop')),
                ('late_grace_minutes', models.PositiveSmallIntegerField(default=10, help_text='An arrival this many minutes after the scheduled time is late.', verbose_name='late after (minutes)')),
                ('alert_at_signals', models.PositiveSmallIntegerField(default=3, help_text='A watch becomes an alert when this many signals hold at once (55 h alone is always an alert).', validators=[django.core.validators.MinValueValidator(1)], verbose_name='alert at signals')),
                ('is_enabled', models.BooleanField(default=True, help_text='Off: no new alerts for this company.', verbose_name='is enabled')),
                ('updated_at', models.DateTimeField(auto_now=True, verbose_name='updated at')),
                ('company', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='burnout_settings', to='crm.company', verbose_name='company')),
            ],
            options={
                'verbose_name': 'burnout settings',
                'verbose_name_plural': 'burnout settings',
            },
        ),
        migrations.CreateModel(
            name='BurnoutAlert',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('level', models.CharField(choices=[('watch', 'Watch'), ('alert', 'Alert')], max_length=10, verbose_name='level')),
                ('status', models.CharField(choices=[('open', 'Open'), ('acknowledged', 'Acknowledged'), ('acted', 'Acted on'), ('resolved', 'Resolved')], default='open', max_length=20, verbose_name='status')),
                ('summary', models.CharField(help_text='The alert in numbers, as the managers read it.', max_length=500, verbose_name='summary')),
                ('signals', models.JSONField(default=list, help_text='Each rule that held: code, level, numbers, sentence.', verbose_name='signals')),
                ('metrics', models.JSONField(default=dict, help_text='Every number the rules computed at the last evaluation.', verbose_name='metrics')),
                ('zone', models.CharField(blank=True, help_text="The worker's main zone (most jobs, 28 days).", max_length=100, verbose_name='zone')),
                ('service_category', models.CharField(blank=True, help_text="The worker's main service category (most jobs, 28 days).", max_length=100, verbose_name='service category')),
                ('opened_at', models.DateTimeField(default=django.utils.timezone.now, verbose_name='opened at')),
                ('evaluated_at', models.DateTimeField(default=django.utils.timezone.now, verbose_name='evaluated at')),
                ('cleared_at', models.DateTimeField(blank=True, help_text='When the numbers last fell under every threshold (still open).', null=True, verbose_name='cleared at')),
                ('notified_at', models.DateTimeField(blank=True, null=True, verbose_name='notified at')),
                ('notified_level', models.CharField(blank=True, help_text='The level the managers were last emailed about (watch, then alert).', max_length=10, verbose_name='notified level')),
                ('acknowledged_at', models.DateTimeField(blank=True, null=True, verbose_name='acknowledged at')),
                ('acted_at', models.DateTimeField(blank=True, null=True, verbose_name='acted at')),
                ('action', models.CharField(blank=True, choices=[('fewer_jobs', 'Fewer jobs assigned'), ('day_off', 'Day off given'), ('shift_change', 'No more late-night jobs'), ('conversation', 'Talked with the worker'), ('other', 'Other')], max_length=20, verbose_name='action')),
                ('action_note', models.TextField(blank=True, verbose_name='action note')),
                ('resolved_at', models.DateTimeField(blank=True, null=True, verbose_name='resolved at')),
                ('outcome', models.CharField(blank=True, choices=[('recovered', 'Workload back to normal'), ('ongoing_support', 'Ongoing support agreed'), ('false_alarm', 'Not overworked (false alarm)'), ('left', 'Worker left')], max_length=20, verbose_name='outcome')),
                ('outcome_note', models.TextField(blank=True, verbose_name='outcome note')),
                ('acknowledged_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='acknowledged by')),
                ('acted_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='acted by')),
                ('company', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='burnout_alerts', to='crm.company', verbose_name='company')),
                ('resolved_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='resolved by')),
                ('worker', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='burnout_alerts', to='crm.worker', verbose_name='worker')),
            ],
            options={'ordering': ['-opened_at'], 'verbose_name': 'burnout alert', 'verbose_name_plural': 'burnout alerts', 'indexes': [models.Index(fields=['company', 'status', 'zone'], name='burnout_company_status_zone')], 'constraints': [models.UniqueConstraint(condition=models.Q(('status', 'resolved'), _negated=True), fields=('worker',), name='burnout_one_open_alert_per_worker')]},
        ),
        schedules_operation(SCHEDULES),
        grant_operation(OPERATIONS, "reports", OPERATIONS_GRANTS),
    ]
