"""CoachNova's API: staff and API keys read a worker's punctuality in their own company only; a worker logged in by
OTP reads their own; runs are queued by the internal token or an API key, with the one error shape."""

import datetime as dt
import re

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from coaching.models import CoachingRecipient, CoachingRun
from coaching.punctuality import local_today, punctuality_backfill
from coaching.tests.helpers import DHAKA, booking_of, worker_of
from crm.tests.factories import WorkerFactory
from engage.models import Job

pytestmark = pytest.mark.embedded  # a headline flow: also on SQLite without Redis (make test)



@pytest.fixture
def late_worker(company):
    worker = worker_of(company, phone="+8801911000901", email="rahim@example.test")
    today = local_today(company)
    for days_ago, late in ((1, 30), (2, 0), (3, 20)):
        day = today - dt.timedelta(days=days_ago)
        booking_of(worker, dt.datetime(day.year, day.month, day.day, 10, tzinfo=DHAKA), late_minutes=late)
    punctuality_backfill(company=company)
    return worker


@pytest.mark.django_db
def test_staff_and_api_keys_read_a_workers_punctuality(key_client, jwt_client, late_worker):
    for client in (key_client, jwt_client):
        response = client.get(f"/api/workers/{late_worker.pk}/punctuality")
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["last_14_days"]["bookings"] == 3 and body["last_14_days"]["late"] == 2
        assert body["last_14_days"]["on_time_rate"] == pytest.approx(33.3)
        assert len(body["trend"]) == 12 and len(body["recent_bookings"]) == 3


@pytest.mark.django_db
def test_another_companys_worker_is_not_found(key_client, other_company):
    stranger = WorkerFactory(company=other_company)
    response = key_client.get(f"/api/workers/{stranger.pk}/punctuality")
    assert response.status_code == 404 and "error" in response.json()
    assert APIClient().get(f"/api/workers/{stranger.pk}/punctuality").status_code == 401


@pytest.mark.django_db
def test_a_worker_logged_in_by_otp_reads_their_own(company, late_worker, mailoutbox, key_client):
    cache.clear()
    app = APIClient()
    app.post("/auth/request-otp", {"email": "rahim@example.test", "user_type": "worker"}, format="json")
    code = re.search(r"\b(\d{6})\b", mailoutbox[0].body).group(1)
    token = app.post("/auth/verify-otp", {"email": "rahim@example.test", "code": code, "user_type": "worker"},
                     format="json").json()["access_token"]
    app.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    run = CoachingRun.objects.create(company=company, as_of=local_today(company), status="completed")
    CoachingRecipient.objects.create(run=run, company=company, worker=late_worker, status="coached", text="ধন্যবাদ",
                                     reply_text="জ্যাম ছিল", reply_reason="traffic")
    CoachingRecipient.objects.create(run=CoachingRun.objects.create(company=company, as_of=run.as_of,
                                                                    status="completed"),
                                     company=company, worker=late_worker, status="holdout")

    mine = app.get("/me/punctuality")
    assert mine.status_code == 200 and mine.json()["worker_id"] == late_worker.pk
    coaching = app.get("/me/coaching").json()
    assert [(row["text"], row["reply_reason"]) for row in coaching] == [("ধন্যবাদ", "traffic")]  # not the holdout
    # staff-only reads stay closed to the worker, and an API key has no "me"
    assert app.get(f"/api/workers/{late_worker.pk}/punctuality").status_code == 403
    assert key_client.get("/me/punctuality").status_code in (401, 403)


@pytest.mark.django_db
def test_queue_a_run_by_api_key_and_a_second_is_409(key_client, company):
    first = key_client.post("/internal/ai/coachnova/run", {"dry_run": True}, format="json")
    assert first.status_code == 202 and first.json()["dry_run"] is True
    assert Job.objects.filter(task_name="coachnova_run").count() == 1
    second = key_client.post("/internal/ai/coachnova/run", {}, format="json")
    assert second.status_code == 409 and second.json()["error"]["code"] == "locked"
    bad = key_client.post("/internal/ai/coachnova/run", {"dry_run": "maybe"}, format="json")
    assert bad.status_code == 400
    run = key_client.get(f"/api/coaching/runs/{first.json()['run_id']}")
    assert run.status_code == 200 and run.json()["status"] == "queued"
    assert key_client.get("/api/coaching/impact").json()["estimate"] is None


@pytest.mark.django_db
def test_the_internal_token_names_the_company(company, settings):
    settings.INTERNAL_API_TOKEN = "internal-secret-token-123"
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer internal-secret-token-123")
    assert client.post("/internal/ai/coachnova/run", {}, format="json").status_code == 400
    assert client.post("/internal/ai/coachnova/run", {"company_id": company.pk}, format="json").status_code == 202
