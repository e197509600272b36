"""The burnout rules, as pure functions over one worker's jobs (no database): what `burnout_evaluate` runs per worker
and what the tests pin at every threshold.

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


def evaluate(jobs: list[Job], *, thresholds: Thresholds, zone: ZoneInfo, now: dt.datetime) -> Evaluation:
    """Every rule over one worker's jobs of the last HISTORY_DAYS; `now` is aware (any zone)."""
    t = thresholds
    today = _local(now, zone).date()
    week_start = today - dt.timedelta(days=WINDOW_DAYS - 1)
    recent_start = today - dt.timedelta(days=TREND_DAYS - 1)
    previous_start = recent_start - dt.timedelta(days=TREND_DAYS)

    def local_day(job: Job) -> dt.date:
        return _local(job.start, zone).date()

    worked = sorted((job for job in jobs if not job.is_cancelled and job.start <= now), key=lambda job: job.start)
    week = [job for job in worked if week_start <= local_day(job) <= today]
    hours = sum((min(job.end, now) - job.start).total_seconds() for job in week) / 3600
    streak = days_without_break({local_day(job) for job in worked}, today=today)
    late_night = [job for job in week if is_late_night(job, zone=zone, from_hour=t.late_night_hour)]
    gap = dt.timedelta(minutes=t.back_to_back_gap_minutes)
    back_to_back = sum(1 for before, after in pairwise(worked)
                       if week_start <= local_day(after) <= today and after.start - before.end < gap)

    def periods(selected) -> tuple[list[Job], list[Job]]:
        recent = [job for job in selected if recent_start <= local_day(job) <= today]
        previous = [job for job in selected if previous_start <= local_day(job) < recent_start]
        return recent, previous

    past = [job for job in jobs if job.start <= now]
    cancels_recent, cancels_previous = periods([job for job in past if job.is_cancelled_by_worker])
    rated_recent, rated_previous = periods([job for job in worked if job.rating is not None])
    grace = dt.timedelta(minutes=t.late_grace_minutes)
    late_recent, late_previous = periods([job for job in worked if job.arrived_at
                                          and job.arrived_at - (job.scheduled_at or job.start) > grace])

    def average(rated: list[Job]) -> float | None:
        return round(sum(job.rating for job in rated) / len(rated), 2) if rated else None

    rating_recent, rating_previous = average(rated_recent), average(rated_previous)
    metrics = {
        "hours_7d": round(hours, 2), "days_without_break": streak, "late_night_jobs_7d": len(late_night),
        "back_to_back_pairs_7d": back_to_back, "jobs_7d": len(week),
        "worker_cancellations_14d": len(cancels_recent), "worker_cancellations_previous_14d": len(cancels_previous),
        "rating_14d": rating_recent, "rating_previous_14d": rating_previous,
        "ratings_14d": len(rated_recent), "ratings_previous_14d": len(rated_previous),
        "late_arrivals_14d": len(late_recent), "late_arrivals_previous_14d": len(late_previous),
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
    if len(late_night) >= t.late_night_jobs:
        signal("late_night", "watch", jobs=len(late_night), hour=f"{t.late_night_hour:02d}:00")
    if back_to_back >= t.back_to_back_pairs:
        signal("back_to_back", "watch", pairs=back_to_back, minutes=t.back_to_back_gap_minutes)
    if len(cancels_recent) >= t.trend_min_count and len(cancels_recent) > len(cancels_previous):
        signal("cancellations_rising", "watch", recent=len(cancels_recent), previous=len(cancels_previous))
    if (len(rated_recent) >= t.trend_min_count and len(rated_previous) >= t.trend_min_count
            and Decimal(str(rating_previous)) - Decimal(str(rating_recent)) >= t.rating_drop):
        signal("ratings_falling", "watch", recent=f"{rating_recent:g}", previous=f"{rating_previous:g}")
    if len(late_recent) >= t.trend_min_count and len(late_recent) > len(late_previous):
        signal("lateness_rising", "watch", recent=len(late_recent), previous=len(late_previous))

    if not signals:
        overall = None
    elif any(item["level"] == "alert" for item in signals) or len(signals) >= t.alert_at_signals:
        overall = "alert"
    else:
        overall = "watch"
    recent_jobs = [job for job in worked if previous_start <= local_day(job) <= today]
    zone_name = Counter(job.zone for job in recent_jobs if job.zone).most_common(1)
    category = Counter(job.category for job in recent_jobs if job.category).most_common(1)
    return Evaluation(level=overall, signals=signals, metrics=metrics,
                      zone=zone_name[0][0] if zone_name else "", category=category[0][0] if category else "")
