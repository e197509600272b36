"""engage's public surface (engage.api): a message queued under consent and caps, sent once by its ledger job."""

import pytest

from crm.models import Channel, Event
from crm.tests.factories import CompanyFactory, ContactFactory, WorkerFactory
from engage import api
from engage.models import Job, Message
from engage.tests.helpers import run_job


@pytest.fixture
def worker(company, twilio_account):
    return WorkerFactory(
        company=company,
        contact=ContactFactory(company=company, phone="+8801711000009", is_sms_consented=True, timezone="Asia/Dhaka"),
    )


def queue(contact, key, **extra):
    return api.message_queue(
        company=contact.company, contact=contact, channel=Channel.SMS, body="আপনার সময়মতো পৌঁছানোর জন্য ধন্যবাদ।",
        agent_type="coachnova", message_type="coaching", idempotency_key=key, **extra,
    )


@pytest.mark.django_db
def test_a_queued_message_counts_against_the_caps_and_its_job_sends_it_once(worker, fake_twilio):
    # given a worker under the default caps (one proactive message per week for workers)
    contact = worker.contact

    # when a coaching message is queued under the worker's caps, and then another one
    first = queue(contact, "coaching:1", role=api.ROLE_WORKER)
    second = queue(contact, "coaching:2", role=api.ROLE_WORKER)

    # then the first is queued with its ledger job and the second is refused by the caps, writing nothing
    assert first.decision.allowed and first.message.status == Message.Status.QUEUED
    assert first.job.task_name == "message_send" and first.message.job_id == first.job.pk
    assert not second.decision.allowed and second.decision.reason in {"too_soon", "weekly_cap", "daily_cap"}
    assert second.message is None and Message.objects.filter(contact=contact).count() == 1

    # and the job sends it; run again (a redelivery), nothing is sent twice
    assert run_job(first.job) == "completed"
    first.message.refresh_from_db()
    assert first.message.status == Message.Status.SENT and first.message.agent_type == "coachnova"
    assert len(fake_twilio.requests) == 1
    Job.objects.filter(pk=first.job.pk).update(status=Job.Status.QUEUED)
    assert run_job(first.job) == "completed"
    assert Event.objects.filter(type="message.sent", contact=contact).count() == 1


@pytest.mark.django_db
def test_the_same_key_queues_nothing_twice(worker):
    first = queue(worker.contact, "reply:7")
    again = queue(worker.contact, "reply:7")
    assert again.job.pk == first.job.pk and again.message.pk == first.message.pk
    assert Message.objects.filter(contact=worker.contact).count() == 1


@pytest.mark.django_db
def test_no_consent_queues_nothing(worker):
    worker.contact.is_sms_consented = False
    worker.contact.save(update_fields=["is_sms_consented"])
    result = queue(worker.contact, "reply:8")
    assert not result.decision.allowed and result.decision.reason == "no_consent"
    assert not Job.objects.filter(task_name="message_send").exists()


@pytest.mark.django_db
def test_another_companys_contact_is_refused(worker):
    other = CompanyFactory(name="Beta", slug="beta")
    with pytest.raises(Exception, match="another company"):
        api.message_queue(
            company=other, contact=worker.contact, channel=Channel.SMS, body="x", agent_type="coachnova",
            message_type="coaching", idempotency_key="x",
        )
    assert not Message.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_calls_with_one_key_queue_one_message(worker):
    import threading

    from django.db import connection

    results, errors = [], []

    def call():
        try:
            results.append(queue(worker.contact, "coaching:race", role=api.ROLE_WORKER))
        except Exception as error:  # pragma: no cover - the assertion below shows it
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert {result.job.pk for result in results} == {Job.objects.get(task_name="message_send").pk}
    assert all(result.decision.allowed for result in results)
    assert Message.objects.filter(contact=worker.contact).count() == 1
