"""GET /queue/stats, POST /admin/dlq/replay, and the job/message admin: scoped to the caller's companies."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from crm.tests.factories import ContactFactory
from engage.models import Job, Message

STATS = "/queue/stats"
REPLAY = "/admin/dlq/replay"


def make_job(company, key, status="queued", **fields):
    return Job.objects.create(company=company, task_name="webhook_reminder", idempotency_key=key, status=status, **fields)


@pytest.fixture
def ledger(company, other_company):
    now = timezone.now()
    jobs = {
        "q1": make_job(company, "q1", created_at=now - timedelta(seconds=90), next_run_at=now - timedelta(seconds=90)),
        "q2": make_job(company, "q2", created_at=now - timedelta(seconds=10), next_run_at=now - timedelta(seconds=10)),
        "later": make_job(company, "later", created_at=now - timedelta(hours=5), next_run_at=now + timedelta(hours=19)),
        "p": make_job(company, "p", status="processing"),
        "c": make_job(company, "c", status="completed"),
        "f": make_job(company, "f", status="failed"),
        "d1": make_job(company, "d1", status="dead", last_error="boom"),
        "d2": make_job(company, "d2", status="dead", last_error="boom"),
        "x": make_job(company, "x", status="cancelled", last_error="Cancelled by ops"),
        "other_dead": make_job(other_company, "od", status="dead"),
        "other_queued": make_job(other_company, "oq"),
        "system": make_job(None, "sys", status="dead"),
    }
    return jobs


def jwt_for(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("caller", ["key_client", "jwt_client"])
def test_queue_stats_counts_the_callers_company_only(request, ledger, company, caller):
    client = request.getfixturevalue(caller)

    response = client.get(STATS)

    assert response.status_code == 200
    body = response.json()
    age = body.pop("oldest_queued_age_seconds")
    assert body == {"company_id": company.pk, "queued": 3, "scheduled": 1, "processing": 1, "completed": 1,
                    "failed": 1, "dlq": 2, "cancelled": 1}
    assert 90 <= age < 120


@pytest.mark.django_db
def test_queue_stats_for_other_company_staff_and_anonymous(api_client, ledger, company, other_company,
                                                           other_staff_user):
    bob = jwt_for(other_staff_user)
    assert bob.get(STATS).json()["queued"] == 1  # Bob sees Beta's numbers
    assert bob.get(STATS, {"company_id": company.pk}).status_code == 403  # not Alpha's
    anonymous = api_client.get(STATS)
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "not_authenticated"


@pytest.mark.django_db
def test_queue_stats_of_an_empty_ledger(key_client, company):
    body = key_client.get(STATS).json()
    assert body["queued"] == 0 and body["oldest_queued_age_seconds"] is None


@pytest.mark.django_db
def test_dlq_replay_by_staff_replays_their_companys_dead_jobs(jwt_client, ledger, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = jwt_client.post(REPLAY, {"max_jobs": 1}, format="json")

    assert response.status_code == 200
    assert response.json()["replayed"] == 1 and response.json()["job_ids"] == [ledger["d1"].pk]
    assert len(callbacks) == 1
    statuses = dict(Job.objects.values_list("idempotency_key", "status"))
    assert (statuses["d1"], statuses["d2"], statuses["od"], statuses["sys"]) == ("queued", "dead", "dead", "dead")

    again = jwt_client.post(REPLAY, {}, format="json")  # default max_jobs=10
    assert again.json()["job_ids"] == [ledger["d2"].pk]


@pytest.mark.django_db
def test_dlq_replay_refuses_api_keys_other_companies_and_anonymous(key_client, api_client, ledger, company,
                                                                    other_staff_user):
    before = sorted(Job.objects.values_list("id", "status"))

    # an API key is not a staff login: not accepted here at all (401, as the schema says)
    assert key_client.post(REPLAY, {"max_jobs": 10}, format="json").status_code == 401
    assert jwt_for(other_staff_user).post(REPLAY, {"company_id": company.pk}, format="json").status_code == 403
    assert api_client.post(REPLAY, {"max_jobs": 10}, format="json").status_code == 401

    assert sorted(Job.objects.values_list("id", "status")) == before


@pytest.mark.django_db
@pytest.mark.parametrize("payload", [{"max_jobs": 0}, {"max_jobs": 5000}, {"max_jobs": "many"}])
def test_dlq_replay_bad_input_is_400_and_changes_nothing(jwt_client, ledger, payload):
    response = jwt_client.post(REPLAY, payload, format="json")

    assert response.status_code == 400 and "max_jobs" in response.json()["error"]["fields"]
    assert Job.objects.filter(status="dead").count() == 4


# --- admin ---------------------------------------------------------------------------------


@pytest.fixture
def alice_admin(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.mark.django_db
def test_job_changelist_shows_only_the_staff_users_companies(alice_admin, ledger):
    response = alice_admin.get("/admin/engage/job/")

    assert response.status_code == 200
    shown = {job.pk for job in response.context["cl"].result_list}
    assert shown == {ledger[key].pk for key in ("q1", "q2", "later", "p", "c", "f", "d1", "d2", "x")}
    foreign = alice_admin.get(f"/admin/engage/job/{ledger['other_dead'].pk}/change/")
    assert foreign.status_code == 404, foreign.get("Location")
    filtered = alice_admin.get("/admin/engage/job/", {"status__exact": "dead", "task_name": "webhook_reminder"})
    assert {job.pk for job in filtered.context["cl"].result_list} == {ledger["d1"].pk, ledger["d2"].pk}


@pytest.mark.django_db
def test_job_admin_replay_and_cancel_actions_call_the_services(alice_admin, ledger):
    replay = alice_admin.post("/admin/engage/job/", {
        "action": "replay_selected", "_selected_action": [ledger["d1"].pk, ledger["c"].pk],
    }, follow=True)
    cancel = alice_admin.post("/admin/engage/job/", {
        "action": "cancel_selected", "_selected_action": [ledger["q1"].pk],
    }, follow=True)

    statuses = dict(Job.objects.values_list("idempotency_key", "status"))
    assert (statuses["d1"], statuses["c"], statuses["q1"]) == ("queued", "completed", "cancelled")
    replay_messages = [str(m) for m in replay.context["messages"]]
    assert "Replayed 1 job(s)." in replay_messages
    assert any(m.startswith("Not replayed: #") for m in replay_messages)
    assert "Cancelled 1 job(s)." in [str(m) for m in cancel.context["messages"]]
    assert Job.objects.get(pk=ledger["q1"].pk).last_error == "Cancelled by alice@alpha.test in the admin."


@pytest.mark.django_db
def test_job_admin_action_on_another_companys_job_does_nothing(alice_admin, ledger):
    alice_admin.post("/admin/engage/job/", {"action": "replay_selected", "_selected_action": [ledger["other_dead"].pk]})

    assert Job.objects.get(pk=ledger["other_dead"].pk).status == "dead"


@pytest.mark.django_db
def test_message_changelist_filters_and_scoping(alice_admin, company, other_company):
    mine = ContactFactory(company=company)
    theirs = ContactFactory(company=other_company)
    inbound = Message.objects.create(company=company, contact=mine, direction="inbound", channel="sms", body="hi",
                                     status="received")
    outbound = Message.objects.create(company=company, contact=mine, direction="outbound", channel="sms",
                                      body="hello", status="delivered", delivered_at=timezone.now())
    Message.objects.create(company=other_company, contact=theirs, direction="outbound", channel="sms", body="x")

    everything = alice_admin.get("/admin/engage/message/")
    outbound_only = alice_admin.get("/admin/engage/message/", {"direction__exact": "outbound"})
    detail = alice_admin.get(f"/admin/engage/message/{outbound.pk}/change/")

    assert {m.pk for m in everything.context["cl"].result_list} == {inbound.pk, outbound.pk}
    assert [m.pk for m in outbound_only.context["cl"].result_list] == [outbound.pk]
    assert detail.status_code == 200 and b"delivered" in detail.content


@pytest.mark.django_db
def test_admin_pages_are_closed_to_anonymous(client, ledger):
    assert client.get("/admin/engage/job/").status_code == 302
    assert client.get("/admin/engage/message/").status_code == 302


@pytest.mark.django_db
def test_queue_stats_reads_for_a_logged_in_console_session(client, ledger, company, staff_user, other_staff_user):
    client.force_login(staff_user)
    response = client.get("/queue/stats")
    assert response.status_code == 200
    assert response.json()["company_id"] == company.pk

    client.force_login(other_staff_user)
    assert client.get(f"/queue/stats?company_id={company.pk}").status_code == 403
    client.logout()
    assert client.get("/queue/stats").status_code == 401


@pytest.mark.django_db
def test_a_dead_job_is_replayed_from_its_page_by_a_button(alice_admin, ledger, other_staff_user):
    page = alice_admin.get(f"/admin/engage/job/{ledger['d1'].pk}/change/").content.decode()
    assert 'id="job-replay"' in page

    response = alice_admin.post(f"/admin/engage/job/{ledger['d1'].pk}/do/replay/", follow=True)

    assert Job.objects.get(pk=ledger["d1"].pk).status == "queued"
    assert "Replayed 1 job(s)." in [str(m) for m in response.context["messages"]]
    assert alice_admin.get(f"/admin/engage/job/{ledger['d1'].pk}/do/replay/").status_code == 403
