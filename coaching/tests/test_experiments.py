"""CoachNova under an experiment (read through engage.api): the company's holdout is skipped with reason holdout, each
coached worker gets their arm's template, and the message carries the assignment."""

import pytest

from coaching.models import CoachingSettings
from coaching.punctuality import punctuality_backfill
from coaching.tests.test_runs import AS_OF, GOOD_TEXT, late_worker, rows, start
from engage.experiments.services import experiment_start
from engage.models import AISession, Experiment, ExperimentSettings, ExperimentVariant, Message
from engage.prompts.models import PromptTemplate
from engage.prompts.services import template_version_approve, template_version_create, templates_seed_defaults

pytestmark = pytest.mark.embedded


@pytest.fixture(autouse=True)
def _daytime(monkeypatch):
    monkeypatch.setattr("coaching.runs.quiet_hours_end", lambda **kwargs: None)


@pytest.mark.django_db
def test_a_coachnova_run_reads_the_holdout_and_the_arms(company, twilio_account, fake_openai):
    # given 16 late workers, the company's holdout at 25%, and a coaching experiment of a new wording
    fake_openai.reply(GOOD_TEXT)
    templates_seed_defaults(company=company)
    workers = [late_worker(company, 3, phone=f"+88019110009{n:02d}") for n in range(16)]
    punctuality_backfill(company=company, as_of=AS_OF)
    CoachingSettings.objects.filter(company=company).update(holdout_percent=0)
    ExperimentSettings.objects.create(company=company, is_holdout_enabled=True, holdout_percent=25)
    template = PromptTemplate.objects.get(company=company, agent_type="coachnova", name="coaching", locale="bn")
    current = template.versions.get(status="approved")
    new = template_version_create(template=template, body=current.body + "\nনতুন কোচিং ভাষা।")
    template_version_approve(version=new)
    experiment = Experiment.objects.create(
        company=company, name="Coaching wording", applies_to="coaching", unit="worker", primary_metric="on_time_28d"
    )
    control = ExperimentVariant.objects.create(experiment=experiment, name="A", kind="control", template_version=current)
    variant = ExperimentVariant.objects.create(experiment=experiment, name="B", kind="template_version", template_version=new)
    experiment_start(experiment=experiment)
    # when a real run goes
    run = start(company)
    # then the holdout is skipped, with no message
    found = rows(run)
    held = [worker.pk for worker in workers if found[worker.pk].reason == "holdout"]
    assert held and all(found[pk].status == "skipped" for pk in held)
    assert not Message.objects.filter(contact__worker__in=held, direction="outbound").exists()
    # each coached worker's message carries its assignment, and its prompt is its arm's template
    coached = Message.objects.filter(direction="outbound", agent_type="coachnova").select_related("experiment_assignment")
    assert coached.count() == len(workers) - len(held)
    arms = set()
    for message in coached:
        assignment = message.experiment_assignment
        arms.add(assignment.variant_id)
        session = AISession.objects.filter(agent_type="coachnova", contact=message.contact).latest("id")
        user_prompt = session.prompt_messages[-1]["content"]
        assert ("নতুন কোচিং ভাষা।" in user_prompt) == (assignment.variant_id == variant.pk)
    assert arms == {control.pk, variant.pk}


@pytest.mark.django_db
def test_coachnova_arms_send_in_their_window_or_best_hour_and_ask_consent_again_then(
    company, twilio_account, fake_openai
):
    import datetime as dt
    from zoneinfo import ZoneInfo

    import time_machine
    from django.core.cache import cache

    from crm.services import consent_revoke
    from crm.tests.factories import EventFactory
    from engage.experiments.models import ExperimentPhase
    from engage.experiments.services import unit_bucket, variant_for_bucket
    from engage.tests.helpers import run_job

    dhaka = ZoneInfo("Asia/Dhaka")
    ten = dt.datetime(2026, 12, 7, 10, 0, tzinfo=dhaka)
    fake_openai.reply(GOOD_TEXT)
    cache.clear()
    templates_seed_defaults(company=company)
    windowed = late_worker(company, 3, phone="+8801911000801", timezone="Asia/Dhaka")
    timed = late_worker(company, 3, phone="+8801911000802", timezone="Asia/Dhaka")
    fixed = late_worker(company, 3, phone="+8801911000803", timezone="Asia/Dhaka")
    punctuality_backfill(company=company, as_of=AS_OF)
    CoachingSettings.objects.filter(company=company).update(holdout_percent=0)
    for days in range(1, 8):  # the second worker reads their messages at 17:xx
        EventFactory(company=company, contact=timed.contact, type="notification_opened",
                     occurred_at=dt.datetime.combine(ten.date() - dt.timedelta(days=days), dt.time(17, 5), tzinfo=dhaka))
    experiment = Experiment.objects.create(
        company=company, name="Coaching hours", applies_to="coaching", unit="worker", primary_metric="on_time_28d"
    )
    control = ExperimentVariant.objects.create(experiment=experiment, name="A", kind="control", weight=34)
    afternoon = ExperimentVariant.objects.create(
        experiment=experiment, name="B (14-16)", kind="send_setting", weight=33,
        settings={"send_window_start_hour": 14, "send_window_end_hour": 16},
    )
    best = ExperimentVariant.objects.create(experiment=experiment, name="C (best hour)", kind="send_time", weight=33)
    experiment_start(experiment=experiment)
    weights = [(control.pk, 34), (afternoon.pk, 33), (best.pk, 33)]
    wanted = {windowed.pk: afternoon.pk, timed.pk: best.pk, fixed.pk: control.pk}
    salt = next(
        f"s{n}" for n in range(5000)
        if all(variant_for_bucket(bucket=unit_bucket(salt=f"s{n}", experiment_id=experiment.pk, unit_id=pk),
                                  weights=weights) == arm for pk, arm in wanted.items())
    )
    ExperimentPhase.objects.filter(experiment=experiment).update(salt=salt)
    # when a run goes at 10:00 Dhaka
    with time_machine.travel(ten, tick=False):
        start(company)
    messages = {
        message.contact_id: message
        for message in Message.objects.filter(direction="outbound", agent_type="coachnova").select_related("job")
    }
    # then the control's message is due now, the window arm's at 14:00, the best hour's at 17:00 (all queued)
    assert messages[fixed.contact_id].job.next_run_at == ten
    assert "send_at" not in messages[fixed.contact_id].job.payload
    assert messages[windowed.contact_id].job.next_run_at == dt.datetime(2026, 12, 7, 14, 0, tzinfo=dhaka)
    assert messages[timed.contact_id].job.next_run_at == dt.datetime(2026, 12, 7, 17, 0, tzinfo=dhaka)
    assert messages[windowed.contact_id].status == messages[timed.contact_id].status == "queued"
    # at 17:00 the best-hour message goes; the 14:00 one finds the worker opted out in between
    with time_machine.travel(dt.datetime(2026, 12, 7, 17, 0, 5, tzinfo=dhaka), tick=False):
        assert run_job(messages[timed.contact_id].job) == "completed"
    consent_revoke(contact=windowed.contact, channel=messages[windowed.contact_id].channel)
    with time_machine.travel(dt.datetime(2026, 12, 7, 14, 0, 5, tzinfo=dhaka), tick=False):
        assert run_job(messages[windowed.contact_id].job) == "completed"
    sent, refused = Message.objects.get(pk=messages[timed.contact_id].pk), Message.objects.get(
        pk=messages[windowed.contact_id].pk
    )
    assert sent.status in ("sent", "queued", "delivered") and sent.provider_message_id
    assert (refused.status, refused.provider_message_id) == ("failed", "")
