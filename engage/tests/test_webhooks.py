"""Outbound webhooks: recorded events reach a company's webhook URL as `webhook_reminder` ledger jobs.

The hot path (one SQL statement on PostgreSQL) and the portable path queue the same jobs; a
company without a URL gets none and costs no extra statement; duplicates queue nothing.
"""

import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm.models import Event, Lead, Stage
from crm.services import event_record, lead_move_to_stage
from crm.tests.factories import ContactFactory, LeadFactory
from engage.conversations import inbound
from engage.conversations.inbound import inbound_message_capture
from engage.ledger.services import job_execute
from engage.models import Job
from engage.policy.consent import contact_opt_out
from engage.webhooks import WEBHOOK_EVENT_TYPES, webhook_event_data
from shokti.testing.celery_worker import wait_for

SECRET = "whsec_test_secret_0123456789"
BODY = {"phone": "+8801712345678", "contact_name": "Rahul Kumar", "channel": "whatsapp_web"}


@pytest.fixture
def receiver(webhook_receiver):
    return webhook_receiver(secret=SECRET)


@pytest.fixture
def hooked(company, receiver):
    """`company` with a webhook URL (the local receiver) and a secret."""
    company.webhook_url, company.webhook_secret = receiver.url, SECRET
    company.save()
    return company


@pytest.fixture(params=[True, False], ids=["one statement", "portable"])
def folded(request, monkeypatch):
    monkeypatch.setattr(inbound, "_is_folded", lambda: request.param)
    return request.param


def capture(company, text, **extra):
    return inbound_message_capture(company=company, text=text, **{**BODY, **extra})


def webhook_jobs():
    return list(Job.objects.filter(task_name="webhook_reminder").order_by("id"))


def assert_job_delivers(job, event):
    assert job.idempotency_key == f"webhook:{event.pk}"
    assert (job.priority, job.status, job.company_id) == (50, "queued", event.company_id)
    assert job.payload == {"event": event.type, "data": webhook_event_data(event=event)}


@pytest.mark.django_db
def test_a_new_inbound_lead_queues_one_job_per_event_and_a_duplicate_none(
    hooked, folded, django_capture_on_commit_callbacks, monkeypatch
):
    from engage.ledger import services as ledger_services

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        first = capture(hooked, "Interested in AC servicing", source="website", external_id="form-1")

    lead_created = Event.objects.get(type="lead.created")
    received = Event.objects.get(type="message.received")
    jobs = webhook_jobs()
    assert len(jobs) == 2
    assert_job_delivers(next(job for job in jobs if job.payload["event"] == "lead.created"), lead_created)
    assert_job_delivers(next(job for job in jobs if job.payload["event"] == "message.received"), received)
    assert jobs[0].payload["data"]["lead_id"] == first.lead_id
    handed = []  # ai_engage and both deliveries go to Celery on commit
    monkeypatch.setattr(ledger_services._JOB_PUBLISHER, "publish_many", handed.extend)
    for callback in callbacks:
        callback()
    assert sorted(run.args[0] for run in handed) == sorted(
        [job.pk for job in jobs] + [Job.objects.get(task_name="ai_engage").pk]
    )

    # the same delivery again, by external id and by payload: nothing more
    capture(hooked, "Interested in AC servicing", source="website", external_id="form-1")
    plain = capture(hooked, "And the price?")
    capture(hooked, "And the price?")
    assert Job.objects.filter(task_name="webhook_reminder").count() == 3  # + the new message's message.received
    assert_job_delivers(webhook_jobs()[-1], Event.objects.get(target_id=str(plain.message_id), type="message.received"))


@pytest.mark.django_db
def test_a_company_without_url_gets_no_job_and_no_extra_statement(company, receiver, folded):
    capture(company, "The company's first lead creates its pipeline", phone="+8801712345670")
    with CaptureQueriesContext(connection) as without_url:
        capture(company, "Interested in AC servicing")
    assert webhook_jobs() == []

    company.webhook_url, company.webhook_secret = receiver.url, SECRET
    company.save()
    with CaptureQueriesContext(connection) as with_url:
        capture(company, "Hello", phone="+8801712345679")
    assert len(webhook_jobs()) == 2
    # the hot path's jobs ride in its one statement; the portable path (opt-outs, not PostgreSQL)
    # writes each with job_enqueue
    extra = 0 if folded else 2
    assert len(with_url.captured_queries) == len(without_url.captured_queries) + extra


@pytest.mark.django_db
def test_an_inbound_opt_out_delivers_opt_out_and_the_message(hooked, folded):
    capture(hooked, "Hi")
    capture(hooked, "STOP")

    types = sorted(job.payload["event"] for job in webhook_jobs())
    assert types == ["lead.created", "message.received", "message.received", "opt_out"]
    opt_out = Event.objects.get(type="opt_out")
    assert_job_delivers(next(job for job in webhook_jobs() if job.payload["event"] == "opt_out"), opt_out)
    assert opt_out.payload["channel"] == "whatsapp_web"


@pytest.mark.django_db
def test_stage_moves_and_consent_revocation_deliver_through_the_same_hook(hooked):
    lead = LeadFactory(company=hooked)
    won = lead.pipeline.stages.get(kind=Stage.Kind.WON)

    lead_move_to_stage(lead=lead, stage=won)
    contact_opt_out(contact=lead.contact, channel="sms", reason="request", source="app")
    contact_opt_out(contact=lead.contact, channel="sms", reason="request", source="app")  # already out: no event

    moved, opted_out = webhook_jobs()
    assert_job_delivers(moved, Event.objects.get(type="stage.changed"))
    assert moved.payload["data"]["status"] == Lead.Status.WON and moved.payload["data"]["to"] == won.name
    assert_job_delivers(opted_out, Event.objects.get(type="opt_out"))


@pytest.mark.django_db
def test_other_event_types_and_rolled_back_events_deliver_nothing(hooked):
    contact = ContactFactory(company=hooked)
    assert "contact.merged" not in WEBHOOK_EVENT_TYPES
    event_record(company=hooked, type="contact.merged", contact=contact)
    assert webhook_jobs() == []

    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        event_record(company=hooked, type="opt_out", contact=contact, payload={"channel": "sms"})
        raise RuntimeError("the caller fails after recording")
    assert webhook_jobs() == [] and not Event.objects.filter(type="opt_out").exists()


@pytest.mark.django_db
def test_a_queued_delivery_posts_the_signed_event_to_the_receiver(hooked, receiver):
    result = capture(hooked, "Interested in AC servicing")
    for job in webhook_jobs():
        assert job_execute(job_id=job.pk) == "completed"

    assert [delivery.is_valid for delivery in receiver.received] == [True, True]
    by_type = {delivery.payload["type"]: delivery.payload for delivery in receiver.received}
    assert set(by_type) == {"lead.created", "message.received"}
    received = by_type["message.received"]
    assert received["data"]["message_id"] == result.message_id and received["company_id"] == hooked.pk
    assert received["id"] == f"webhook:{Event.objects.get(type='message.received').pk}"


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_delivers_an_inbound_lead_to_the_receiver(hooked, receiver, key_client, celery_worker):
    response = key_client.post(
        "/inbound-message",
        {"phone_number": "+8801712345678", "contact_name": "Rahul", "message_text": "Need a plumber",
         "channel": "console", "external_id": "form-77"},
        format="json",
    )
    assert response.status_code == 202
    again = key_client.post(
        "/inbound-message",
        {"phone_number": "+8801712345678", "contact_name": "Rahul", "message_text": "Need a plumber",
         "channel": "console", "external_id": "form-77"},
        format="json",
    )
    assert again.status_code == 202

    wait_for(lambda: len(receiver.received) >= 2, message="both deliveries", worker=celery_worker)
    wait_for(
        lambda: set(Job.objects.filter(task_name="webhook_reminder").values_list("status", flat=True)) == {"completed"},
        message="the webhook jobs to complete", worker=celery_worker,
    )
    assert sorted(delivery.payload["type"] for delivery in receiver.received) == ["lead.created", "message.received"]
    assert all(delivery.is_valid for delivery in receiver.received)
    assert Job.objects.filter(task_name="webhook_reminder").count() == 2


@pytest.mark.django_db
def test_the_admin_move_to_stage_action_delivers_each_move(hooked, client, staff_user):
    client.force_login(staff_user)
    leads = [LeadFactory(company=hooked) for _ in range(2)]
    lost = [lead.pipeline.stages.get(kind=Stage.Kind.LOST) for lead in leads]
    for lead, stage in zip(leads, lost, strict=True):
        client.post(
            reverse("admin:crm_lead_changelist"),
            {"action": "move_to_stage", "_selected_action": [lead.pk], "apply": "1", "stage": stage.pk},
        )

    jobs = webhook_jobs()
    assert [job.payload["data"]["lead_id"] for job in jobs] == [lead.pk for lead in leads]
    assert {(job.payload["event"], job.payload["data"]["status"]) for job in jobs} == {("stage.changed", "lost")}


@pytest.mark.django_db
def test_times_are_delivered_in_utc_whatever_zone_the_sender_used(hooked, folded):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    capture(hooked, "Hi", occurred_at=datetime(2026, 12, 6, 10, 0, tzinfo=ZoneInfo("Asia/Dhaka")))

    jobs = webhook_jobs()
    assert {job.payload["data"]["occurred_at"] for job in jobs} == {"2026-12-06T04:00:00+00:00"}
    for job in jobs:
        assert_job_delivers(job, Event.objects.get(type=job.payload["event"]))


@pytest.mark.django_db(transaction=True)
def test_the_same_delivery_20_times_concurrently_queues_each_webhook_once(hooked):
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    start = threading.Barrier(20)

    def deliver(_):
        start.wait()
        try:
            return capture(hooked, "Need a plumber", external_id="form-9").message_id
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=20) as pool:
        message_ids = set(pool.map(deliver, range(20)))

    assert len(message_ids) == 1
    assert sorted(job.payload["event"] for job in webhook_jobs()) == ["lead.created", "message.received"]
