"""Every burnout rule at its thresholds (just under, at, over) and across time zones: days are Dhaka's days, a job
at 22:30 in Dhaka (16:30 UTC) is a late-night job, a job at 00:30 in Dhaka (18:30 UTC the day before) belongs to the
next Dhaka day. Pure functions: no database."""

import datetime as dt
import re
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from reports.burnout.rules import Job, Thresholds, evaluate, is_late_night

DHAKA = ZoneInfo("Asia/Dhaka")
UTC = dt.UTC
NOW = dt.datetime(2026, 12, 7, 15, 0, tzinfo=DHAKA)  # a Monday afternoon in Dhaka (09:00 UTC)
TODAY = NOW.date()
DEFAULTS = Thresholds()


def at(days_ago: int, hour: int = 9, minute: int = 0, zone=DHAKA) -> dt.datetime:
    day = TODAY - dt.timedelta(days=days_ago)
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)


def job(start: dt.datetime, minutes: int = 60, **fields) -> Job:
    return Job(start=start, end=start + dt.timedelta(minutes=minutes), **fields)


def run(jobs, zone=DHAKA, **thresholds):
    return evaluate(jobs, thresholds=Thresholds(**thresholds) if thresholds else DEFAULTS, zone=zone, now=NOW)


def codes(result) -> dict[str, str]:
    return {signal["code"]: signal["level"] for signal in result.signals}


def six_days(total_minutes: int) -> list[Job]:
    """One morning job a day on the 6 days before today (no streak of 7, no late night, nothing back to back)."""
    return [job(at(days_ago), total_minutes // 6) for days_ago in range(1, 7)]


# --- hours in the last 7 local days ---------------------------------------------------------------------------


@pytest.mark.parametrize(("minutes", "expected", "level"), [
    (2874, {}, None),                       # 47.9 h
    (2880, {"hours": "watch"}, "watch"),    # 48 h
    (3294, {"hours": "watch"}, "watch"),    # 54.9 h
    (3300, {"hours": "alert"}, "alert"),    # 55 h
    (3480, {"hours": "alert"}, "alert"),    # 58 h
])
def test_hours_in_the_last_seven_days_watch_at_48_and_alert_at_55(minutes, expected, level):
    result = run(six_days(minutes))
    assert codes(result) == expected
    assert result.level == level
    assert result.metrics["hours_7d"] == round(minutes / 60, 2)


def test_hours_explain_themselves_and_a_job_eight_days_ago_does_not_count():
    result = run([*six_days(3480), job(at(8), 600)])
    assert result.summary == "58 h in the last 7 days (threshold 55 h)"
    assert result.metrics["jobs_7d"] == 6


def test_the_seven_days_start_at_dhaka_midnight_not_utc_midnight():
    base = six_days(2820)  # 47 h
    # 00:30 in Dhaka six days ago is 18:30 UTC seven days ago: inside the window (the Dhaka day)
    inside = job(at(6, 0, 30), 60)
    assert inside.start.astimezone(UTC).hour == 18 and inside.start.astimezone(UTC).date() == TODAY - dt.timedelta(7)
    # 23:30 in Dhaka seven days ago (17:30 UTC): outside
    outside = job(at(7, 23, 30), 60)
    assert run([*base, inside]).metrics["hours_7d"] == 48 and codes(run([*base, inside])) == {"hours": "watch"}
    assert run([*base, outside]).metrics["hours_7d"] == 47 and "hours" not in codes(run([*base, outside]))


def test_cancelled_and_future_jobs_are_not_hours_worked():
    jobs = [*six_days(2874), job(at(1, 18), 60, is_cancelled=True), job(NOW + dt.timedelta(hours=1), 120)]
    assert run(jobs).metrics["hours_7d"] == 47.9 and run(jobs).level is None


def test_a_job_running_now_counts_up_to_now():
    result = run([*six_days(2820), job(NOW - dt.timedelta(minutes=30), 240)])
    assert result.metrics["hours_7d"] == 47.5


# --- days without a day off -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("days_ago", "streak", "expected"), [
    (range(1, 7), 6, {}),                                  # 6 days in a row
    (range(1, 8), 7, {"no_day_off": "watch"}),             # 7, ending yesterday (no job today yet)
    (range(0, 7), 7, {"no_day_off": "watch"}),             # 7, today included
    (range(1, 9), 8, {"no_day_off": "watch"}),
    ([1, 2, 3, 5, 6, 7, 8, 9], 3, {}),                     # a day off 4 days ago breaks it
])
def test_days_without_a_day_off_watch_at_seven(days_ago, streak, expected):
    hour = 8 if 0 in days_ago else 9
    result = run([job(at(n, hour), 60) for n in days_ago])
    assert result.metrics["days_without_break"] == streak
    assert codes(result) == expected


def test_a_day_off_is_a_dhaka_day():
    days = [job(at(n), 60) for n in range(1, 7)]
    # 18:30 UTC eight days ago is 00:30 in Dhaka seven days ago: the seventh day in a row
    late_utc = dt.datetime.combine(TODAY - dt.timedelta(days=8), dt.time(18, 30), UTC)
    assert run([*days, job(late_utc)]).metrics["days_without_break"] == 7
    # 17:30 UTC is 23:30 in Dhaka the day before: seven days ago is a day off
    early_utc = dt.datetime.combine(TODAY - dt.timedelta(days=8), dt.time(17, 30), UTC)
    assert run([*days, job(early_utc)]).metrics["days_without_break"] == 6


def test_the_summary_reads_in_numbers():
    jobs = [*six_days(3480), *(job(at(n), 60) for n in (7, 8, 9))]
    result = run(jobs)
    assert result.summary == "58 h in the last 7 days (threshold 55 h), 9 days without a day off"
    assert result.level == "alert"


def test_the_explanation_is_said_in_the_readers_language_with_its_numbers():
    from django.utils import translation

    from reports.burnout.rules import SIGNAL_TEXTS, explanation, signal_text

    jobs = [*six_days(3480), *(job(at(n), 60) for n in (7, 8, 9))]
    result = run(jobs)
    assert [signal["params"] for signal in result.signals] == [{"hours": "58", "threshold": 55}, {"days": 9}]
    with translation.override("bn"):
        bengali = explanation(result.signals)
        assert bengali == "শেষ ৭ দিনে 58 ঘণ্টা (সীমা 55 ঘণ্টা), একটানা 9 দিন কোনো ছুটি ছাড়া"
        # every rule's sentence has Bengali, with the same placeholders
        for code, text in SIGNAL_TEXTS.items():
            with translation.override("en"):
                english = str(text)
            assert str(text) != english, code
            assert sorted(re.findall(r"%\((\w+)\)s", str(text))) == sorted(re.findall(r"%\((\w+)\)s", english))
    assert result.summary == explanation(result.signals)  # stored in English, whatever the active language was
    # a signal stored before the numbers were kept reads as its stored text
    assert signal_text({"code": "hours", "level": "alert", "text": "60 h in the last 7 days"}) == "60 h in the last 7 days"


# --- late-night jobs --------------------------------------------------------------------------------------------


def test_a_job_at_2230_dhaka_is_late_night_even_though_it_is_1630_utc():
    start = at(1, 22, 30)
    assert start.astimezone(UTC).time() == dt.time(16, 30)
    assert is_late_night(job(start), zone=DHAKA, from_hour=22)
    # the same instant in a company on UTC is an afternoon job
    assert not is_late_night(job(start), zone=ZoneInfo("UTC"), from_hour=22)


@pytest.mark.parametrize(("hour", "minute", "minutes", "late"), [
    (20, 59, 60, False),   # ends 21:59
    (21, 0, 60, False),    # ends at 22:00 exactly
    (21, 30, 60, True),    # runs past 22:00
    (22, 0, 30, True),
    (4, 30, 60, True),     # before 05:00
    (5, 0, 60, False),
])
def test_late_night_is_any_part_between_22_and_05_local(hour, minute, minutes, late):
    assert is_late_night(job(at(1, hour, minute), minutes), zone=DHAKA, from_hour=22) is late


@pytest.mark.parametrize(("count", "expected"), [(1, {}), (2, {"late_night": "watch"}), (3, {"late_night": "watch"})])
def test_late_night_jobs_watch_at_two_in_seven_days(count, expected):
    result = run([job(at(n, 22, 30), 60) for n in range(1, count + 1)])
    assert result.metrics["late_night_jobs_7d"] == count and codes(result) == expected


def test_late_night_follows_the_companys_threshold_hour():
    jobs = [job(at(n, 21, 0), 30) for n in (1, 2)]
    assert codes(run(jobs)) == {}
    assert codes(run(jobs, late_night_hour=21)) == {"late_night": "watch"}


# --- back-to-back jobs ------------------------------------------------------------------------------------------


def pairs(n_pairs: int, gap_minutes: int) -> list[Job]:
    jobs = []
    for n in range(1, n_pairs + 1):
        first = job(at(n, 9), 60)
        jobs += [first, job(first.end + dt.timedelta(minutes=gap_minutes), 60)]
    return jobs


@pytest.mark.parametrize(("n_pairs", "gap", "count", "expected"), [
    (3, 30, 0, {}),                                 # exactly 30 minutes between: not back to back
    (3, 29, 3, {"back_to_back": "watch"}),          # under 30
    (2, 29, 2, {}),                                 # two pairs: under the 3
    (4, 0, 4, {"back_to_back": "watch"}),
])
def test_back_to_back_jobs_watch_at_three_pairs_under_30_minutes(n_pairs, gap, count, expected):
    result = run(pairs(n_pairs, gap))
    assert result.metrics["back_to_back_pairs_7d"] == count and codes(result) == expected


# --- trends over 28 days: the last 14 days against the 14 before -------------------------------------------------


def cancelled(days_ago: int) -> Job:
    return job(at(days_ago, 9), 60, is_cancelled=True, is_cancelled_by_worker=True)


@pytest.mark.parametrize(("recent", "previous", "expected"), [
    (3, 2, {"cancellations_rising": "watch"}),
    (3, 3, {}),        # not rising
    (2, 0, {}),        # under the minimum count
    (4, 1, {"cancellations_rising": "watch"}),
])
def test_rising_cancellations_by_the_worker(recent, previous, expected):
    jobs = [cancelled(n) for n in range(1, recent + 1)] + [cancelled(n) for n in range(15, 15 + previous)]
    # a customer's cancellation is not the worker's
    jobs.append(job(at(2, 12), 60, is_cancelled=True))
    result = run(jobs)
    assert codes(result) == expected
    assert result.metrics["worker_cancellations_14d"] == recent
    if expected:
        assert result.summary == (f"{recent} jobs cancelled by the worker in the last 14 days, up from {previous} in "
                                  "the 14 before")


def test_the_trend_window_boundary_is_14_dhaka_days():
    # 13 days ago is recent, 14 days ago is previous (Dhaka days)
    result = run([cancelled(13), cancelled(14), cancelled(27), cancelled(28)])
    assert (result.metrics["worker_cancellations_14d"], result.metrics["worker_cancellations_previous_14d"]) == (1, 2)


def rated(days_ago: int, rating: int) -> Job:
    return job(at(days_ago, 9), 60, rating=rating)


@pytest.mark.parametrize(("recent", "previous", "expected"), [
    ([4, 4, 4], [5, 4, 5, 4], {"ratings_falling": "watch"}),   # 4.0 vs 4.5: down 0.5
    ([4, 4, 4], [5, 4, 4, 5, 4], {}),                          # 4.0 vs 4.4: down 0.4
    ([3, 3], [5, 5, 5], {}),                                   # two ratings only lately: too few to say
    ([3, 3, 3], [5, 5], {}),                                   # two before
])
def test_falling_ratings(recent, previous, expected):
    jobs = [rated(1 + index, value) for index, value in enumerate(recent)]
    jobs += [rated(15 + index, value) for index, value in enumerate(previous)]
    assert codes(run(jobs)) == expected


def test_falling_ratings_explain_themselves():
    jobs = [rated(n, 4) for n in (1, 2, 3)] + [rated(n, 5) for n in (15, 16, 17)]
    assert run(jobs).summary == "average rating 4 in the last 14 days, down from 5 in the 14 before"
    assert codes(run(jobs, rating_drop=Decimal("1.5"))) == {}


def arrived(days_ago: int, late_minutes: int) -> Job:
    start = at(days_ago, 9)
    return job(start, 60, arrived_at=start + dt.timedelta(minutes=late_minutes))


@pytest.mark.parametrize(("recent", "previous", "expected"), [
    ([11, 11, 11], [11, 11], {"lateness_rising": "watch"}),
    ([10, 11, 11], [11], {}),          # 10 minutes is within the grace: 2 late only
    ([11, 11, 11], [11, 11, 11], {}),  # not rising
])
def test_rising_lateness(recent, previous, expected):
    jobs = [arrived(1 + index, value) for index, value in enumerate(recent)]
    jobs += [arrived(15 + index, value) for index, value in enumerate(previous)]
    assert codes(run(jobs)) == expected


def test_lateness_is_measured_from_the_scheduled_time_not_the_start_of_work():
    jobs = []
    for n in (1, 2, 3):
        scheduled = at(n, 9)
        # arrived 25 minutes late, started working 30 minutes late
        jobs.append(Job(start=scheduled + dt.timedelta(minutes=30), end=scheduled + dt.timedelta(minutes=90),
                        scheduled_at=scheduled, arrived_at=scheduled + dt.timedelta(minutes=25)))
    result = run(jobs)
    assert result.metrics["late_arrivals_14d"] == 3 and codes(result) == {"lateness_rising": "watch"}


# --- the level --------------------------------------------------------------------------------------------------


def test_watch_signals_become_an_alert_at_three():
    two = [*pairs(3, 0), *(job(at(n, 22, 30), 60) for n in (4, 5))]
    assert set(codes(run(two))) == {"back_to_back", "late_night"} and run(two).level == "watch"
    three = [*two, *(cancelled(n) for n in (8, 9, 10))]
    assert len(run(three).signals) == 3 and run(three).level == "alert"
    assert run(three, alert_at_signals=4).level == "watch"


def test_main_zone_and_service_category_are_the_most_frequent():
    jobs = [job(at(n), 60, zone="Mirpur", category="Cleaning") for n in (1, 2)] + [
        job(at(3), 60, zone="Dhanmondi", category="AC repair")]
    result = run(jobs)
    assert (result.zone, result.category) == ("Mirpur", "Cleaning")


# --- the grouped SQL reads the same numbers as the rules in Python -------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("time_zone", ["Asia/Dhaka", "UTC", "America/New_York"])
def test_the_grouped_sql_counts_agree_with_the_python_rules(company, time_zone):
    import random

    from django.db import connection
    from django.utils import timezone

    from reports.burnout import counts_sql
    from reports.burnout.rules import HISTORY_DAYS, counts_of
    from reports.burnout.services import _jobs_by_worker
    from reports.tests.helpers import job_of, worker_of

    assert connection.vendor == "postgresql"  # the grouped query is PostgreSQL's; SQLite counts in Python only
    company.timezone = time_zone
    company.save(update_fields=["timezone"])
    zone = ZoneInfo(time_zone)
    now = timezone.now()
    rng = random.Random(7)
    thresholds = Thresholds(late_night_hour=21, back_to_back_gap_minutes=45, late_grace_minutes=5)
    workers = [worker_of(company, name=f"W{n}", phone=f"+88019110002{n:02d}", zone="Mirpur") for n in range(8)]
    for index, worker in enumerate(workers):
        for _ in range(rng.randrange(5, 30)):
            start = now - dt.timedelta(minutes=rng.randrange(-600, (HISTORY_DAYS + 2) * 24 * 60))
            status = rng.choice(["completed"] * 6 + ["cancelled", "scheduled"])
            fields = {"rating": rng.choice([None, None, 2, 3, 4, 5]),
                      "arrived_at": start + dt.timedelta(minutes=rng.randrange(0, 20)),
                      "cancelled_by": rng.choice(["worker", "customer"]) if status == "cancelled" else ""}
            booking = job_of(worker, start, rng.choice([30, 60, 95, 240]), status=status,
                             zone=rng.choice(["Mirpur", "Gulshan", "Uttara"]),
                             category=rng.choice(["Cleaning", "Beauty"]), **fields)
            if index % 3 == 0 and rng.random() < 0.3:  # started late, finished before the start, not started
                booking.started_at = start + dt.timedelta(minutes=rng.randrange(0, 90))
                booking.finished_at = rng.choice([None, booking.started_at - dt.timedelta(minutes=5)])
                booking.save(update_fields=["started_at", "finished_at"])
    since = now - dt.timedelta(days=HISTORY_DAYS + 1)
    in_sql = counts_sql.counts_by_worker(company=company, thresholds=thresholds, zone=zone, since=since, now=now)
    in_python = {worker_id: counts_of(jobs, thresholds=thresholds, zone=zone, now=now)
                 for worker_id, jobs in _jobs_by_worker(company=company, since=since, until=now).items()}
    assert set(in_sql) == set(in_python) == {worker.pk for worker in workers}
    for worker_id, counts in in_python.items():
        got = in_sql[worker_id]
        assert abs(got.hours_7d - counts.hours_7d) < 1e-6, worker_id
        got.hours_7d = counts.hours_7d
        assert got == counts, worker_id
    # the sample exercises every number
    totals = {name: sum(bool(getattr(counts, name)) for counts in in_python.values())
              for name in ("late_night_jobs_7d", "back_to_back_pairs_7d", "cancellations_14d", "ratings_14d",
                           "ratings_previous_14d", "late_arrivals_14d", "late_arrivals_previous_14d", "hours_7d")}
    assert all(totals.values()), totals
