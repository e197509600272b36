"""Default beat schedules: created when missing, never changed once ops have them."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from shokti import schedules
from shokti.celery import app as celery_app

pytestmark = pytest.mark.django_db

DAILY = {
    "name": "test: daily campaign",
    "task": "engage.tasks.campaign_daily",
    "crontab": {"minute": "0", "hour": "9"},
    "kwargs": {"preset": "default"},
    "queue": "default",
}
EVERY_30_SECONDS = {
    "name": "test: relay",
    "task": "engage.tasks.jobs_relay",
    "interval": {"every": 30, "period": "seconds"},
    "enabled": False,
    "priority": 0,
}


def test_sync_creates_missing_schedules():
    report = schedules.schedules_sync(schedules=[DAILY, EVERY_30_SECONDS])

    assert report.created == ["test: daily campaign", "test: relay"]
    daily = PeriodicTask.objects.get(name="test: daily campaign")
    assert daily.task == "engage.tasks.campaign_daily"
    assert json.loads(daily.kwargs) == {"preset": "default"}
    assert (daily.queue, daily.enabled) == ("default", True)
    assert (daily.crontab.minute, daily.crontab.hour, daily.crontab.day_of_week) == ("0", "9", "*")
    assert str(daily.crontab.timezone) == "UTC"
    relay = PeriodicTask.objects.get(name="test: relay")
    assert (relay.interval.every, relay.interval.period, relay.enabled, relay.priority) == (30, "seconds", False, 0)


def test_sync_is_idempotent():
    schedules.schedules_sync(schedules=[DAILY, EVERY_30_SECONDS])
    counts = (PeriodicTask.objects.count(), CrontabSchedule.objects.count(), IntervalSchedule.objects.count())

    report = schedules.schedules_sync(schedules=[DAILY, EVERY_30_SECONDS])

    assert report.created == []
    assert report.kept == ["test: daily campaign", "test: relay"]
    assert (PeriodicTask.objects.count(), CrontabSchedule.objects.count(), IntervalSchedule.objects.count()) == counts


def test_what_ops_changed_or_switched_off_stays_so():
    # given: ops switched the daily campaign off and moved it to 10:30
    schedules.schedules_sync(schedules=[DAILY])
    task = PeriodicTask.objects.get(name="test: daily campaign")
    later, _ = CrontabSchedule.objects.get_or_create(minute="30", hour="10", timezone="UTC")
    task.enabled = False
    task.crontab = later
    task.kwargs = json.dumps({"preset": "ops"})
    task.save()

    # when: a deploy syncs again
    schedules.schedules_sync(schedules=[DAILY])

    # then
    task.refresh_from_db()
    assert task.enabled is False
    assert (task.crontab.hour, task.crontab.minute) == ("10", "30")
    assert json.loads(task.kwargs) == {"preset": "ops"}


@pytest.mark.parametrize(
    "broken",
    [
        {"name": "x", "task": "t"},
        {"name": "x", "task": "t", "crontab": {"hour": "9"}, "interval": {"every": 1, "period": "days"}},
        {"name": "x", "task": "t", "crontab": {"hours": "9"}},
        {"name": "x", "task": "t", "interval": {"every": 0, "period": "days"}},
        {"name": "x", "task": "t", "interval": {"every": 1, "period": "weeks"}},
        {"name": "x", "task": "t", "crontab": {}, "enabld": False},
        {"task": "t", "crontab": {}},
    ],
)
def test_a_malformed_schedule_fails_loudly_and_writes_nothing(broken):
    with pytest.raises(ValueError):
        schedules.schedules_sync(schedules=[DAILY, broken])

    assert not PeriodicTask.objects.filter(name="test: daily campaign").exists()


def test_default_schedules_are_well_formed_and_name_registered_tasks():
    celery_app.loader.import_default_modules()
    names = [schedule["name"] for schedule in schedules.DEFAULT_SCHEDULES]

    assert len(names) == len(set(names))
    for schedule in schedules.DEFAULT_SCHEDULES:
        schedules.schedule_validate(schedule=schedule)
        assert schedule["task"] in celery_app.tasks, schedule["task"]


def test_a_migrated_database_already_has_the_default_schedules():
    # pytest-django built this database with `migrate`, whose post_migrate runs the sync.
    expected = {schedule["name"] for schedule in schedules.DEFAULT_SCHEDULES}

    assert expected <= set(PeriodicTask.objects.values_list("name", flat=True))


def test_setup_periodic_tasks_command(monkeypatch):
    monkeypatch.setattr(schedules, "DEFAULT_SCHEDULES", [DAILY])
    first, second = StringIO(), StringIO()

    call_command("setup_periodic_tasks", stdout=first)
    call_command("setup_periodic_tasks", stdout=second)

    assert "created: test: daily campaign" in first.getvalue()
    assert "1 created, 0 kept" in first.getvalue()
    assert "0 created, 1 kept" in second.getvalue()
    assert PeriodicTask.objects.filter(name="test: daily campaign").count() == 1


def test_post_migrate_syncs_the_schedules(monkeypatch):
    from django.core.management.sql import emit_post_migrate_signal

    monkeypatch.setattr(schedules, "DEFAULT_SCHEDULES", [DAILY])

    emit_post_migrate_signal(verbosity=0, interactive=False, db="default")

    assert PeriodicTask.objects.filter(name="test: daily campaign").exists()
