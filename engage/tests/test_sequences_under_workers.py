"""Sequences against real Celery workers: several workers, beats running at once and redelivered tasks
still send each step of each enrollment exactly once, in order.

Transactional: the workers are other processes and see only committed rows.
"""

import threading
import time

import pytest
from django.db import connection

from crm.tests.factories import LeadFactory, PipelineFactory
from engage.conversations.sequences import sequence_enroll, sequences_advance
from engage.ledger.services import JobRun, jobs_dispatch
from engage.models import Enrollment, Job, Message, Sequence, SequenceStep
from shokti.testing.celery_worker import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

LEADS = 20
STEPS = ["Welcome!", "Here is the course schedule.", "Classes start on Monday."]


def test_several_workers_and_concurrent_beats_send_each_step_exactly_once(company, celery_worker_factory):
    from shokti.celery import app

    # given: 20 leads enrolled in a three-step sequence whose steps are all due at once
    app.control.purge()  # no stale broker messages from earlier tests
    pipeline = PipelineFactory(company=company)
    sequence = Sequence.objects.create(company=company, name="Onboarding", pipeline=pipeline)
    for order, text in enumerate(STEPS, start=1):
        SequenceStep.objects.create(sequence=sequence, order=order, delay_minutes=0, fixed_text=text)
    leads = [LeadFactory(company=company, pipeline=pipeline, channel="console") for _ in range(LEADS)]
    for lead in leads:
        sequence_enroll(sequence=sequence, lead=lead)
    # two workers of two processes each
    workers = [celery_worker_factory(), celery_worker_factory()]

    # when: four beats advance the sequences at once, over and over, and each of them publishes every
    # queued step job once more (redelivered or relayed tasks racing the first delivery)
    stop = threading.Event()
    errors = []

    def beat():
        published = set()
        try:
            while not stop.is_set():
                sequences_advance(batch_size=7)
                queued = Job.objects.filter(task_name="sequence_step", status="queued").values_list("id", "priority")
                for job_id, priority in queued:
                    if job_id not in published:
                        published.add(job_id)
                        jobs_dispatch([JobRun(job_id, priority)])
                time.sleep(0.05)
        except Exception as error:  # surfaced below: a beat must never fail
            errors.append(error)
        finally:
            connection.close()

    beats = [threading.Thread(target=beat) for _ in range(4)]
    for thread in beats:
        thread.start()
    try:
        wait_for(
            lambda: Enrollment.objects.filter(status="completed").count() == LEADS,
            timeout=120, interval=0.2, message="every enrollment to complete", worker=workers[0],
        )
    finally:
        stop.set()
        for thread in beats:
            thread.join()

    # then: one job and one message per (enrollment, step), each lead's steps in order
    assert errors == []
    step_jobs = Job.objects.filter(task_name="sequence_step")
    assert step_jobs.count() == LEADS * len(STEPS)
    assert set(step_jobs.values_list("status", flat=True)) == {"completed"}
    messages = Message.objects.filter(message_type="sequence_step", direction="outbound").order_by("id")
    assert messages.count() == LEADS * len(STEPS)
    for lead in leads:
        assert [message.body for message in messages if message.lead_id == lead.pk] == STEPS
    assert set(messages.values_list("status", flat=True)) == {"sent"}
    assert len(set(messages.values_list("job_id", flat=True))) == LEADS * len(STEPS)
    # both workers took part (the ledger clears locked_by on completion: their logs say it)
    assert all("Task engage.job_run[" in worker.log() for worker in workers)
