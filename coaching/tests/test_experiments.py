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
