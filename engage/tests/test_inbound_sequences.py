"""A lead the inbound webhook creates enters its first stage: the sequences started by that stage enroll it.

The webhook is the benchmarked hot path: the rules run in the message's `ai_engage` job, not in the request.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.models import Event, Lead
from crm.services import api_key_create, pipeline_get_or_create_default
from crm.tests.factories import ContactFactory, LeadFactory
from engage.models import Enrollment, Job, Sequence, SequenceStep
from engage.tests.helpers import run_job

pytestmark = pytest.mark.django_db

URL = "/inbound-message"


def key_client_for(company):
    from rest_framework.test import APIClient

    _, raw_key = api_key_create(company=company, name="inbound")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    return client


def post(client, phone, text="I want to join the course"):
    response = client.post(
        URL, {"phone_number": phone, "contact_name": "Rahim", "message_text": text, "channel": "console"}, format="json"
    )
    assert response.status_code == 202, response.content
    return response.json()


def welcome_sequence(company, *, stage_name="New", is_active=True):
    pipeline = pipeline_get_or_create_default(company=company)
    stage = pipeline.stages.get(name=stage_name)
    sequence = Sequence.objects.create(
        company=company, name=f"Welcome ({stage_name})", pipeline=pipeline, trigger=Sequence.Trigger.STAGE_ENTERED,
        trigger_stage=stage, is_active=is_active,
    )
    SequenceStep.objects.create(sequence=sequence, order=1, delay_minutes=0, fixed_text="স্বাগতম!")
    return sequence


def run_again(job_id):
    """The same ai_engage job delivered again (at-least-once: e.g. its worker died before acknowledging)."""
    Job.objects.filter(pk=job_id).update(status=Job.Status.QUEUED, attempts=0, finished_at=None)
    return run_job(job_id)


def test_a_new_lead_enrolls_in_the_sequence_of_its_first_stage_once(key_client, company, fake_openai):
    # given a company whose "stage entered: New" sequence is active (and one for another stage)
    fake_openai.reply("Welcome!")
    sequence = welcome_sequence(company)
    welcome_sequence(company, stage_name="Contacted")

    # when a new person writes
    body = post(key_client, "+8801712000001")

    # then the request enrolled nobody: the rules run in the job
    assert not Enrollment.objects.exists()
    assert run_job(body["job_id"]) == "completed"
    enrollment = Enrollment.objects.get()
    assert (enrollment.sequence, enrollment.lead_id, enrollment.status) == (sequence, body["lead_id"], "active")
    assert enrollment.current_step.order == 1
    # and the job delivered twice enrolls once
    assert run_again(body["job_id"]) == "completed"
    assert Enrollment.objects.count() == 1
    assert Event.objects.filter(type="sequence.enrolled", target_id=str(body["lead_id"])).count() == 1


def test_a_message_of_an_existing_lead_enrolls_nothing(key_client, company, fake_openai):
    # given a lead in stage New from before the sequence existed
    fake_openai.reply("Hello again")
    sequence = welcome_sequence(company)
    contact = ContactFactory(company=company, phone="+8801712000002")
    lead = LeadFactory(company=company, contact=contact, pipeline=sequence.pipeline, stage=sequence.trigger_stage)

    # when that person writes, and a new person writes to a company whose sequence is switched off
    body = post(key_client, contact.phone)
    Sequence.objects.filter(pk=sequence.pk).update(is_active=False)
    other = post(key_client, "+8801712000003")

    assert body["lead_id"] == lead.pk and other["lead_id"] != lead.pk
    assert run_job(body["job_id"]) == run_job(other["job_id"]) == "completed"
    # then nobody is enrolled
    assert not Enrollment.objects.exists()


def test_a_new_lead_whose_first_stage_starts_no_sequence_is_not_enrolled(key_client, company, fake_openai):
    fake_openai.reply("Hi")
    welcome_sequence(company, stage_name="Qualified")

    body = post(key_client, "+8801712000004")

    assert run_job(body["job_id"]) == "completed"
    assert Lead.objects.get(pk=body["lead_id"]).stage.name == "New"
    assert not Enrollment.objects.exists()


def test_the_request_never_reads_sequences(key_client, company, other_company):
    # given two companies with their pipelines, one with a "stage entered: New" sequence, one without
    welcome_sequence(company)
    pipeline_get_or_create_default(company=other_company)
    other_client = key_client_for(other_company)
    post(key_client, "+8801712000010", "warm-up")  # per-process caches (API key, content types) filled
    post(other_client, "+8801712000010", "warm-up")
    sequence_tables = (Sequence._meta.db_table, SequenceStep._meta.db_table, Enrollment._meta.db_table)

    # when each gets a message from a new person
    counted = {}
    for name, client in (("with", key_client), ("without", other_client)):
        with CaptureQueriesContext(connection) as queries:
            post(client, "+8801712000011")
        counted[name] = [query["sql"] for query in queries.captured_queries]

    # then neither request touched a sequence table, and both ran the same statements
    for statements in counted.values():
        assert statements and not [sql for sql in statements if any(table in sql for table in sequence_tables)]
    assert len(counted["with"]) == len(counted["without"])
