"""Reliability against real PostgreSQL, Redis and a real Celery worker: duplicates, outages, crashes, dead letters.

Every test here is transactional: the worker is another process and sees only committed rows.
"""

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections
from rest_framework.test import APIClient

from crm.models import Contact, Event, Lead
from crm.tests.factories import ContactFactory
from engage.ledger.services import job_enqueue, job_replay, jobs_relay
from engage.models import Job, Message
from shokti.testing.celery_worker import broker_for_this_process, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

BODY = {
    "phone_number": "+8801712345678",
    "contact_name": "Rahul Kumar",
    "message_text": "Is the deep-cleaning package available on Friday?",
    "channel": "console",
    "external_id": "form-submission-42",
}


@pytest.mark.parametrize("key", ["external_id", "same payload"])
def test_the_same_webhook_delivered_50_times_concurrently_makes_one_lead_one_message_one_job(company, api_key, key):
    # 50 threads, each with its own database connection, through the whole Django/DRF stack; the
    # delivery is known by its external_id, or without one by the same payload within the window
    raw_key = api_key[1]
    body = BODY if key == "external_id" else {name: value for name, value in BODY.items() if name != "external_id"}
    start = threading.Barrier(50)

    def deliver(_):
        client = APIClient()
        client.credentials(HTTP_X_API_KEY=raw_key)
        start.wait()
        try:
            return client.post("/inbound-message", body, format="json")
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(deliver, range(50)))

    assert [response.status_code for response in responses] == [202] * 50
    assert len({tuple(sorted(response.json().items())) for response in responses}) == 1
    assert (Contact.objects.count(), Lead.objects.count(), Message.objects.count(), Job.objects.count()) == (1, 1, 1, 1)
    assert Event.objects.filter(type="lead.created").count() == 1
    assert Event.objects.filter(type="message.received").count() == 1


def test_redis_down_while_webhooks_arrive_they_are_accepted_and_every_job_runs_once_redis_is_back(
    key_client, company, redis_server_factory, celery_worker_factory, settings
):
    # given a broker of our own, a worker on it, and then the broker dies
    redis = redis_server_factory()
    worker = celery_worker_factory(broker_url=redis.url)
    settings.JOBS_DISPATCH_TIMEOUT_SECONDS = 0
    with broker_for_this_process(redis.url):
        redis.stop()

        # when webhooks arrive (opt-outs: their confirmation job is ours end to end; the rest ai_engage)
        texts = ["STOP", "stop", "UNSUBSCRIBE", "Do you work on Fridays?", "How much for 2 ACs?"]
        started = time.monotonic()
        responses = [
            key_client.post(
                "/inbound-message", {**BODY, "phone_number": f"+88017123450{i:02d}", "message_text": text,
                                     "external_id": f"outage-{i}"}, format="json"
            )
            for i, text in enumerate(texts)
        ]
        elapsed = time.monotonic() - started

        # then every one is accepted, promptly, and its job waits in the ledger
        assert [response.status_code for response in responses] == [202] * len(texts)
        assert elapsed < 10
        job_ids = [response.json()["job_id"] for response in responses]
        jobs = Job.objects.filter(pk__in=job_ids)
        assert [job.status for job in jobs] == ["queued"] * len(texts)

        # when Redis is back and the relay runs (beat does this every 30 s)
        redis.start()
        assert jobs_relay()["redispatched"] == len(texts)

        # then every job runs, once
        wait_for(
            lambda: not jobs.filter(status__in=["queued", "processing", "failed"]).exists(),
            timeout=60, message="the jobs to finish", worker=worker,
        )
    jobs = list(jobs.order_by("id"))
    assert [job.attempts for job in jobs] == [1] * len(texts)
    assert [job.task_name for job in jobs] == ["opt_out_confirmation"] * 3 + ["ai_engage"] * 2
    assert [job.status for job in jobs] == ["completed"] * len(texts), [job.last_error for job in jobs]
    for job in jobs:
        assert Message.objects.filter(job=job, direction="outbound", status="sent").count() == 1


def test_a_worker_killed_mid_job_completes_it_exactly_once_in_effect(company, celery_worker, tmp_path, settings):
    # given a job that sends a message and then stalls
    settings.JOBS_LOCK_TIMEOUT_SECONDS = 3  # as the worker's (see WORKER_ENV)
    contact = ContactFactory(company=company, phone="+8801712000042")
    calls_file, pid_file = tmp_path / "calls", tmp_path / "pid"
    job = job_enqueue(
        company=company, task_name="reliability_send_then_wait",
        payload={"contact_id": contact.pk, "calls_file": str(calls_file), "pid_file": str(pid_file), "sleep": 60},
        idempotency_key="kill-me",
    )

    # when the process running it is killed after the send
    pid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text(), message="the handler to send"))
    os.kill(pid, signal.SIGKILL)

    # then the worker sees its child die and the task comes back (acks_late + reject_on_worker_lost);
    # the claim lets it resume only once the lock is stale, else the relay hands the job out again
    wait_for(lambda: "signal 9" in celery_worker.log(), message="the worker to see its child die", worker=celery_worker)

    def completed():
        jobs_relay()
        return Job.objects.get(pk=job.pk).status == "completed"

    wait_for(completed, interval=0.5, message="the job to complete", worker=celery_worker)
    job.refresh_from_db()
    calls = calls_file.read_text().split()
    assert len(calls) == 2 and calls[0] != calls[1] and calls[0] == str(pid)
    assert job.attempts == 2
    message = Message.objects.get(direction="outbound")
    assert message.status == "sent" and message.job_id == job.pk
    assert job.result == {"message_id": message.pk}
    assert Event.objects.filter(type="message.sent").count() == 1


def test_a_handler_that_always_fails_ends_dead_with_its_error_and_replay_runs_it_again(
    company, celery_worker, tmp_path
):
    marker = tmp_path / "fixed"
    job = job_enqueue(
        company=company, task_name="reliability_always_fails", max_attempts=3,
        payload={"error": "the provider said no", "pass_when_exists": str(marker)}, idempotency_key="doomed",
    )

    wait_for(lambda: Job.objects.get(pk=job.pk).status == "dead", message="the job to die")

    job.refresh_from_db()
    assert (job.attempts, job.last_error) == (3, "RuntimeError: the provider said no")

    # when the cause is fixed and the job replayed
    marker.touch()
    job_replay(job=job)

    wait_for(lambda: Job.objects.get(pk=job.pk).status == "completed", message="the replayed job to complete")
    job.refresh_from_db()
    assert (job.attempts, job.result) == (1, {"passed": True})
