"""The SmartEngage endpoints: send-single, send-bulk (staff JWT), run-segment (internal token or API key)."""


import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from crm.tests.factories import ServiceFactory
from engage.models import Campaign, CampaignRun, Job, Message
from engage.policy.services import policy_get_or_create
from engage.prompts.services import templates_seed_defaults
from engage.tests.campaign_helpers import AI_TEXT, customer_due

SINGLE = "/admin/smartengage/send-single"
BULK = "/admin/smartengage/send-bulk"
SEGMENT = "/internal/ai/smartengage/run-segment"


@pytest.fixture(autouse=True)
def _setup(company, fake_openai):
    cache.clear()
    templates_seed_defaults(company=company)
    fake_openai.reply(AI_TEXT)
    yield
    cache.clear()


def jwt_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


def assert_error(response, status, code=None):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) >= {"code", "message", "fields"}
    if code:
        assert body["error"]["code"] == code
    return body["error"]


# --- send-single ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_send_single_sends_one_reminder(jwt_client, company):
    customer = customer_due(company)
    service = ServiceFactory(company=company)
    response = jwt_client.post(
        SINGLE,
        {"customer_id": customer.pk, "message_type": "reminder", "service_id": service.pk, "promo_code": "SAVE20",
         "ttl_hours": 48},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["success"] is True and body["status"] == "sent"
    message = Message.objects.get(pk=body["message_id"])
    assert str(message.correlation_id) == body["correlation_id"] and message.status == "sent"


@pytest.mark.django_db
def test_send_single_three_people(jwt_client, company, other_staff_user, api_client):
    customer = customer_due(company)
    # bob, staff of another company: the customer does not exist for him
    assert_error(jwt_for(other_staff_user).post(SINGLE, {"customer_id": customer.pk}, format="json"), 404, "not_found")
    # anonymous
    assert_error(api_client.post(SINGLE, {"customer_id": customer.pk}, format="json"), 401)
    assert not Message.objects.exists()
    # alice
    assert jwt_client.post(SINGLE, {"customer_id": customer.pk}, format="json").json()["status"] == "sent"


@pytest.mark.django_db
def test_an_api_key_is_not_staff(key_client, company):
    # staff endpoints authenticate people only: a key is not even read (401, as the schema says)
    assert_error(key_client.post(SINGLE, {"customer_id": customer_due(company).pk}, format="json"), 401)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "customer_id"),
        ({"customer_id": "abc"}, "customer_id"),
        ({"customer_id": 1, "message_type": "spam"}, "message_type"),
        ({"customer_id": 1, "ttl_hours": 0}, "ttl_hours"),
        ({"customer_id": 1, "promo_code": "X" * 41}, "promo_code"),
        ({"customer_id": 1, "channel": "pigeon"}, "channel"),
    ],
)
def test_send_single_bad_input_is_400_and_writes_nothing(jwt_client, body, field):
    error = assert_error(jwt_client.post(SINGLE, body, format="json"), 400, "invalid")
    assert field in error["fields"]
    assert not Message.objects.exists() and not Job.objects.exists()


@pytest.mark.django_db
def test_another_companys_service_is_400(jwt_client, company, other_company):
    customer = customer_due(company)
    foreign = ServiceFactory(company=other_company)
    error = assert_error(
        jwt_client.post(SINGLE, {"customer_id": customer.pk, "service_id": foreign.pk}, format="json"), 400
    )
    assert "service_id" in error["fields"]
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_bypassing_caps_needs_the_dedicated_permission(jwt_client, staff_user, company):
    customer = customer_due(company)
    assert jwt_client.post(SINGLE, {"customer_id": customer.pk}, format="json").json()["status"] == "sent"
    capped = jwt_client.post(SINGLE, {"customer_id": customer.pk}, format="json").json()
    assert (capped["status"], capped["reason"]) == ("skipped", "daily_cap")
    # without the permission: 403 and nothing sent
    denied = jwt_client.post(SINGLE, {"customer_id": customer.pk, "bypass_frequency_caps": True}, format="json")
    assert_error(denied, 403, "permission_denied")
    assert Message.objects.count() == 1
    # with it
    staff_user.user_permissions.add(Permission.objects.get(codename="bypass_frequency_caps"))
    allowed = jwt_for(staff_user).post(
        SINGLE, {"customer_id": customer.pk, "bypass_frequency_caps": True}, format="json"
    )
    assert allowed.json()["status"] == "sent" and Message.objects.count() == 2


# --- send-bulk -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_send_bulk_by_ids(jwt_client, company):
    customers = [customer_due(company) for _ in range(2)] + [customer_due(company, is_email_consented=False)]
    response = jwt_client.post(
        BULK, {"customer_ids": [customer.pk for customer in customers], "promo_code": "WEEKEND50"}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert {key: body[key] for key in ("total_eligible", "sent", "failed", "skipped")} == {
        "total_eligible": 3, "sent": 2, "failed": 0, "skipped": 1
    }
    assert isinstance(body["duration_seconds"], float)


@pytest.mark.django_db
def test_send_bulk_by_cadence_reminds_the_due_segment(jwt_client, company):
    due = customer_due(company, days=22)
    not_due = customer_due(company, days=3)
    body = jwt_client.post(BULK, {"booking_cadence_days": 21}, format="json").json()
    assert (body["total_eligible"], body["sent"]) == (1, 1)
    assert Message.objects.filter(contact=due.contact).count() == 1
    assert not Message.objects.filter(contact=not_due.contact).exists()


@pytest.mark.django_db
def test_send_bulk_with_a_foreign_customer_is_400_and_sends_nobody(jwt_client, company, other_company):
    mine = customer_due(company)
    foreign = customer_due(other_company)
    error = assert_error(jwt_client.post(BULK, {"customer_ids": [mine.pk, foreign.pk]}, format="json"), 400)
    assert error["fields"]["customer_ids"] == [f"Unknown customer id(s): {foreign.pk}."]
    assert not Message.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [{}, {"customer_ids": []}, {"customer_ids": ["x"]}, {"booking_cadence_days": 0}, {"customer_ids": [1], "batch_size": 501}],
)
def test_send_bulk_bad_input(jwt_client, body):
    assert_error(jwt_client.post(BULK, body, format="json"), 400, "invalid")
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_send_bulk_three_people(company, other_staff_user, api_client):
    customer = customer_due(company)
    assert_error(api_client.post(BULK, {"customer_ids": [customer.pk]}, format="json"), 401)
    assert_error(jwt_for(other_staff_user).post(BULK, {"customer_ids": [customer.pk]}, format="json"), 400)
    assert not Message.objects.exists()


# --- run-segment ---------------------------------------------------------------------------------


@pytest.fixture
def internal_client(settings):
    settings.INTERNAL_API_TOKEN = "internal-secret-token"
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer internal-secret-token")
    return client


@pytest.mark.django_db
def test_run_segment_with_an_api_key_queues_a_run_then_reports_locked(key_client, company):
    response = key_client.post(SEGMENT, {"preset": "aggressive", "promo_code": "DAILY15", "send_window": "9-18"}, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "started"
    run = CampaignRun.objects.get(correlation_id=body["correlation_id"])
    assert (run.company, run.status, run.trigger, run.promo_code) == (company, "queued", "api", "DAILY15")
    assert (run.preset["name"], run.preset["cadence_days"], run.preset["send_window_start_hour"]) == ("aggressive", 14, 9)
    assert run.job.task_name == "smartengage_campaign_run"
    # a second call while the first is queued
    error = assert_error(key_client.post(SEGMENT, {}, format="json"), 409, "locked")
    assert "already queued or running" in error["message"]
    assert CampaignRun.objects.filter(status="locked").count() == 1


@pytest.mark.django_db
def test_run_segment_for_a_company_that_switched_smartengage_off_is_409_and_queues_nothing(key_client, company):
    policy = policy_get_or_create(company=company)
    policy.is_smartengage_enabled = False
    policy.save()
    cache.clear()
    error = assert_error(key_client.post(SEGMENT, {"dry_run": True}, format="json"), 409, "smartengage_disabled")
    assert error["message"] == "SmartEngage is switched off in this company's engagement policy."
    assert not CampaignRun.objects.exists() and not Campaign.objects.exists() and not Job.objects.exists()


@pytest.mark.django_db
def test_run_segment_with_the_internal_token_needs_a_company(internal_client, company):
    assert "company_id" in assert_error(internal_client.post(SEGMENT, {}, format="json"), 400)["fields"]
    response = internal_client.post(SEGMENT, {"company_id": company.pk, "dry_run": True}, format="json")
    assert response.status_code == 202 and response.json()["dry_run"] is True


@pytest.mark.django_db
def test_run_segment_refuses_wrong_credentials(api_client, company, settings, jwt_client, other_company):
    settings.INTERNAL_API_TOKEN = "internal-secret-token"
    assert_error(api_client.post(SEGMENT, {"company_id": company.pk}, format="json"), 401)
    api_client.credentials(HTTP_AUTHORIZATION="Bearer wrong-token")
    assert_error(api_client.post(SEGMENT, {"company_id": company.pk}, format="json"), 401)
    # a staff JWT is not the internal token
    assert_error(jwt_client.post(SEGMENT, {"company_id": company.pk}, format="json"), 401)
    settings.INTERNAL_API_TOKEN = ""
    api_client.credentials(HTTP_AUTHORIZATION="Bearer ")
    assert_error(api_client.post(SEGMENT, {"company_id": company.pk}, format="json"), 401)
    assert not CampaignRun.objects.exists() and not Campaign.objects.exists()


@pytest.mark.django_db
def test_run_segment_with_a_key_cannot_act_for_another_company(key_client, other_company):
    assert_error(key_client.post(SEGMENT, {"company_id": other_company.pk}, format="json"), 403)
    assert not CampaignRun.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"preset": "nope"}, "preset"),
        ({"send_window": "18-9"}, "send_window"),
        ({"send_window": "morning"}, "send_window"),
        ({"cadence_days": 0}, "cadence_days"),
        ({"batch_size": "many"}, "batch_size"),
        ({"campaign_id": 999999}, "campaign_id"),
    ],
)
def test_run_segment_bad_input_is_400_and_writes_nothing(key_client, company, body, field):
    policy_get_or_create(company=company)
    error = assert_error(key_client.post(SEGMENT, body, format="json"), 400, "invalid")
    assert field in error["fields"]
    assert not CampaignRun.objects.exists() and not Campaign.objects.exists() and not Job.objects.exists()
