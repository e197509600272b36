"""Default beat schedules: made by a data migration, once; what ops change in the admin stays so."""

import importlib
import json

import pytest
from django.apps import apps as global_apps
from django.core.management import call_command
from django.urls import reverse
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from crm.models import User
from shokti import schedules
from shokti.celery import app as celery_app

pytestmark = pytest.mark.django_db

DAILY = "smartengage: daily campaigns"
MIGRATION = importlib.import_module("engage.migrations.0018_default_periodic_tasks")
MIGRATIONS = [
    MIGRATION,
    importlib.import_module("engage.migrations.0020_housekeeping_schedule"),
    importlib.import_module("channels_app.migrations.0007_email_bounces_schedule"),
    importlib.import_module("engage.migrations.0028_jobs_reclaim_schedule"),
    importlib.import_module("coaching.migrations.0002_coaching_schedules"),
    importlib.import_module("reports.migrations.0002_burnout"),
    importlib.import_module("engage.migrations.0034_experiments_refresh_schedule"),
    importlib.import_module("reports.migrations.0003_rollups"),
]


def migration_forward() -> None:
    """The data migration's forward step again, as on a database that already has (some of) the schedules."""
    schedules.schedules_create(global_apps, MIGRATION.SCHEDULES)


def schedules_missing() -> list[str]:
    present = set(PeriodicTask.objects.values_list("name", flat=True))
    return [schedule["name"] for schedule in schedules.DEFAULT_SCHEDULES if schedule["name"] not in present]


def test_a_migrated_database_has_the_daily_campaign_at_nine_utc():
    # pytest-django built this database with `migrate`: the data migration made the schedules.
    task = PeriodicTask.objects.select_related("crontab").get(name=DAILY)

    assert task.task == "engage.smartengage_campaign_run" and task.enabled and task.interval is None
    crontab = task.crontab
    assert (crontab.minute, crontab.hour, crontab.day_of_week, crontab.day_of_month, crontab.month_of_year) == (
        "0", "9", "*", "*", "*"
    )
    assert str(crontab.timezone) == "UTC"
    assert json.loads(task.kwargs) == {} and task.priority == 3


def test_a_migrated_database_has_every_default_schedule_as_written_and_registered():
    celery_app.loader.import_default_modules()
    names = [schedule["name"] for schedule in schedules.DEFAULT_SCHEDULES]
    assert len(names) == len(set(names)) and schedules_missing() == []
    # the migrations' frozen copies say what shokti.schedules says
    assert [schedule for migration in MIGRATIONS for schedule in migration.SCHEDULES] == schedules.DEFAULT_SCHEDULES
    for schedule in schedules.DEFAULT_SCHEDULES:
        task = PeriodicTask.objects.get(name=schedule["name"])
        assert schedule["task"] in celery_app.tasks, schedule["task"]
        assert (task.task, task.priority, task.description) == (
            schedule["task"], schedule["priority"], schedule["description"]
        )
        if "interval" in schedule:
            assert (task.interval.every, task.interval.period) == (
                schedule["interval"]["every"], schedule["interval"]["period"]
            )
        else:
            assert (task.crontab.minute, task.crontab.hour) == (schedule["crontab"]["minute"], schedule["crontab"]["hour"])


def admin_post_data(response) -> dict:
    """The admin change form's current values, as the browser would post them back."""
    form = response.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if value is None:
            continue
        if isinstance(value, bool):
            if value:
                data[name] = "on"
            continue
        data[name] = value if isinstance(value, list | tuple) else field.widget.format_value(value)
    return data


def test_what_ops_change_in_the_admin_survives_migrate_again(client):
    # given ops move the daily campaign to 10:30 and switch it off, in the admin
    admin = User.objects.create_superuser(email="root@shokti.test", password="x")
    client.force_login(admin)
    task = PeriodicTask.objects.get(name=DAILY)
    later = CrontabSchedule.objects.create(minute="30", hour="10", timezone="UTC")
    url = reverse("admin:django_celery_beat_periodictask_change", args=[task.pk])
    data = admin_post_data(client.get(url))
    data["crontab"] = str(later.pk)
    data.pop("enabled", None)
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    task.refresh_from_db()
    assert (task.enabled, task.crontab_id) == (False, later.pk)
    counts = (PeriodicTask.objects.count(), CrontabSchedule.objects.count(), IntervalSchedule.objects.count())

    # when a deploy migrates again, and the data migration's step runs on a database that has the schedules
    call_command("migrate", verbosity=0)
    migration_forward()

    # then the edit stays, nothing is duplicated
    task.refresh_from_db()
    assert (task.enabled, task.crontab.hour, task.crontab.minute) == (False, "10", "30")
    assert (PeriodicTask.objects.count(), CrontabSchedule.objects.count(), IntervalSchedule.objects.count()) == counts


def test_the_migration_makes_only_what_is_missing_and_goes_back():
    PeriodicTask.objects.filter(name=DAILY).delete()
    relay = PeriodicTask.objects.get(name="jobs: relay lost and due jobs")

    migration_forward()

    assert PeriodicTask.objects.get(name=DAILY).crontab.hour == "9"
    assert PeriodicTask.objects.get(name="jobs: relay lost and due jobs").pk == relay.pk
    schedules.schedules_delete(global_apps, MIGRATION.SCHEDULES)
    assert schedules_missing() == [schedule["name"] for schedule in MIGRATION.SCHEDULES]
