"""The burnout rules, as pure functions (no database): `judge` reads one worker's numbers (`Counts`), which
`counts_of` takes from their jobs in Python (what the tests pin at every threshold, through `evaluate`) and
`reports.burnout.counts_sql` from the company's bookings in one grouped query (what `burnout_evaluate` runs on
PostgreSQL; a test holds the two equal).

Days are the company's local days (Asia/Dhaka by default): a job belongs to the local date of its start,
so a job at 00:30 in Dhaka (18:30 UTC the day before) is on the next Dhaka day. Windows end today (local):
the last 7 days are today and the 6 days before; the trends compare the last 14 days with the 14 before.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import pairwise
from zoneinfo import ZoneInfo

from django.utils import translation
from django.utils.translation import gettext_lazy as _

LATE_NIGHT_END_HOUR = 5  # a late-night job is one with any part between the threshold hour and 05:00
WINDOW_DAYS = 7
TREND_DAYS = 14
HISTORY_DAYS = 35  # how far back the evaluation reads (the streak is counted up to this many days)


# Each signal's sentence, with its numbers as placeholders: a signal stores its code and numbers (`params`), so the
# console and the email say it in the reader's language; `text` keeps the English for the webhook and the timeline.
SIGNAL_TEXTS = {
    "hours": _("%(hours)s h in the last 7 days (threshold %(threshold)s h)"),
    "no_day_off": _("%(days)s days without a day off"),
    "late_night": _("%(jobs)s late-night jobs (after %(hour)s) in the last 7 days"),
    "back_to_back": _("%(pairs)s back-to-back jobs (under %(minutes)s min between) in the last 7 days"),
    "cancellations_rising": _("%(recent)s jobs cancelled by the worker in the last 14 days, up from %(previous)s "
                              "in the 14 before"),
    "ratings_falling": _("average rating %(recent)s in the last 14 days, down from %(previous)s in the 14 before"),
    "lateness_rising": _("%(recent)s late arrivals in the last 14 days, up from %(previous)s in the 14 before"),
}
LEVEL_LABELS = {"watch": _("Watch"), "alert": _("Alert")}


def signal_text(signal: dict) -> str:
    """A stored signal's sentence in the active language (its stored English text when it has no numbers)."""
    template, params = SIGNAL_TEXTS.get(signal.get("code", "")), signal.get("params")
    if template is None or not isinstance(params, dict):
        return str(signal.get("text", ""))
    try:
        return str(template) % params
    except (KeyError, TypeError, ValueError):
        return str(signal.get("text", ""))


def explanation(signals: list[dict]) -> str:
    """The alert in numbers, in the active language: every signal's sentence."""
    return ", ".join(signal_text(signal) for signal in signals if isinstance(signal, dict))


@dataclass(frozen=True)
class Thresholds:
    watch_hours_7d: int = 48
    alert_hours_7d: int = 55
    max_days_without_break: int = 7
    late_night_hour: int = 22
    late_night_jobs: int = 2
    back_to_back_gap_minutes: int = 30
    back_to_back_pairs: int = 3
    trend_min_count: int = 3
    rating_drop: Decimal = Decimal("0.5")
    late_grace_minutes: int = 10
    alert_at_signals: int = 3

    @classmethod
    def from_settings(cls, row) -> Thresholds:
        return cls(**{name: getattr(row, name) for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Job:
    """One booking of the worker, times aware (any zone). `start`/`end` are when it was worked (started_at and
    finished_at when known); `scheduled_at` is when the worker was due (lateness), `start` when not given."""

    start: dt.datetime
    end: dt.datetime
    scheduled_at: dt.datetime | None = None
    is_cancelled: bool = False
    is_cancelled_by_worker: bool = False
    arrived_at: dt.datetime | None = None
    rating: int | None = None
    zone: str = ""
    category: str = ""


@dataclass
class Evaluation:
    level: str | None  # "watch", "alert" or None
    signals: list[dict] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    zone: str = ""
    category: str = ""

    @property
    def summary(self) -> str:
        return ", ".join(signal["text"] for signal in self.signals)


def hours_number(hours: float) -> str:
    """58 or 57.5 (one decimal, none when whole)."""
    rounded = round(hours, 1)
    return f"{int(rounded)}" if rounded == int(rounded) else f"{rounded}"


def _local(moment: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    return moment.astimezone(zone)


def is_late_night(job: Job, *, zone: ZoneInfo, from_hour: int) -> bool:
    """Any part of the job between `from_hour` (local) and 05:00 the next morning."""
    start, end = _local(job.start, zone), _local(job.end, zone)
    day = start.date()
    for night_start in (dt.datetime.combine(day - dt.timedelta(days=1), dt.time(from_hour), zone),
                        dt.datetime.combine(day, dt.time(from_hour), zone)):
        night_end = dt.datetime.combine(night_start.date() + dt.timedelta(days=1), dt.time(LATE_NIGHT_END_HOUR), zone)
        if start < night_end and end > night_start:
            return True
    return False


def days_without_break(worked_days: set[dt.date], *, today: dt.date) -> int:
    """Local days in a row with a job, ending today (or yesterday, when today has no job yet)."""
    day = today if today in worked_days else today - dt.timedelta(days=1)
    streak = 0
    while day in worked_days:
        streak += 1
        day -= dt.timedelta(days=1)
    return streak


@dataclass
class Counts:
    """One worker's numbers the rules read, over the windows ending `today` (local): what `counts_of` takes from
    their jobs in Python and `reports.burnout.counts_sql` from the bookings in one grouped query."""

    hours_7d: float = 0.0
    jobs_7d: int = 0
    worked_days: set[dt.date] = field(default_factory=set)
    late_night_jobs_7d: int = 0
    back_to_back_pairs_7d: int = 0
    cancellations_14d: int = 0
    cancellations_previous_14d: int = 0
    rating_sum_14d: int = 0
    ratings_14d: int = 0
    rating_sum_previous_14d: int = 0
    ratings_previous_14d: int = 0
    late_arrivals_14d: int = 0
    late_arrivals_previous_14d: int = 0
    zone: str = ""
    category: str = ""


@dataclass(frozen=True)
class Windows:
    today: dt.date
    week_start: dt.date
    recent_start: dt.date
    previous_start: dt.date

    @classmethod
    def at(cls, now: dt.datetime, zone: ZoneInfo) -> Windows:
        today = _local(now, zone).date()
        recent_start = today - dt.timedelta(days=TREND_DAYS - 1)
        return cls(today=today, week_start=today - dt.timedelta(days=WINDOW_DAYS - 1), recent_start=recent_start,
                   previous_start=recent_start - dt.timedelta(days=TREND_DAYS))


def main_value(values: list[str]) -> str:
    """The most frequent non-empty value, the smallest of a tie (as PostgreSQL's `mode() WITHIN GROUP (ORDER BY)`)."""
    counts = Counter(value for value in values if value)
    return min(counts, key=lambda value: (-counts[value], value)) if counts else ""


def counts_of(jobs: list[Job], *, thresholds: Thresholds, zone: ZoneInfo, now: dt.datetime) -> Counts:
    """The numbers of one worker's jobs, in Python (the reference the grouped SQL is tested against)."""
    t, w = thresholds, Windows.at(now, zone)

    def local_day(job: Job) -> dt.date:
        return _local(job.start, zone).date()

    worked = sorted((job for job in jobs if not job.is_cancelled and job.start <= now),
                    key=lambda job: (job.start, job.end))
    week = [job for job in worked if w.week_start <= local_day(job) <= w.today]
    gap = dt.timedelta(minutes=t.back_to_back_gap_minutes)

    def periods(selected) -> tuple[list[Job], list[Job]]:
        recent = [job for job in selected if w.recent_start <= local_day(job) <= w.today]
        previous = [job for job in selected if w.previous_start <= local_day(job) < w.recent_start]
        return recent, previous

    past = [job for job in jobs if job.start <= now]
    cancels_recent, cancels_previous = periods([job for job in past if job.is_cancelled_by_worker])
    rated_recent, rated_previous = periods([job for job in worked if job.rating is not None])
    grace = dt.timedelta(minutes=t.late_grace_minutes)
    late_recent, late_previous = periods([job for job in worked if job.arrived_at
                                          and job.arrived_at - (job.scheduled_at or job.start) > grace])
    recent_jobs = [job for job in worked if w.previous_start <= local_day(job) <= w.today]
    return Counts(
        hours_7d=sum((min(job.end, now) - job.start).total_seconds() for job in week) / 3600, jobs_7d=len(week),
        worked_days={local_day(job) for job in worked},
        late_night_jobs_7d=sum(1 for job in week if is_late_night(job, zone=zone, from_hour=t.late_night_hour)),
        back_to_back_pairs_7d=sum(1 for before, after in pairwise(worked)
                                  if w.week_start <= local_day(after) <= w.today and after.start - before.end < gap),
        cancellations_14d=len(cancels_recent), cancellations_previous_14d=len(cancels_previous),
        rating_sum_14d=sum(job.rating for job in rated_recent), ratings_14d=len(rated_recent),
        rating_sum_previous_14d=sum(job.rating for job in rated_previous), ratings_previous_14d=len(rated_previous),
        late_arrivals_14d=len(late_recent), late_arrivals_previous_14d=len(late_previous),
        zone=main_value([job.zone for job in recent_jobs]), category=main_value([job.category for job in recent_jobs]),
    )


def evaluate(jobs: list[Job], *, thresholds: Thresholds, zone: ZoneInfo, now: dt.datetime) -> Evaluation:
    """Every rule over one worker's jobs of the last HISTORY_DAYS; `now` is aware (any zone)."""
    return judge(counts_of(jobs, thresholds=thresholds, zone=zone, now=now), thresholds=thresholds, zone=zone,
                 now=now)


def judge(counts: Counts, *, thresholds: Thresholds, zone: ZoneInfo, now: dt.datetime) -> Evaluation:
    """The rules over one worker's numbers: the signals, their level and every number, for the record."""
    t, c = thresholds, counts
    today = Windows.at(now, zone).today
    hours = c.hours_7d
    streak = days_without_break(c.worked_days, today=today)

    def average(total: int, n: int) -> float | None:
        return round(total / n, 2) if n else None

    rating_recent, rating_previous = average(c.rating_sum_14d, c.ratings_14d), average(c.rating_sum_previous_14d,
                                                                                       c.ratings_previous_14d)
    metrics = {
        "hours_7d": round(hours, 2), "days_without_break": streak, "late_night_jobs_7d": c.late_night_jobs_7d,
        "back_to_back_pairs_7d": c.back_to_back_pairs_7d, "jobs_7d": c.jobs_7d,
        "worker_cancellations_14d": c.cancellations_14d,
        "worker_cancellations_previous_14d": c.cancellations_previous_14d,
        "rating_14d": rating_recent, "rating_previous_14d": rating_previous,
        "ratings_14d": c.ratings_14d, "ratings_previous_14d": c.ratings_previous_14d,
        "late_arrivals_14d": c.late_arrivals_14d, "late_arrivals_previous_14d": c.late_arrivals_previous_14d,
        "as_of": today.isoformat(), "time_zone": str(zone),
    }
    signals: list[dict] = []

    def signal(code: str, level: str, **params) -> None:
        item = {"code": code, "level": level, "params": params}
        with translation.override("en"):  # the stored text is English (webhook, timeline); readers get signal_text
            item["text"] = signal_text(item)
        signals.append(item)

    if hours >= t.alert_hours_7d or hours >= t.watch_hours_7d:
        level = "alert" if hours >= t.alert_hours_7d else "watch"
        threshold = t.alert_hours_7d if level == "alert" else t.watch_hours_7d
        signal("hours", level, hours=hours_number(hours), threshold=threshold)
    if streak >= t.max_days_without_break:
        signal("no_day_off", "watch", days=streak)
    if c.late_night_jobs_7d >= t.late_night_jobs:
        signal("late_night", "watch", jobs=c.late_night_jobs_7d, hour=f"{t.late_night_hour:02d}:00")
    if c.back_to_back_pairs_7d >= t.back_to_back_pairs:
        signal("back_to_back", "watch", pairs=c.back_to_back_pairs_7d, minutes=t.back_to_back_gap_minutes)
    if c.cancellations_14d >= t.trend_min_count and c.cancellations_14d > c.cancellations_previous_14d:
        signal("cancellations_rising", "watch", recent=c.cancellations_14d, previous=c.cancellations_previous_14d)
    if (c.ratings_14d >= t.trend_min_count and c.ratings_previous_14d >= t.trend_min_count
            and Decimal(str(rating_previous)) - Decimal(str(rating_recent)) >= t.rating_drop):
        signal("ratings_falling", "watch", recent=f"{rating_recent:g}", previous=f"{rating_previous:g}")
    if c.late_arrivals_14d >= t.trend_min_count and c.late_arrivals_14d > c.late_arrivals_previous_14d:
        signal("lateness_rising", "watch", recent=c.late_arrivals_14d, previous=c.late_arrivals_previous_14d)

    if not signals:
        overall = None
    elif any(item["level"] == "alert" for item in signals) or len(signals) >= t.alert_at_signals:
        overall = "alert"
    else:
        overall = "watch"
    return Evaluation(level=overall, signals=signals, metrics=metrics, zone=c.zone, category=c.category)
