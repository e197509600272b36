"""Punctuality from bookings: the grace period's edge, no-shows, worker cancellations, excuses, Dhaka's midnight,
the rolling windows, the incremental daily refresh and the completion hook."""

import datetime as dt
import threading

import pytest
from django.core.management import call_command
from django.db import connection

from coaching import punctuality
from coaching.models import BookingPunctuality, WorkerPunctuality
from coaching.punctuality import (
    booking_excuse,
    punctuality_backfill,
    punctuality_bookings_refresh,
    punctuality_daily,
)
from coaching.tests.helpers import booking_of, dhaka, worker_of
from crm.models import Booking
from engage.models import Job

AS_OF = dt.date(2026, 11, 30)


pytestmark = pytest.mark.embedded  # a headline flow: also on SQLite without Redis (make test)



@pytest.fixture(autouse=True, params=["sql", "python"])
def _path(request, monkeypatch):
    """Every rule on both paths: PostgreSQL's set-based statements and the Python loops (SQLite's)."""
    monkeypatch.setattr("coaching.punctuality.PYTHON_ONLY", request.param == "python")


@pytest.fixture
def worker(company):
    return worker_of(company)


@pytest.mark.django_db
def test_the_grace_period_is_inclusive_at_its_edge_and_late_one_minute_after(company, worker):
    at_edge = booking_of(worker, dhaka(2026, 11, 28), late_minutes=10)
    past_edge = booking_of(worker, dhaka(2026, 11, 29), late_minutes=11)
    early = booking_of(worker, dhaka(2026, 11, 30), late_minutes=-5)

    punctuality_backfill(company=company, as_of=AS_OF)

    rows = {row.booking_id: row for row in BookingPunctuality.objects.all()}
    assert (rows[at_edge.pk].outcome, rows[at_edge.pk].minutes_late) == ("on_time", 10)
    assert (rows[past_edge.pk].outcome, rows[past_edge.pk].minutes_late) == ("late", 11)
    assert (rows[early.pk].outcome, rows[early.pk].minutes_late) == ("on_time", 0)
    stats = WorkerPunctuality.objects.get(worker=worker)
    assert (stats.bookings_14, stats.on_time_14, stats.late_14) == (3, 2, 1)
    assert stats.on_time_rate_14 == pytest.approx(66.7) and stats.average_minutes_late_14 == 11


@pytest.mark.django_db(transaction=True)
def test_the_backfill_classifies_its_slices_on_two_connections_outside_a_transaction(company, worker, monkeypatch):
    """PostgreSQL's backfill runs its slices of booking ids on SQL_PARALLEL connections of their own (they see only
    committed bookings, so not inside a caller's transaction): every booking is still classified once."""
    threads = set()
    classify_range = punctuality.bookings_classify_range

    def spy(**kwargs):
        threads.add(threading.current_thread().name)
        return classify_range(**kwargs)

    monkeypatch.setattr("coaching.punctuality.bookings_classify_range", spy)
    monkeypatch.setattr("coaching.punctuality.SQL_SLICE", 2)
    bookings = [booking_of(worker, dhaka(2026, 11, day), late_minutes=minutes)
                for day, minutes in ((20, 0), (21, 25), (22, 3), (23, 40), (24, 12), (25, 1), (26, 30))]

    result = punctuality_backfill(company=company, as_of=AS_OF)

    rows = dict(BookingPunctuality.objects.values_list("booking_id", "outcome"))
    assert rows == {booking.pk: "late" if minutes > 10 else "on_time"
                    for booking, minutes in zip(bookings, (0, 25, 3, 40, 12, 1, 30), strict=True)}
    assert result == {"classified": 7, "workers": 1}
    stats = WorkerPunctuality.objects.get(worker=worker)
    assert (stats.bookings_14, stats.late_14) == (7, 4)
    if connection.vendor == "postgresql" and not punctuality.PYTHON_ONLY:
        assert threads and threading.main_thread().name not in threads


@pytest.mark.django_db
def test_no_shows_and_worker_cancellations_count_customer_cancellations_do_not(company, worker):
    booking_of(worker, dhaka(2026, 11, 25), status="cancelled", cancelled_by="worker")
    booking_of(worker, dhaka(2026, 11, 26), status="cancelled", cancelled_by="system")
    booking_of(worker, dhaka(2026, 11, 27), status="cancelled", cancelled_by="customer")
    booking_of(worker, dhaka(2026, 12, 1), status="scheduled", arrived=False)

    punctuality_backfill(company=company, as_of=AS_OF)

    assert sorted(BookingPunctuality.objects.values_list("outcome", flat=True)) == ["cancelled_by_worker", "no_show"]
    stats = WorkerPunctuality.objects.get(worker=worker)
    assert (stats.bookings_14, stats.late_14, stats.late_arrivals_14) == (2, 2, 0)


@pytest.mark.django_db
def test_days_are_dhaka_days_around_midnight(company, worker):
    # 23:59 Dhaka on 16 Nov is 17:59 UTC; 00:01 Dhaka on 17 Nov is 18:01 UTC on the 16th (UTC would call both the 16th)
    before_midnight = booking_of(worker, dhaka(2026, 11, 16, 23, 59), late_minutes=30)
    after_midnight = booking_of(worker, dhaka(2026, 11, 17, 0, 1), late_minutes=30)

    punctuality_backfill(company=company, as_of=AS_OF)

    rows = {row.booking_id: row.local_date for row in BookingPunctuality.objects.all()}
    assert rows[before_midnight.pk] == dt.date(2026, 11, 16) and rows[after_midnight.pk] == dt.date(2026, 11, 17)
    # the 14-day window to 30 Nov starts on 17 Nov: only the booking after Dhaka's midnight is in it
    stats = WorkerPunctuality.objects.get(worker=worker)
    assert (stats.late_14, stats.late_28) == (1, 2)


@pytest.mark.django_db
def test_an_excused_booking_no_longer_counts(company, staff_user, worker):
    late = booking_of(worker, dhaka(2026, 11, 29), late_minutes=40)
    punctuality_backfill(company=company, as_of=AS_OF)

    booking_excuse(booking_punctuality=late.punctuality, reason="traffic", actor=staff_user)

    stats = WorkerPunctuality.objects.get(worker=worker)
    assert stats.late_14 == 0 and stats.bookings_14 == 0
    # and a reclassification (the booking edited) keeps the excuse
    punctuality_bookings_refresh(company=company, booking_ids=[late.pk])
    assert BookingPunctuality.objects.get(pk=late.pk).is_excused


@pytest.mark.django_db
def test_the_trend_compares_the_last_14_days_with_the_14_before(company, worker):
    for day in (3, 5, 7, 9):  # 2 of 4 late in the older half
        booking_of(worker, dhaka(2026, 11, day), late_minutes=30 if day in (3, 5) else 0)
    for day in (20, 22, 24, 26):  # all on time in the recent half
        booking_of(worker, dhaka(2026, 11, day))
    punctuality_backfill(company=company, as_of=AS_OF)
    stats = WorkerPunctuality.objects.get(worker=worker)
    assert (stats.on_time_rate_14, stats.on_time_rate_28, stats.trend) == (100.0, 75.0, 50.0)


@pytest.mark.django_db
def test_the_daily_refresh_classifies_only_what_changed_and_rolls_the_windows(company, worker):
    old = booking_of(worker, dhaka(2026, 11, 1), late_minutes=30)
    punctuality_daily(company=company, now=dhaka(2026, 11, 2, 1))
    assert WorkerPunctuality.objects.get(worker=worker).late_14 == 1

    # a month later nothing changed for this booking: not reclassified, but the window rolled past it
    BookingPunctuality.objects.filter(pk=old.pk).update(minutes_late=999)
    Booking.objects.filter(pk=old.pk).update(updated_at=dhaka(2026, 11, 1, 12))
    result = punctuality_daily(company=company, now=dhaka(2026, 12, 5, 1))
    assert result["classified"] == 0
    assert BookingPunctuality.objects.get(pk=old.pk).minutes_late == 999
    stats = WorkerPunctuality.objects.get(worker=worker)
    assert (stats.bookings_28, stats.late_14, stats.as_of) == (0, 0, dt.date(2026, 12, 5))


@pytest.mark.django_db
def test_a_booking_reported_completed_queues_its_refresh(company, worker, staff_user):
    from crm.feed.services import booking_completed_payload
    from crm.services import event_record

    booking = booking_of(worker, dhaka(2026, 11, 29), late_minutes=25)
    event_record(company=company, type="booking.completed", payload=booking_completed_payload(booking=booking))

    [job] = Job.objects.filter(task_name="coaching_punctuality_bookings")
    assert job.payload == {"booking_ids": [booking.pk]}
    from engage.tests.helpers import run_job

    assert run_job(job) == "completed"
    assert BookingPunctuality.objects.get(pk=booking.pk).outcome == "late"
    assert WorkerPunctuality.objects.filter(worker=worker).exists()


@pytest.mark.django_db
def test_the_backfill_command(company, worker):
    booking_of(worker, dhaka(2026, 11, 29), late_minutes=25)
    call_command("coaching_backfill", company=company.slug)
    assert BookingPunctuality.objects.count() == 1 and WorkerPunctuality.objects.count() == 1


@pytest.mark.django_db
def test_the_daily_roll_by_one_day_equals_a_recount(company, worker):
    from django.db import connection

    from coaching import punctuality
    from coaching.punctuality import STAT_FIELDS, worker_stats_refresh

    today = dt.date(2026, 11, 30)
    # the days entering (today) and leaving the windows (14 and 28 days ago), late and on time, one excused
    for day, late in ((2, 30), (3, 0), (16, 20), (17, 0), (20, 45), (29, 15), (30, 0)):
        booking_of(worker, dhaka(2026, 11, day), late_minutes=late)
    excused = booking_of(worker, dhaka(2026, 11, 21), late_minutes=50)
    leaving = worker_of(company, phone="+8801911000998", name="Rahim")
    booking_of(leaving, dhaka(2026, 11, 2), late_minutes=30)  # leaves both windows today
    edited = worker_of(company, phone="+8801911000999", name="Salma")
    changed = booking_of(edited, dhaka(2026, 11, 18), late_minutes=40)
    giver, taker = worker_of(company, phone="+8801911000997", name="Jamal"), worker_of(
        company, phone="+8801911000996", name="Nasir")
    moved = booking_of(giver, dhaka(2026, 11, 19), late_minutes=35)
    booking_of(taker, dhaka(2026, 11, 19))
    punctuality_backfill(company=company, as_of=today - dt.timedelta(days=1))
    booking_excuse(booking_punctuality=excused.punctuality, reason="traffic")
    punctuality_backfill(company=company, as_of=today - dt.timedelta(days=1))  # everyone's stats for yesterday
    # after the last refresh Salma's booking is corrected: her stats are recounted, not rolled
    Booking.objects.filter(pk=changed.pk).update(arrived_at=changed.scheduled_at, updated_at=dhaka(2026, 12, 31))
    # and Jamal's late booking was Nasir's: both are recounted
    Booking.objects.filter(pk=moved.pk).update(worker=taker, updated_at=dhaka(2026, 12, 31))

    result = punctuality_daily(company=company, now=dhaka(2026, 11, 30, 0, 15))

    fields = ("as_of", "on_time_rate_14", "on_time_rate_28", "trend", *STAT_FIELDS)
    daily = {row["worker_id"]: row for row in WorkerPunctuality.objects.values("worker_id", *fields)}
    worker_stats_refresh(company=company, worker_ids=list(daily), as_of=today)
    recount = {row["worker_id"]: row for row in WorkerPunctuality.objects.values("worker_id", *fields)}
    assert daily == recount
    mine = daily[worker.pk]
    assert (mine["bookings_14"], mine["late_14"], mine["excused_14"], mine["bookings_28"], mine["late_28"]) == (
        4, 2, 1, 6, 3)  # 14 days: the 17th, 20th, 29th, 30th (the 21st excused); 28 days: also the 3rd and 16th
    assert daily[leaving.pk]["bookings_28"] == 0 and daily[leaving.pk]["on_time_rate_28"] is None
    assert daily[edited.pk]["late_14"] == 0 and daily[edited.pk]["on_time_14"] == 1
    assert (daily[giver.pk]["late_14"], daily[giver.pk]["bookings_14"]) == (0, 0)
    assert (daily[taker.pk]["late_14"], daily[taker.pk]["bookings_14"]) == (1, 2)
    if connection.vendor == "postgresql" and not punctuality.PYTHON_ONLY:
        assert result["rolled"] == 2  # Karim and Rahim rolled by one day; Salma, Jamal and Nasir recounted


@pytest.mark.django_db
def test_the_migration_fills_the_excused_counts_of_rows_written_before_them(company, worker):
    import importlib

    from django.apps import apps

    late = [booking_of(worker, dhaka(2026, 11, day), late_minutes=30) for day in (5, 20, 29)]
    punctuality_backfill(company=company, as_of=AS_OF)
    BookingPunctuality.objects.filter(pk__in=[booking.pk for booking in late]).update(is_excused=True)
    WorkerPunctuality.objects.update(excused_14=0, excused_28=0)  # as 0004 left the rows written before it

    importlib.import_module("coaching.migrations.0005_workerpunctuality_excused_counts").excused_counts_fill(apps, None)

    row = WorkerPunctuality.objects.get(worker=worker)
    assert (row.excused_14, row.excused_28) == (2, 3)  # the 20th and 29th in 14 days to the 30th, the 5th in 28
