"""send-bulk counts every message once, whichever process sends it (issue 17: a worker that claimed a send
job first made the bulk result report `failed` for messages it then sent)."""

from __future__ import annotations

import threading
import time

import pytest
from django.core import mail
from django.db import connection

from engage.campaigns.smartengage import sending as smartengage_service
from engage.ledger import services as jobs_service
from engage.ledger.registry import handler_for
from engage.models import Job, Message
from engage.tests.campaign_helpers import customer_due

BULK = "/admin/smartengage/send-bulk"


class OtherProcess:
    """A second sender (its own thread and database connection, like a Celery worker) that claims each
    send job as soon as it is committed, and sends it a little later."""

    def __init__(self, *, delay: float):
        self.delay = delay
        self.threads: list[threading.Thread] = []
        self.claimed: list[int] = []

    def take(self, job_id: int) -> None:
        claimed = threading.Event()

        def run():
            try:
                job = jobs_service.job_claim(job_id=job_id, worker="other-worker")
                if job is None:
                    return
                self.claimed.append(job_id)
                claimed.set()
                time.sleep(self.delay)
                result = handler_for(job.task_name).function(job)
                if job.status != Job.Status.COMPLETED:
                    jobs_service.job_complete(job=job, result=result)
            finally:
                claimed.set()
                connection.close()

        thread = threading.Thread(target=run)
        thread.start()
        self.threads.append(thread)
        claimed.wait(5)


@pytest.mark.django_db(transaction=True)
def test_messages_a_worker_sent_first_count_as_sent_once(jwt_client, company, monkeypatch, settings):
    # given three due customers, and a worker that takes every send job before this process does
    settings.SMARTENGAGE_SEND_CONCURRENCY = 1
    customers = [customer_due(company) for _ in range(3)]
    other = OtherProcess(delay=0.3)
    real_execute = smartengage_service.job_execute

    def execute_after_the_worker(*, job_id, worker=None):
        other.take(job_id)
        return real_execute(job_id=job_id, worker=worker)

    monkeypatch.setattr(smartengage_service, "job_execute", execute_after_the_worker)

    # when
    response = jwt_client.post(BULK, {"customer_ids": [customer.pk for customer in customers]}, format="json")
    for thread in other.threads:
        thread.join(10)

    # then: each message was sent once, by the worker, and counted once, as sent
    body = response.json()
    assert response.status_code == 200, body
    assert len(other.claimed) == 3
    assert {key: body[key] for key in ("total_eligible", "sent", "failed", "skipped", "queued")} == {
        "total_eligible": 3, "sent": 3, "failed": 0, "skipped": 0, "queued": 0,
    }
    assert Message.objects.filter(direction="outbound", status="sent").count() == 3
    assert len(mail.outbox) == 3


@pytest.mark.django_db(transaction=True)
def test_a_send_still_with_the_worker_after_the_wait_is_counted_queued_not_failed(jwt_client, company, monkeypatch,
                                                                                    settings):
    settings.SMARTENGAGE_SEND_CONCURRENCY = 1
    settings.SMARTENGAGE_SEND_WAIT_SECONDS = 0.2
    customer = customer_due(company)
    other = OtherProcess(delay=1.5)
    real_execute = smartengage_service.job_execute

    def execute_after_the_worker(*, job_id, worker=None):
        other.take(job_id)
        return real_execute(job_id=job_id, worker=worker)

    monkeypatch.setattr(smartengage_service, "job_execute", execute_after_the_worker)

    body = jwt_client.post(BULK, {"customer_ids": [customer.pk]}, format="json").json()
    for thread in other.threads:
        thread.join(10)

    assert (body["sent"], body["failed"], body["queued"]) == (0, 0, 1)
    assert Message.objects.get(direction="outbound").status == "sent"  # the worker did send it, once
