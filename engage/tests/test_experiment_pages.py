"""The experiments' API (staff JWT or API key, tenant scoped, in the schema) and console page (setup, results
with the verdict and the uplift chart, the sample-ratio warning, read-only while running)."""

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from crm.tests.factories import BookingFactory, CustomerFactory
from engage.experiments.models import Experiment, ExperimentAssignment
from engage.experiments.services import assignments_for, experiment_outcomes_refresh
from engage.models import Campaign, Job
from engage.prompts.services import templates_seed_defaults
from engage.tests.test_experiments import experiment_for

pytestmark = pytest.mark.embedded  # a headline flow: also on SQLite without Redis (make test)


@pytest.fixture
def running(company):
    """A running experiment with 200 exposed customers 8 days ago: all of B's book within 7 days, 1 in 10 of A's."""
    templates_seed_defaults(company=company)
    campaign = Campaign.objects.create(company=company, name="Daily reminders", channel="console")
    experiment, control, variant = experiment_for(campaign, guardrails=["opt_out"])
    pool = [CustomerFactory(company=company) for _ in range(300)]
    assigned = assignments_for(experiment=experiment, unit_ids=[c.pk for c in pool])
    # 100 of each variant: a random draw of 200 can split unevenly enough to be a sample-ratio mismatch (the
    # results are then hidden, as they should be), which is not what these tests read. The rest are unassigned.
    taken = {control.pk: 0, variant.pk: 0}
    customers = []
    for customer in pool:
        variant_id = assigned[customer.pk].variant_id
        if taken[variant_id] < 100:
            taken[variant_id] += 1
            customers.append(customer)
    assert taken == {control.pk: 100, variant.pk: 100}
    ExperimentAssignment.objects.exclude(unit_id__in=[c.pk for c in customers]).delete()
    exposed = timezone.now() - dt.timedelta(days=8)
    ExperimentAssignment.objects.update(exposed_at=exposed)
    for index, customer in enumerate(customers):
        if index % (1 if assigned[customer.pk].variant_id == variant.pk else 10) == 0:
            BookingFactory(company=company, customer=customer, created_at=exposed + dt.timedelta(days=1))
    experiment_outcomes_refresh(experiment=experiment)
    experiment.refresh_from_db()
    return experiment, control, variant


@pytest.mark.django_db
def test_staff_and_api_keys_list_experiments_and_read_results(running, key_client, jwt_client):
    experiment, _control, variant = running
    for client in (key_client, jwt_client):
        listing = client.get("/api/experiments/")
        assert listing.status_code == 200, listing.content
        assert [row["id"] for row in listing.json()] == [experiment.pk]
        assert {v["kind"] for v in listing.json()[0]["variants"]} == {"control", "send_setting"}
        results = client.get(f"/api/experiments/{experiment.pk}/results")
        assert results.status_code == 200, results.content
        body = results.json()
        assert body["is_hidden"] is False and body["srm"]["is_mismatch"] is False
        assert body["comparisons"][0]["variant_id"] == variant.pk and body["comparisons"][0]["uplift_low"] > 0
        assert "per 100 reminders (95% CI" in body["verdict"]
        assert body["timeline"][-1][str(variant.pk)]["low"] > 0


@pytest.mark.django_db
def test_another_company_and_anonymous_callers_see_nothing(running, other_company, other_staff_user):
    from rest_framework_simplejwt.tokens import RefreshToken

    experiment, _, _ = running
    bob = APIClient()
    bob.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(other_staff_user).access_token}")
    assert bob.get("/api/experiments/").json() == []
    response = bob.get(f"/api/experiments/{experiment.pk}/results")
    assert response.status_code == 404 and "error" in response.json()
    assert APIClient().get("/api/experiments/").status_code == 401
    assert APIClient().get(f"/api/experiments/{experiment.pk}/results").status_code == 401


@pytest.mark.django_db
def test_bad_phase_is_a_400(running, key_client):
    experiment, _, _ = running
    response = key_client.get(f"/api/experiments/{experiment.pk}/results?phase=x")
    assert response.status_code == 400 and "phase" in str(response.json())


@pytest.mark.django_db
def test_the_schema_documents_both_endpoints(jwt_client):
    schema = APIClient().get("/api/schema/?format=json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/experiments/" in paths and "/api/experiments/{id}/results" in paths


@pytest.mark.django_db
def test_console_page_shows_verdict_chart_and_is_read_only_while_running(running, client, staff_user):
    experiment, _, _ = running
    staff_user.is_superuser = True
    staff_user.save()
    client.force_login(staff_user)
    page = client.get(f"/admin/engage/experiment/{experiment.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "B (new wording): +" in html and "per 100 reminders (95% CI +" in html
    assert '<svg class="experiment-uplift"' in html and "<polygon" in html
    assert 'name="name"' not in html  # read-only while running
    # a change posted anyway changes nothing
    client.post(f"/admin/engage/experiment/{experiment.pk}/change/", {"name": "Renamed", "_save": "Save"})
    assert Experiment.objects.get(pk=experiment.pk).name == "New reminder wording"
    # the sidebar lists it under Campaigns
    changelist = client.get("/admin/engage/experiment/")
    assert changelist.status_code == 200 and "New reminder wording" in changelist.content.decode()


@pytest.mark.django_db
def test_console_page_hides_results_on_a_sample_ratio_mismatch(running, client, staff_user):
    experiment, _control, variant = running
    ids = list(ExperimentAssignment.objects.filter(variant=variant).values_list("id", flat=True)[:80])
    ExperimentAssignment.objects.filter(id__in=ids).delete()
    experiment_outcomes_refresh(experiment=experiment)
    staff_user.is_superuser = True
    staff_user.save()
    client.force_login(staff_user)
    html = client.get(f"/admin/engage/experiment/{experiment.pk}/change/").content.decode()
    assert "experiment-srm-warning" in html and "sample-ratio mismatch" in html
    assert "per 100 reminders (95% CI" not in html


@pytest.mark.django_db
def test_refresh_action_queues_a_ledger_job(running, client, staff_user):
    experiment, _, _ = running
    staff_user.is_superuser = True
    staff_user.save()
    client.force_login(staff_user)
    client.post("/admin/engage/experiment/", {"action": "refresh_outcomes", "_selected_action": [experiment.pk]})
    job = Job.objects.get(task_name="experiment_outcomes_refresh")
    assert job.payload == {"experiment_id": experiment.pk}


@pytest.mark.django_db
def test_new_weights_from_the_console_start_a_new_phase(running, client, staff_user, other_staff_user):
    experiment, control, variant = running
    url = f"/admin/engage/experiment/{experiment.pk}/weights/"
    # another company's staff cannot reach it
    other_staff_user.is_superuser = False
    client.force_login(other_staff_user)
    assert client.get(url).status_code in (302, 403, 404)
    staff_user.is_superuser = True
    staff_user.save()
    client.force_login(staff_user)
    assert "Change the weights" in client.get(f"/admin/engage/experiment/{experiment.pk}/change/").content.decode()
    # bad input: 400, nothing changed
    response = client.post(url, {f"weight-{control.pk}": "x", f"weight-{variant.pk}": "50"})
    assert response.status_code == 400 and experiment.phases.count() == 1
    # when
    response = client.post(url, {f"weight-{control.pk}": "20", f"weight-{variant.pk}": "80"})
    # then
    assert response.status_code == 302
    phase = experiment.phases.order_by("-number").first()
    assert phase.number == 2 and phase.weights == {str(control.pk): 20, str(variant.pk): 80}


def test_a_marketer_sets_up_experiments_with_the_groups_own_permissions(running, client, company):
    # The Marketing and Operations groups as the migrations leave them (no grant in the test).
    from django.urls import reverse

    from crm.models import Membership
    from crm.tests.factories import StaffUserFactory

    marketer = StaffUserFactory(email="tanvir@alpha.test", groups=["Marketing"])
    Membership.objects.create(user=marketer, company=company, role=Membership.Role.MARKETING)
    operator = StaffUserFactory(email="rahima@alpha.test", groups=["Operations"])
    Membership.objects.create(user=operator, company=company, role=Membership.Role.OPERATIONS)

    client.force_login(marketer)
    assert client.get(reverse("admin:engage_experiment_changelist")).status_code == 200
    assert client.get(reverse("admin:engage_experiment_add")).status_code == 200
    assert client.get(reverse("admin:engage_experiment_change", args=[running[0].pk])).status_code == 200
    assert client.get(reverse("admin:engage_experimentsettings_changelist")).status_code == 200

    client.force_login(operator)
    assert client.get(reverse("admin:engage_experiment_changelist")).status_code == 200
    assert client.get(reverse("admin:engage_experiment_add")).status_code == 403


@pytest.mark.django_db
def test_the_verdict_stays_english_for_the_api_and_speaks_the_staffs_language_in_the_console(running, key_client):
    from django.utils import translation

    from engage.experiments.selectors import experiment_results

    experiment, _control, _variant = running
    body = key_client.get(f"/api/experiments/{experiment.pk}/results", HTTP_ACCEPT_LANGUAGE="bn").json()
    assert "per 100 reminders (95% CI" in body["verdict"] and body["verdict"].endswith("better than control.")

    with translation.override("bn"):
        bengali = experiment_results(experiment=experiment)["verdict"]
    assert "প্রতি ১০০ রিমাইন্ডারে (৯৫% CI" in bengali and bengali.endswith("কন্ট্রোলের চেয়ে ভালো।")
    assert "better" not in bengali and "reminders" not in bengali
