"""seed_demo's engagement story (engage/demo.py): what a newcomer sees after `make run`, on PostgreSQL and on
the embedded default (the `embedded` tests run again on SQLite in `make test`).

The story is seeded for today: its campaign runs pick their customers by the real clock, and the
customers' booking dates are relative to the seeded day.
"""

import datetime as dt
import io
from collections import Counter
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.apps import apps
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from crm import demo
from crm.models import Company, Lead, User
from engage import demo as story
from engage.ai.models import KnowledgeDoc
from engage.campaigns.models import Campaign, CampaignRecipient, CampaignRun
from engage.campaigns.runs import campaign_funnel
from engage.conversations.models import Enrollment
from engage.ledger.models import Job
from engage.ledger.services import dlq_replay, job_execute
from engage.messaging.models import Message
from engage.prompts.models import PromptTemplateVersion

DHAKA = ZoneInfo("Asia/Dhaka")


@pytest.fixture(autouse=True)
def demo_settings(settings, tmp_path, monkeypatch):
    settings.VAR_DIR = tmp_path  # the generated demo password goes here
    monkeypatch.delenv("DEMO_ADMIN_PASSWORD", raising=False)


def seed(*arguments: str) -> str:
    out = io.StringIO()
    call_command("seed_demo", "--now", timezone.now().date().isoformat(), *arguments, stdout=out)
    return out.getvalue()


def row_counts() -> dict[str, int]:
    """Every table of the project's apps (and groups): a rerun must not add, remove or replace a row."""
    models = [model for app in ("crm", "engage", "channels_app") for model in apps.get_app_config(app).get_models()]
    return {model._meta.label: model.objects.count() for model in [*models, Group]}


def story_facts() -> dict:
    """What the story shows, without ids or exact times: the same day seeds the same facts."""
    home = Company.objects.get(slug=demo.HOME_SERVICES_SLUG)
    courses = Company.objects.get(slug=demo.COURSES_SLUG)
    runs = CampaignRun.objects.filter(company=home).order_by("campaign__name")
    return {
        "runs": [(run.campaign.name, run.status, run.is_dry_run, run.total_eligible, run.sent, run.skipped,
                  run.rendered) for run in runs],
        "funnels": {campaign.name: campaign_funnel(campaign=campaign) for campaign in Campaign.objects.filter(company=home)},
        "winback_phones": sorted(CampaignRecipient.objects.filter(
            run__campaign__name=story.WIN_BACK_CAMPAIGN, status="sent").values_list("customer__contact__phone", flat=True)),
        "messages": sorted(Counter(Message.objects.filter(company=courses).values_list(
            "lead__contact__phone", "direction", "agent_type", "message_type", "status")).items()),
        "jobs": sorted(Counter(Job.objects.values_list("company__slug", "task_name", "status")).items()),
        "leads": sorted(
            (lead.contact.phone, lead.channel, lead.is_ai_paused, lead.handoff_requested_at is None)
            for lead in Lead.objects.filter(company=courses).select_related("contact")
        ),
        "enrollments": sorted(Enrollment.objects.values_list("lead__contact__phone", "status", "current_step__order")),
    }


@pytest.mark.embedded
@pytest.mark.django_db
def test_the_demo_tells_the_story_and_a_rerun_writes_nothing(settings):
    # when
    output = seed()

    # then: published templates for every agent type the demo uses, in both companies
    home = Company.objects.get(slug=demo.HOME_SERVICES_SLUG)
    courses = Company.objects.get(slug=demo.COURSES_SLUG)
    for company in (home, courses):
        published = set(PromptTemplateVersion.objects.filter(
            template__company=company, status=PromptTemplateVersion.Status.APPROVED
        ).values_list("template__agent_type", "template__name"))
        assert {("smartengage", "reminder"), ("smartengage", "reminder_system"), ("sales", "sequence_welcome")} <= published
        # and the facts its AI may quote
        assert KnowledgeDoc.objects.filter(company=company, is_active=True).count() == len(story.KNOWLEDGE[company.slug])
    now = timezone.now()

    # the win-back campaign: a real run two days ago at 10:00 in Dhaka, under the preset's own window
    campaigns = {campaign.name: campaign for campaign in Campaign.objects.filter(company=home)}
    assert set(campaigns) == {story.WIN_BACK_CAMPAIGN, story.DAILY_CAMPAIGN, story.EID_CAMPAIGN}
    assert {campaign.channel for campaign in campaigns.values()} == {"sms"}
    (win_back_run,) = campaigns[story.WIN_BACK_CAMPAIGN].runs.all()
    assert (win_back_run.status, win_back_run.is_dry_run) == (CampaignRun.Status.COMPLETED, False)
    started = win_back_run.created_at.astimezone(DHAKA)
    assert (started.date(), started.hour) == ((now.astimezone(DHAKA) - dt.timedelta(days=2)).date(), 10)
    assert (win_back_run.preset["send_window_start_hour"], win_back_run.preset["send_window_end_hour"]) == (10, 17)
    assert win_back_run.sent >= 10
    # every message, job and event of the run is on that morning, not at the time the seed ran
    messages = Message.objects.filter(campaign_recipients__run=win_back_run)
    assert all(abs(message.created_at - win_back_run.created_at) < dt.timedelta(minutes=5) for message in messages)
    funnel = campaign_funnel(campaign=campaigns[story.WIN_BACK_CAMPAIGN])
    assert funnel["sent"] == win_back_run.sent
    assert funnel["sent"] > funnel["delivered"] > funnel["opened"] > funnel["clicked"] > funnel["booked"] > 0

    # "SmartEngage daily": only a dry run (a preview ignoring the window outside it), nothing sent
    (daily_run,) = campaigns[story.DAILY_CAMPAIGN].runs.all()
    assert (daily_run.status, daily_run.is_dry_run, daily_run.sent) == (CampaignRun.Status.COMPLETED, True, 0)
    local_hour = now.astimezone(DHAKA).hour
    assert daily_run.preset.get("ignores_send_window", False) == (not 9 <= local_hour < 18)
    assert daily_run.rendered > 0
    # "Eid offer": paused, with its promo code, never run
    eid = campaigns[story.EID_CAMPAIGN]
    assert (eid.is_paused, eid.promo_code, eid.runs.count()) == (True, "EID25", 0)

    # courses: conversations over the last 30 days, each answered by the AI (offline: the fallback)
    inbound = Message.objects.filter(company=courses, direction=Message.Direction.INBOUND)
    talking = set(inbound.values_list("lead_id", flat=True))
    assert len(talking) >= 12
    days = {message.created_at.date() for message in inbound}
    assert len(days) >= 8 and min(days) >= (now - dt.timedelta(days=30)).date()
    replies = Message.objects.filter(company=courses, agent_type="sales", message_type="reply", status="sent")
    assert set(replies.values_list("lead_id", flat=True)) == talking
    # one lead taken over by a person who answered; one asked for a person and waits, the AI paused
    manual = Message.objects.filter(company=courses, agent_type=Message.AgentType.MANUAL)
    assert manual.filter(status=Message.Status.SENT).count() == 1
    assert Lead.objects.get(pk=manual.get(status=Message.Status.SENT).lead_id).is_ai_paused
    (waiting,) = Lead.objects.filter(company=courses, handoff_requested_at__isnull=False)
    assert waiting.is_ai_paused
    last = Message.objects.filter(lead=waiting).order_by("-created_at").first()
    assert (last.direction, last.body) == (Message.Direction.INBOUND, story.HANDOFF_REQUEST)
    # a dead job: a person's reply on SMS that found no SMS account
    (dead,) = Job.objects.filter(status=Job.Status.DEAD)
    assert (dead.company, dead.task_name) == (courses, "manual_reply")
    assert "no Twilio credentials" in dead.last_error
    # leads in the welcome sequence: step 1 sent, step 2 due later
    enrollments = Enrollment.objects.filter(company=courses, sequence__name=story.WELCOME_SEQUENCE)
    assert enrollments.count() >= 4
    for enrollment in enrollments:
        assert (enrollment.status, enrollment.current_step.order) == (Enrollment.Status.ACTIVE, 2)
        assert now < enrollment.next_run_at < now + dt.timedelta(days=2)
        assert Message.objects.filter(lead=enrollment.lead, message_type="sequence_step", status="sent").count() == 1
    # nothing left for a worker to do at once (a follow-up due last week ran in the seed), nothing in the future
    assert not Job.objects.filter(status=Job.Status.QUEUED, next_run_at__lte=now).exists()
    assert not Message.objects.filter(created_at__gt=now).exists()
    # the people have names
    assert set(User.objects.values_list("full_name", flat=True)) == {"Farhana Rahman", "Rahima Akter", "Tanvir Hasan"}
    assert "booked" in output and "waiting for a person" in output

    # when: seeded again
    counts, facts = row_counts(), story_facts()
    again = seed()

    # then: nothing written
    assert "nothing created" in again
    assert (row_counts(), story_facts()) == (counts, facts)

    # when: ops replay the dead job where the console stands in for SMS (make run)
    settings.CHANNELS_CONSOLE_FALLBACK = True
    replay = dlq_replay(company=courses)
    outcome = job_execute(job_id=dead.pk, worker="test")

    # then: the reply is sent
    assert (replay.replayed, replay.refused, outcome) == ([dead.pk], [], "completed")
    reply = Message.objects.get(job=dead)
    assert (reply.status, reply.agent_type) == (Message.Status.SENT, Message.AgentType.MANUAL)


@pytest.mark.django_db
def test_the_same_day_seeds_the_same_story():
    # Both seeds start at one instant (time flows on from it): the campaign rules read the real clock, so a
    # booking that crosses a window's edge in the seconds between two seeds would rightly change a count.
    start = timezone.now()
    # given: the story seeded, then every table emptied (a new database; the test's transaction undoes it)
    with time_machine.travel(start, tick=True):
        seed()
    first = story_facts()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # check the deferred keys now: TRUNCATE waits for none
    call_command("flush", interactive=False, verbosity=0)
    assert not Company.objects.exists()

    # when
    with time_machine.travel(start, tick=True):
        seed()

    # then
    assert story_facts() == first
    assert first["winback_phones"] and first["enrollments"]


@pytest.mark.django_db
def test_no_story_seeds_the_crm_graph_only():
    output = seed("--customers", "10", "--no-story")

    assert Company.objects.filter(slug=demo.HOME_SERVICES_SLUG).exists()
    assert not Campaign.objects.exists() and not Message.objects.exists() and not Job.objects.exists()
    assert "waiting for a person" not in output


@pytest.mark.django_db
def test_a_large_volume_leaves_the_story_out_unless_asked(monkeypatch):
    from shokti.management.commands import seed_demo

    monkeypatch.setattr(seed_demo, "STORY_MAX_CUSTOMERS", 5)

    output = seed("--customers", "6")
    with pytest.raises(CommandError, match="at most 5 customers"):
        seed("--customers", "6", "--story")

    assert "Story not seeded: more than 5 customers" in output
    assert not Campaign.objects.exists()


@pytest.mark.django_db
def test_the_story_cannot_be_seeded_for_a_day_after_today():
    tomorrow = (timezone.now() + dt.timedelta(days=1)).date().isoformat()

    with pytest.raises(CommandError, match="after today"):
        call_command("seed_demo", "--now", tomorrow, "--customers", "0", stdout=io.StringIO())
    assert not Company.objects.exists()


@pytest.mark.embedded
@pytest.mark.django_db
def test_the_demo_has_a_finished_experiment_with_an_effect_and_an_a_a_test_without_one():
    from engage.experiments.models import Experiment
    from engage.experiments.selectors import experiment_results

    # when
    output = seed()
    # then
    home = Company.objects.get(slug=demo.HOME_SERVICES_SLUG)
    wording = experiment_results(experiment=Experiment.objects.get(company=home, name=story.WORDING_EXPERIMENT))
    same = experiment_results(experiment=Experiment.objects.get(company=home, name=story.AA_EXPERIMENT))
    assert wording["status"] == same["status"] == "stopped"
    assert not wording["is_hidden"] and not same["is_hidden"]
    assert wording["comparisons"][0]["uplift_low"] > 0, wording["verdict"]
    assert wording["verdict"].startswith("B (short and personal): +") and "better than control" in wording["verdict"]
    assert same["comparisons"][0]["uplift_low"] < 0 < same["comparisons"][0]["uplift_high"], same["verdict"]
    assert "no difference shown yet" in same["verdict"]
    assert story.WORDING_EXPERIMENT in output
    # the current wording is still the live one
    live = PromptTemplateVersion.objects.get(
        template__company=home, template__name="reminder", template__locale="bn", status="approved"
    )
    assert not live.body.endswith(story.NEW_WORDING)
