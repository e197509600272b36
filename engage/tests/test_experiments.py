"""Experiments: setup rules, deterministic stored assignment, holdout, phases, outcomes, results, and the campaign
runner reading the assignment (holdout skips, the variant's template rendered, the message carrying its arm)."""

import datetime as dt
import subprocess
import sys
import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections
from django.utils import timezone

from crm.tests.factories import BookingFactory, CompanyFactory, CustomerFactory
from engage.campaigns.runner import campaign_run_execute
from engage.campaigns.runs import campaign_run_trigger
from engage.experiments.models import (
    Experiment,
    ExperimentAssignment,
    ExperimentPhase,
    ExperimentSettings,
    ExperimentVariant,
)
from engage.experiments.selectors import experiment_plan, experiment_results
from engage.experiments.services import (
    HOLDOUT,
    assignments_for,
    experiment_exposures,
    experiment_outcomes_refresh,
    experiment_start,
    experiment_stop,
    experiment_update,
    experiment_weights_change,
    unit_bucket,
)
from engage.models import Campaign, CampaignRecipient, Message
from engage.prompts.defaults import USER_TEMPLATE_NAME
from engage.prompts.models import PromptTemplate
from engage.prompts.services import template_version_approve, template_version_create, templates_seed_defaults
from engage.tests.campaign_helpers import AI_TEXT, customer_due
from engage.tests.test_campaigns import whole_day


@pytest.fixture
def campaign(company):
    templates_seed_defaults(company=company)
    whole_day(company)
    return Campaign.objects.create(company=company, name="Daily reminders", channel="console")


def wording_versions(company):
    """Today's approved reminder wording and a new one, both approved (the new is the latest)."""
    template = PromptTemplate.objects.get(company=company, agent_type="smartengage", name=USER_TEMPLATE_NAME, locale="bn")
    current = template.versions.filter(status="approved").order_by("-number").first()
    new = template_version_create(template=template, body=current.body + "\nনতুন লেখা: ছোট করে লিখুন।")
    template_version_approve(version=new)
    return current, new


def experiment_for(campaign, *, weights=(50, 50), versions=None, start=True, **fields):
    experiment = Experiment.objects.create(
        company=campaign.company, name=fields.pop("name", "New reminder wording"), campaign=campaign, **fields
    )
    current, new = versions or (None, None)
    control = ExperimentVariant.objects.create(
        experiment=experiment, name="A (current)", kind="control", weight=weights[0], template_version=current
    )
    variant = ExperimentVariant.objects.create(
        experiment=experiment, name="B (new wording)", kind="template_version" if new else "send_setting",
        weight=weights[1], template_version=new,
        settings={} if new else {"send_window_start_hour": 0, "send_window_end_hour": 24},
    )
    if start:
        experiment_start(experiment=experiment)
        experiment.refresh_from_db()
    return experiment, control, variant


def test_bucket_is_sha256_of_salt_experiment_unit_mod_10000():
    import hashlib

    expected = int.from_bytes(hashlib.sha256(b"s4lt:7:12345").digest()[:8], "big") % 10000
    assert unit_bucket(salt="s4lt", experiment_id=7, unit_id=12345) == expected
    # and spread evenly enough: 10,000 units fall ~half under 5,000
    below = sum(unit_bucket(salt="x", experiment_id=1, unit_id=unit) < 5000 for unit in range(10000))
    assert 4800 < below < 5200


@pytest.mark.embedded
@pytest.mark.django_db
def test_a_running_experiment_cannot_be_edited(campaign):
    # given a running experiment
    experiment, _control, variant = experiment_for(campaign)
    # when the setup is changed through the service, or the model's clean (the admin's form)
    with pytest.raises(ValidationError, match="running experiment cannot be edited"):
        experiment_update(experiment=experiment, name="Renamed")
    experiment.primary_metric = "reply_24h"
    with pytest.raises(ValidationError, match="cannot be edited"):
        experiment.full_clean()
    variant.settings = {"send_window_start_hour": 9, "send_window_end_hour": 12}
    with pytest.raises(ValidationError, match="cannot be edited"):
        variant.full_clean()
    # then nothing changed
    experiment.refresh_from_db()
    assert (experiment.name, experiment.primary_metric) == ("New reminder wording", "booking_7d")
    # a draft can be edited
    draft, _, _ = experiment_for(campaign, name="Draft one", start=False)
    assert experiment_update(experiment=draft, hypothesis="Shorter is better").hypothesis == "Shorter is better"


@pytest.mark.django_db
def test_setup_is_checked(campaign):
    other_campaign = Campaign.objects.create(company=CompanyFactory(), name="Theirs")
    experiment = Experiment(company=campaign.company, name="x", campaign=other_campaign, guardrails=["nope"])
    with pytest.raises(ValidationError) as error:
        experiment.full_clean()
    assert set(error.value.message_dict) == {"campaign", "guardrails"}
    lonely = Experiment.objects.create(company=campaign.company, name="One arm", campaign=campaign)
    ExperimentVariant.objects.create(experiment=lonely, name="A", kind="control")
    with pytest.raises(ValidationError, match="at least one variant"):
        experiment_start(experiment=lonely)
    assert lonely.phases.count() == 0 and Experiment.objects.get(pk=lonely.pk).status == "draft"


@pytest.mark.embedded
@pytest.mark.django_db
def test_assignment_is_stored_once_and_a_change_of_weights_starts_a_fresh_phase(campaign):
    experiment, control, variant = experiment_for(campaign)
    customers = [CustomerFactory(company=campaign.company) for _ in range(40)]
    ids = [customer.pk for customer in customers]
    # when assigned twice
    first = assignments_for(experiment=experiment, unit_ids=ids)
    again = assignments_for(experiment=experiment, unit_ids=ids)
    # then one stored row each, the same on both reads
    assert ExperimentAssignment.objects.filter(phase__experiment=experiment).count() == 40
    assert {u: a.variant_id for u, a in first.items()} == {u: a.variant_id for u, a in again.items()}
    assert {a.variant_id for a in first.values()} == {control.pk, variant.pk}
    # when the weights change while running
    phase = experiment_weights_change(experiment=experiment, weights={control.pk: 0, variant.pk: 100})
    # then phase 2, fresh assignments under the new weights; phase 1 kept as it was
    assert phase.number == 2 and ExperimentPhase.objects.get(experiment=experiment, number=1).ended_at is not None
    second = assignments_for(experiment=experiment, unit_ids=ids)
    assert {a.phase_id for a in second.values()} == {phase.pk}
    assert {a.variant_id for a in second.values()} == {variant.pk}
    assert ExperimentAssignment.objects.filter(phase__number=1, phase__experiment=experiment).count() == 40


@pytest.mark.embedded
@pytest.mark.django_db
def test_holdout_is_checked_first_and_the_same_for_every_experiment(campaign):
    settings = ExperimentSettings.objects.create(company=campaign.company, is_holdout_enabled=True, holdout_percent=10)
    experiment, _, _ = experiment_for(campaign)
    ids = [CustomerFactory(company=campaign.company).pk for _ in range(300)]
    answer = assignments_for(experiment=experiment, unit_ids=ids)
    held = {unit for unit, value in answer.items() if value == HOLDOUT}
    assert 10 <= len(held) <= 55  # ~30 of 300
    assert ExperimentAssignment.objects.filter(unit_id__in=held).count() == 0
    # off by default: no holdout
    settings.is_holdout_enabled = False
    settings.save()
    assert HOLDOUT not in assignments_for(experiment=experiment, unit_ids=ids).values()


@pytest.mark.django_db(transaction=True)
def test_assignment_is_stable_across_processes(campaign):
    # given units assigned in this process
    experiment, _, _ = experiment_for(campaign)
    ids = [CustomerFactory(company=campaign.company).pk for _ in range(20)]
    mine = {u: a.variant_id for u, a in assignments_for(experiment=experiment, unit_ids=ids).items()}
    phase = experiment.phases.get()
    ExperimentAssignment.objects.all().delete()  # forget them: the other process must find the same variants
    # when another Python process computes them from scratch
    code = (
        "import django, os, json; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'shokti.settings'); django.setup();"
        "from engage.experiments.models import Experiment;"
        "from engage.experiments.services import assignments_for;"
        f"e = Experiment.objects.get(pk={experiment.pk});"
        f"print(json.dumps({{u: a.variant_id for u, a in assignments_for(experiment=e, unit_ids={ids}).items()}}))"
    )
    env = {**__import__("os").environ, "DATABASE_URL": _database_url()}
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    theirs = {int(u): v for u, v in __import__("json").loads(output.stdout.strip().splitlines()[-1]).items()}
    # then
    assert theirs == mine
    assert ExperimentAssignment.objects.filter(phase=phase).count() == 20


def _database_url() -> str:
    settings = connection.settings_dict
    return f"postgres://{settings['USER']}@{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}/{settings['NAME']}"


@pytest.mark.django_db(transaction=True)
def test_same_unit_never_sees_two_variants_under_concurrent_batches(campaign):
    # given a running experiment and 200 customers, assigned by 4 threads at once in overlapping batches
    experiment, _, _ = experiment_for(campaign)
    ids = [CustomerFactory(company=campaign.company).pk for _ in range(200)]
    barrier = threading.Barrier(4)
    seen: list[dict[int, int]] = []
    errors = []

    def batch(offset: int) -> None:
        try:
            barrier.wait()
            exposures = experiment_exposures(campaign_id=campaign.pk, unit_ids=ids[offset:] + ids[:offset])
            seen.append({unit: exposure.variant_id for unit, exposure in exposures.items()})
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=batch, args=(offset,)) for offset in (0, 50, 100, 150)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then one stored row per unit and every thread read the same variant for it
    assert not errors
    assert ExperimentAssignment.objects.filter(phase__experiment=experiment).count() == 200
    stored = dict(ExperimentAssignment.objects.values_list("unit_id", "variant_id"))
    assert all(answer == stored for answer in seen) and len(seen) == 4


@pytest.mark.embedded
@pytest.mark.django_db
def test_campaign_run_renders_each_arms_template_records_the_arm_on_the_message_and_skips_the_holdout(
    campaign, fake_openai
):
    # given "new reminder wording vs current, 10% holdout" on the daily campaign
    fake_openai.reply(AI_TEXT)
    ExperimentSettings.objects.create(company=campaign.company, is_holdout_enabled=True, holdout_percent=10)
    current, new = wording_versions(campaign.company)
    _experiment, control, variant = experiment_for(campaign, versions=(current, new))
    due = [customer_due(campaign.company) for _ in range(30)]
    # when the daily run goes
    run = campaign_run_trigger(campaign=campaign)
    campaign_run_execute(run_id=run.pk)
    # then the holdout is skipped with reason holdout and no message
    held = CampaignRecipient.objects.filter(run=run, reason="holdout")
    assert held.filter(status="skipped").count() == held.count()
    held_ids = set(held.values_list("customer_id", flat=True))
    assert not Message.objects.filter(contact__customer__in=held_ids, direction="outbound").exists()
    # each other customer's message carries the assignment and its arm's template version
    messages = Message.objects.filter(direction="outbound", agent_type="smartengage").select_related(
        "experiment_assignment"
    )
    assert messages.count() == len(due) - len(held_ids) > 0
    for message in messages:
        assignment = message.experiment_assignment
        assert assignment is not None
        expected = current if assignment.variant_id == control.pk else new
        assert message.template_version_id == expected.pk
    assert {m.experiment_assignment.variant_id for m in messages} == {control.pk, variant.pk}
    # a dry run of new customers previews their arms' templates and stores no assignment
    before = ExperimentAssignment.objects.count()
    newcomers = [customer_due(campaign.company) for _ in range(10)]
    dry = campaign_run_trigger(campaign=campaign, is_dry_run=True)
    campaign_run_execute(run_id=dry.pk)
    assert ExperimentAssignment.objects.count() == before
    previews = CampaignRecipient.objects.filter(run=dry, status="dry_run")
    assert set(previews.values_list("customer_id", flat=True)) <= {c.pk for c in newcomers}
    assert set(previews.values_list("template_version_id", flat=True)) <= {current.pk, new.pk}


@pytest.mark.embedded
@pytest.mark.django_db
def test_outcomes_and_results_with_verdict_and_srm(campaign):
    # given 400 exposed customers, variant B's book more often within 7 days
    experiment, control, variant = experiment_for(campaign, guardrails=["opt_out"])
    customers = [CustomerFactory(company=campaign.company) for _ in range(400)]
    assigned = assignments_for(experiment=experiment, unit_ids=[c.pk for c in customers])
    exposed = timezone.now() - dt.timedelta(days=8)
    ExperimentAssignment.objects.update(exposed_at=exposed)
    for index, customer in enumerate(customers):
        rate_mod = 2 if assigned[customer.pk].variant_id == variant.pk else 10
        if index % rate_mod == 0:
            BookingFactory(company=campaign.company, customer=customer, created_at=exposed + dt.timedelta(days=2))
    # when
    assert experiment_outcomes_refresh(experiment=experiment) == 400
    results = experiment_results(experiment=experiment)
    # then
    rates = {row["id"]: row["rate"] for row in results["variants"]}
    assert 0.05 < rates[control.pk] < 0.16 and 0.4 < rates[variant.pk] < 0.6
    assert not results["is_hidden"] and results["srm"]["p_value"] > 0.001
    comparison = results["comparisons"][0]
    assert comparison["is_significant"] and comparison["uplift_low"] > 0
    assert results["verdict"].startswith("B (new wording): +") and "per 100 reminders (95% CI +" in results["verdict"]
    assert results["timeline"] and str(variant.pk) in results["timeline"][-1]
    assert results["guardrail_breaches"] == []
    # when one arm's exposures go missing (a skewed split)
    ExperimentAssignment.objects.filter(variant=variant, unit_id__in=[c.pk for c in customers[:300]]).delete()
    experiment_outcomes_refresh(experiment=experiment)
    results = experiment_results(experiment=experiment)
    # then the results are hidden with a warning
    assert results["is_hidden"] and results["comparisons"] == [] and "sample-ratio mismatch" in results["verdict"]


@pytest.mark.django_db
def test_plan_before_launch_gives_mde_and_days(campaign):
    experiment, _, _ = experiment_for(campaign, start=False)
    plan = experiment_plan(experiment=experiment)
    assert plan["daily_units"] == 0 and plan["days_to_target"] is None
    assert plan["minimum_detectable_effect"][7] is None


@pytest.mark.django_db
def test_stop(campaign):
    experiment, _, _ = experiment_for(campaign)
    experiment_stop(experiment=experiment)
    experiment.refresh_from_db()
    assert experiment.status == "stopped"
    assert assignments_for(experiment=experiment, unit_ids=[1, 2]) == {}
    with pytest.raises(ValidationError):
        experiment_stop(experiment=experiment)


@pytest.mark.django_db
def test_other_apps_read_a_coaching_experiment_through_engage_api(company):
    from crm.tests.factories import WorkerFactory
    from engage.api import experiment_exposures_for

    ExperimentSettings.objects.create(company=company, is_holdout_enabled=True, holdout_percent=20)
    experiment = Experiment.objects.create(
        company=company, name="Coaching tone", applies_to="coaching", unit="worker", primary_metric="on_time_28d"
    )
    control = ExperimentVariant.objects.create(experiment=experiment, name="Current", kind="control")
    ExperimentVariant.objects.create(
        experiment=experiment, name="Later", kind="send_setting", settings={"send_window_start_hour": 17}
    )
    assert experiment_exposures_for(company=company, applies_to="coaching", unit_ids=[1]) == {}  # a draft
    experiment_start(experiment=experiment)
    workers = [WorkerFactory(company=company).pk for _ in range(60)]
    exposures = experiment_exposures_for(company=company, applies_to="coaching", unit_ids=workers)
    held = [unit for unit, exposure in exposures.items() if exposure.is_holdout]
    assert 3 <= len(held) <= 25
    assigned = [exposure for exposure in exposures.values() if not exposure.is_holdout]
    assert all(exposure.assignment_id for exposure in assigned)
    assert {exposure.variant_kind for exposure in assigned} == {"control", "send_setting"}
    assert ExperimentAssignment.objects.filter(phase__experiment=experiment).count() == len(assigned)
    assert experiment_exposures_for(company=company, applies_to="ai_replies", unit_ids=workers) == {}
    assert control.pk in {exposure.variant_id for exposure in assigned}
