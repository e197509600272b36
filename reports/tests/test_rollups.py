"""Rollups agree with direct counts over the raw rows, day by day in Asia/Dhaka; the day boundary; the tick, the
watermark and the backfill."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db.models import F, Q, Sum

from coaching.models import BookingPunctuality
from crm.models import Event, Lead
from crm.tests.factories import CompanyFactory
from engage.api import AISession, Message, attributed_bookings
from engage.ledger.models import Job
from reports.rollups.aggregate import cohort_of, first_activity_day, utc_range
from reports.rollups.models import (
    AIDaily,
    EngagementDaily,
    LeadDaily,
    LeadStageCount,
    LeadStageTimeDaily,
    RollupWatermark,
    WorkerDaily,
)
from reports.rollups.services import refresh_window, rollups_backfill, rollups_refresh, rollups_tick
from reports.tests.seed import seed_company

DHAKA = ZoneInfo("Asia/Dhaka")
END = dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC)
FIRST, LAST = dt.date(2026, 11, 24), dt.date(2026, 12, 1)


@pytest.fixture
def seeded(db):
    company = CompanyFactory(slug="seeded", timezone="Asia/Dhaka")
    other = CompanyFactory(slug="other", timezone="Asia/Dhaka")
    seed_company(company=company, days=6, per_day=7, end=END)
    seed_company(company=other, days=2, per_day=3, end=END)
    rollups_refresh(company=company, first=FIRST, last=LAST)
    return company


def days():
    day = FIRST
    while day <= LAST:
        yield day
        day += dt.timedelta(days=1)


def rolled(model, company, day, field):
    return model.objects.filter(company=company, local_date=day).aggregate(n=Sum(field))["n"] or 0


def engagement(company):
    return Message.objects.filter(company=company, direction="outbound").exclude(agent_type="coachnova")


def raw_engagement(company, day, metric):
    start, end = utc_range(company, day, day)
    if metric in ("sent", "delivered", "failed"):
        return engagement(company).filter(**{f"{metric}_at__gte": start, f"{metric}_at__lt": end}).count()
    if metric == "opt_outs":
        return Event.objects.filter(company=company, type="opt_out", occurred_at__gte=start, occurred_at__lt=end).count()
    types = {"opened": ["notification_opened"], "clicked": ["message_clicked", "deeplink_followed"]}
    if metric in types:
        correlations = engagement(company).values("correlation_id")
        return Event.objects.filter(company=company, type__in=types[metric], occurred_at__gte=start,
                                    occurred_at__lt=end, correlation_id__in=correlations).count()
    booked = attributed_bookings(company=company).filter(occurred_at__gte=start, occurred_at__lt=end,
                                                         touch_correlation_id__in=engagement(company).values(
                                                             "correlation_id"))
    if metric == "booked":
        return booked.count()
    return sum((Decimal(str(event.payload["amount"])) for event in booked), Decimal(0))


@pytest.mark.embedded
@pytest.mark.parametrize("metric", ["sent", "delivered", "failed", "opened", "clicked", "booked", "revenue",
                                    "opt_outs"])
def test_engagement_rollup_agrees_with_the_raw_rows(seeded, metric):
    checked = 0
    for day in days():
        expected = raw_engagement(seeded, day, metric)
        assert rolled(EngagementDaily, seeded, day, metric) == expected, (metric, day)
        checked += expected
    assert checked > 0  # the seed has some of each


@pytest.mark.embedded
@pytest.mark.parametrize("outcome", ["ok", "error", "fallback", "rejected"])
def test_ai_rollup_agrees_with_the_raw_rows(seeded, outcome):
    for day in days():
        start, end = utc_range(seeded, day, day)
        sessions = AISession.objects.filter(company=seeded, created_at__gte=start, created_at__lt=end)
        rows = AIDaily.objects.filter(company=seeded, local_date=day)
        assert (rows.filter(outcome=outcome).aggregate(n=Sum("sessions"))["n"] or 0) == sessions.filter(
            outcome=outcome).count()
        raw = sessions.aggregate(latency=Sum("latency_ms"), tin=Sum("tokens_in"), tout=Sum("tokens_out"))
        got = rows.aggregate(latency=Sum("latency_ms_sum"), tin=Sum("tokens_in"), tout=Sum("tokens_out"))
        assert (got["latency"] or 0, got["tin"] or 0, got["tout"] or 0) == (
            raw["latency"] or 0, raw["tin"] or 0, raw["tout"] or 0)
        assert (rows.aggregate(n=Sum("latency_count"))["n"] or 0) == sessions.filter(latency_ms__gt=0).count()
    rejected = AIDaily.objects.filter(company=seeded, outcome="rejected")
    assert set(rejected.values_list("reason", flat=True)) <= {"banned_phrase", "link"}
    assert rejected.exists()
    assert set(AIDaily.objects.filter(company=seeded, outcome="error").values_list("reason", flat=True)) == {"timeout"}


@pytest.mark.embedded
def test_lead_rollups_agree_with_the_raw_rows(seeded):
    for day in days():
        start, end = utc_range(seeded, day, day)
        for source in ("ad", "website", "whatsapp"):
            raw = Lead.objects.filter(company=seeded, source=source, created_at__gte=start, created_at__lt=end)
            assert (LeadDaily.objects.filter(company=seeded, local_date=day, source=source)
                    .aggregate(n=Sum("new"))["n"] or 0) == raw.count()
        for status in ("won", "lost"):
            raw = Event.objects.filter(company=seeded, type="stage.changed", payload__status=status,
                                       occurred_at__gte=start, occurred_at__lt=end).count()
            assert rolled(LeadDaily, seeded, day, status) == raw
    stages = dict(LeadStageCount.objects.filter(company=seeded).values_list("stage_name", "leads"))
    for name, count in stages.items():
        assert Lead.objects.filter(company=seeded, stage__name=name).count() == count
    assert stages["Won"] > 0 and stages["New"] > 0


def raw_stays(company):
    """(local day left, stage id, local days in it) of every stay, straight from each lead's stage.changed events
    (found by the payload's lead id) chained from the lead's creation."""
    stays = []
    for lead in Lead.objects.filter(company=company):
        entered = lead.created_at
        for event in Event.objects.filter(company=company, type="stage.changed",
                                          payload__lead_id=lead.pk).order_by("occurred_at", "id"):
            left = event.occurred_at.astimezone(DHAKA).date()
            stays.append((left, event.payload["from_id"], (left - entered.astimezone(DHAKA).date()).days))
            entered = event.occurred_at
    return stays


@pytest.mark.embedded
def test_time_in_stage_rollup_agrees_with_the_raw_rows(seeded):
    import math

    from reports.selectors import time_in_stage

    stays = [stay for stay in raw_stays(seeded) if FIRST <= stay[0] <= LAST]
    for day in days():
        for stage_id in {stay[1] for stay in stays}:
            raw = [stay[2] for stay in stays if stay[0] == day and stay[1] == stage_id]
            rows = LeadStageTimeDaily.objects.filter(company=seeded, local_date=day, stage_id=stage_id)
            assert sum(row.stays for row in rows) == len(raw), (day, stage_id)
            assert sum(row.stays * row.days for row in rows) == sum(raw), (day, stage_id)
    # the card's median and p90 (nearest rank) per stage over the whole period
    got = {row["stage_id"]: row for row in time_in_stage(company=seeded, first=FIRST, last=LAST)}
    assert set(got) == {stay[1] for stay in stays} and len(got) >= 2  # New and the second stage at least
    for stage_id, row in got.items():
        values = sorted(stay[2] for stay in stays if stay[1] == stage_id)
        assert row["stays"] == len(values)
        assert row["median_days"] == values[math.ceil(0.5 * len(values)) - 1]
        assert row["p90_days"] == values[math.ceil(0.9 * len(values)) - 1]
        assert row["stage_name"] and not row["stage_name"].startswith("#")
    assert any(row["p90_days"] >= 2 for row in got.values())  # stays over several local days are seeded


def test_time_in_stage_counts_local_days_and_skips_unknown_starts(db):
    # given a lead created at 17:00 UTC on 1 Dec (23:00 in Dhaka) moved out at 18:30 UTC (00:30 on 2 Dec in Dhaka)
    from crm.models import Stage
    from crm.services import lead_move_to_stage
    from crm.tests.factories import ContactFactory

    company = CompanyFactory(slug="stages", timezone="Asia/Dhaka")
    pipeline = _pipeline(company)
    second = Stage.objects.create(pipeline=pipeline, name="Qualified", order=2, kind="open")
    lead = Lead.objects.create(company=company, contact=ContactFactory(company=company), pipeline=pipeline,
                               stage=pipeline.stages.get(name="New"),
                               created_at=dt.datetime(2026, 12, 1, 17, tzinfo=dt.UTC))
    lead_move_to_stage(lead=lead, stage=second)
    Event.objects.filter(type="stage.changed").update(occurred_at=dt.datetime(2026, 12, 1, 18, 30, tzinfo=dt.UTC))
    # and a stage change of a lead since deleted, with no earlier change (its start is unknown)
    Event.objects.create(company=company, type="stage.changed", occurred_at=dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC),
                         payload={"lead_id": 987654, "from_id": second.pk, "to_id": second.pk, "status": "open"})
    # when
    rollups_refresh(company=company, first=dt.date(2026, 12, 1), last=dt.date(2026, 12, 2))
    # then: one stay in New, left on 2 Dec, one local day long (23:00 -> 00:30 crosses a Dhaka midnight)
    assert list(LeadStageTimeDaily.objects.filter(company=company).values_list("local_date", "stage_id", "days",
                                                                                 "stays")) == [
        (dt.date(2026, 12, 2), pipeline.stages.get(name="New").pk, 1, 1)]


@pytest.mark.embedded
def test_worker_rollup_agrees_with_the_raw_rows(seeded):
    for day in days():
        rows = BookingPunctuality.objects.filter(company=seeded, local_date=day)
        assert rolled(WorkerDaily, seeded, day, "on_time") == rows.filter(outcome="on_time", is_excused=False).count()
        assert rolled(WorkerDaily, seeded, day, "late") == rows.filter(~Q(outcome="on_time"), is_excused=False).count()
        assert rolled(WorkerDaily, seeded, day, "excused") == rows.filter(is_excused=True).count()
        coached = rows.filter(worker__coaching__status="coached", worker__coaching__created_at__lte=F("scheduled_at"))
        assert (WorkerDaily.objects.filter(company=seeded, local_date=day, coached=True).aggregate(
            n=Sum("on_time"))["n"] or 0) == coached.filter(outcome="on_time", is_excused=False).distinct().count()
        assert (WorkerDaily.objects.filter(company=seeded, local_date=day, coached=True).aggregate(
            n=Sum("late"))["n"] or 0) == coached.filter(~Q(outcome="on_time"), is_excused=False).distinct().count()
        for zone in ("Dhanmondi", "Gulshan"):
            assert (WorkerDaily.objects.filter(company=seeded, local_date=day, zone=zone).aggregate(
                n=Sum("on_time"))["n"] or 0) == rows.filter(booking__zone=zone, outcome="on_time",
                                                            is_excused=False).count()


def test_both_coached_and_not_coached_workers_are_seeded(seeded):
    assert set(WorkerDaily.objects.filter(company=seeded).values_list("coached", flat=True)) == {True, False}


def test_segment_rollups_split_the_totals_exactly(seeded):
    total = EngagementDaily.objects.filter(company=seeded).aggregate(n=Sum("sent"))["n"]
    by_channel = {row["channel"]: row["n"] for row in EngagementDaily.objects.filter(company=seeded).values(
        "channel").annotate(n=Sum("sent"))}
    assert sum(by_channel.values()) == total
    for channel, count in by_channel.items():
        start, end = utc_range(seeded, FIRST, LAST)
        assert engagement(seeded).filter(channel=channel, sent_at__gte=start, sent_at__lt=end).count() == count
    assert EngagementDaily.objects.filter(company=seeded, campaign_id__gt=0, service_category="cleaning").exists()
    assert EngagementDaily.objects.filter(company=seeded, template_version_id__gt=0).exists()


@pytest.mark.embedded
def test_an_event_at_18_30_utc_counts_on_the_next_dhaka_day(db):
    # given one message sent at 18:30 UTC on 1 Dec (00:30 on 2 Dec in Dhaka) and one at 17:59 UTC
    company = CompanyFactory(slug="boundary", timezone="Asia/Dhaka")
    from crm.tests.factories import ContactFactory

    contact = ContactFactory(company=company)
    for hour, minute in ((18, 30), (17, 59)):
        at = dt.datetime(2026, 12, 1, hour, minute, tzinfo=dt.UTC)
        Message.objects.create(company=company, contact=contact, direction="outbound", channel="sms",
                               agent_type="smartengage", body="x", status="sent", sent_at=at, created_at=at)
        AISession.objects.create(company=company, agent_type="sales", purpose="reply", outcome="ok", created_at=at)
        Lead.objects.create(company=company, contact=contact, pipeline=_pipeline(company), stage=_pipeline(
            company).stages.first(), source="ad", created_at=at)
    # when
    rollups_refresh(company=company, first=dt.date(2026, 12, 1), last=dt.date(2026, 12, 2))
    # then
    for model, field in ((EngagementDaily, "sent"), (AIDaily, "sessions"), (LeadDaily, "new")):
        assert rolled(model, company, dt.date(2026, 12, 2), field) == 1
        assert rolled(model, company, dt.date(2026, 12, 1), field) == 1


def _pipeline(company):
    from crm.models import Pipeline, Stage

    pipeline, created = Pipeline.objects.get_or_create(company=company, name="Sales")
    if created:
        Stage.objects.create(pipeline=pipeline, name="New", order=1, kind="open")
    return pipeline


def test_cohorts():
    at = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    assert cohort_of(last_booking_at=None, at=at) == "never"
    assert cohort_of(last_booking_at=at - dt.timedelta(days=30), at=at) == "0-30"
    assert cohort_of(last_booking_at=at - dt.timedelta(days=31), at=at) == "31-90"
    assert cohort_of(last_booking_at=at - dt.timedelta(days=200), at=at) == "181+"
    assert cohort_of(last_booking_at=at + dt.timedelta(days=2), at=at) == "0-30"


def test_refresh_replaces_the_days_rows_and_keeps_other_companies(seeded):
    other = RollupWatermark.objects.exclude(company=seeded)
    assert not other.exists()
    from crm.models import Company

    other_company = Company.objects.get(slug="other")
    rollups_refresh(company=other_company, first=FIRST, last=LAST)
    other_sent = EngagementDaily.objects.filter(company=other_company).aggregate(n=Sum("sent"))["n"]
    assert EngagementDaily.objects.filter(company=seeded).aggregate(n=Sum("sent"))["n"] > 0
    Message.objects.filter(company=seeded).delete()
    rollups_refresh(company=seeded, first=FIRST, last=LAST)
    assert EngagementDaily.objects.filter(company=seeded).aggregate(n=Sum("sent"))["n"] == 0  # opt-outs stay
    assert EngagementDaily.objects.filter(company=other_company).aggregate(n=Sum("sent"))["n"] == other_sent > 0
    assert RollupWatermark.objects.get(company=seeded).through_date == LAST


def test_the_window_is_three_local_days_or_from_an_older_watermark(seeded):
    now = dt.datetime(2026, 12, 3, 18, 30, tzinfo=dt.UTC)  # 4 Dec 00:30 in Dhaka
    RollupWatermark.objects.filter(company=seeded).update(through_date=dt.date(2026, 12, 3))
    assert refresh_window(company=seeded, now=now) == (dt.date(2026, 12, 2), dt.date(2026, 12, 4))
    RollupWatermark.objects.filter(company=seeded).update(through_date=dt.date(2026, 11, 20))
    assert refresh_window(company=seeded, now=now) == (dt.date(2026, 11, 20), dt.date(2026, 12, 4))


def test_the_tick_queues_one_refresh_job_per_active_company_once_per_slot(seeded):
    CompanyFactory(slug="asleep", is_active=False)
    now = dt.datetime(2026, 12, 3, 10, 1, tzinfo=dt.UTC)
    assert rollups_tick(now=now) == {"queued": 2}
    rollups_tick(now=now + dt.timedelta(minutes=1))
    jobs = Job.objects.filter(task_name="reports_rollups_refresh")
    assert jobs.count() == 2
    assert set(jobs.values_list("company__slug", flat=True)) == {"seeded", "other"}


def test_the_refresh_job_rebuilds_the_recent_days(seeded):
    from engage.tests.helpers import run_job

    rollups_tick()
    job = Job.objects.get(task_name="reports_rollups_refresh", company=seeded)
    run_job(job)
    job.refresh_from_db()
    assert job.status == Job.Status.COMPLETED, job.last_error
    assert RollupWatermark.objects.get(company=seeded).through_date >= LAST


def test_backfill_command_rebuilds_everything(seeded, capsys):
    EngagementDaily.objects.all().delete()
    call_command("reports_backfill", "--company", str(seeded.pk), "--until", "2026-12-01")
    assert "seeded:" in capsys.readouterr().out
    assert EngagementDaily.objects.filter(company=seeded).aggregate(n=Sum("sent"))["n"] == engagement(
        seeded).filter(sent_at__isnull=False).count()
    results = rollups_backfill(company=seeded, last=dt.date(2026, 12, 1), chunk_days=2)
    assert len(results) >= 3


def test_backfill_refuses_an_unknown_company(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("reports_backfill", "--company", "987654")


def test_a_companys_first_refresh_goes_back_to_its_first_activity(seeded):
    # no watermark yet (history seeded or imported before the dashboard): the first tick covers all of it
    RollupWatermark.objects.filter(company=seeded).delete()
    now = dt.datetime(2026, 12, 31, 6, 0, tzinfo=dt.UTC)
    first_day = first_activity_day(company=seeded)

    assert first_day is not None and first_day < dt.date(2026, 12, 29)
    assert refresh_window(company=seeded, now=now) == (first_day, dt.date(2026, 12, 31))
