"""The inbound webhook's hot path: both ways of writing a message (one statement on PostgreSQL, the
portable one) store the same rows, and the per-process caches it reads stay correct."""

import pytest
from django.contrib.contenttypes.models import ContentType

from crm.models import Event, Lead
from engage.conversations import handoff, inbound
from engage.conversations.inbound import inbound_message_capture
from engage.models import AIConfig, Job, Message

BODY = {"phone": "+8801712345678", "contact_name": "Rahul Kumar", "channel": "whatsapp_web"}


@pytest.fixture(params=[True, False], ids=["one statement", "portable"])
def folded(request, monkeypatch):
    monkeypatch.setattr(inbound, "_is_folded", lambda: request.param)
    return request.param


def capture(company, text, **extra):
    return inbound_message_capture(company=company, text=text, **{**BODY, **extra})


@pytest.mark.django_db
def test_message_job_and_events_are_the_same_either_way(company, folded, django_capture_on_commit_callbacks):
    # when a first and a second message arrive from one person
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        first = capture(company, "Interested in AC servicing", source="website", raw={"form": 7})
    second = capture(company, "What does it cost?", external_id="form-18")

    # then
    assert len(callbacks) == 1  # the job goes to Celery only after the commit
    lead = Lead.objects.get()
    assert (first.lead_id, second.lead_id) == (lead.pk, lead.pk)
    assert (lead.source, lead.stage.name, lead.stage.order, lead.pipeline.is_default) == ("website", "New", 1, True)
    for result, key_start in ((first, "hash:"), (second, "ext:form-18")):
        message = Message.objects.get(pk=result.message_id)
        job = Job.objects.get(pk=result.job_id)
        assert message.job_id == job.pk
        assert message.external_id.startswith(key_start)
        assert (message.direction, message.status, message.message_type, message.agent_type) == (
            "inbound", "received", "inbound", ""
        )
        assert (job.company_id, job.task_name, job.priority, job.status, job.attempts, job.max_attempts) == (
            company.pk, "ai_engage", 100, "queued", 0, 5
        )
        assert job.idempotency_key == f"ai_engage:inbound:{message.pk}"
        assert job.payload == {"lead_id": lead.pk, "message_id": message.pk, "contact_id": lead.contact_id}
        assert job.dispatched_at is not None and job.next_run_at == job.created_at
    assert Message.objects.get(pk=first.message_id).provider_response == {"form": 7}

    message_type = ContentType.objects.get_for_model(Message)
    lead_type = ContentType.objects.get_for_model(Lead)
    events = list(
        Event.objects.order_by("id").values_list("type", "target_type", "target_id", "payload", "source", "contact")
    )
    assert events == [
        ("lead.created", lead_type.pk, str(lead.pk), {"lead_id": lead.pk, "channel": "whatsapp_web", "source": "website"},
         "whatsapp_web", lead.contact_id),
        ("message.received", message_type.pk, str(first.message_id),
         {"message_id": first.message_id, "lead_id": lead.pk, "channel": "whatsapp_web"}, "whatsapp_web", lead.contact_id),
        ("message.received", message_type.pk, str(second.message_id),
         {"message_id": second.message_id, "lead_id": lead.pk, "channel": "whatsapp_web"}, "whatsapp_web", lead.contact_id),
    ]
    first_message = Message.objects.get(pk=first.message_id)
    assert set(Event.objects.filter(correlation_id=first_message.correlation_id).values_list("type", flat=True)) == {
        "lead.created", "message.received"
    }


@pytest.mark.django_db
def test_a_repeated_payload_without_external_id_is_caught_inside_the_transaction(company, folded):
    first = capture(company, "Do you clean sofas?")
    before = (Lead.objects.count(), Message.objects.count(), Job.objects.count(), Event.objects.count())

    again = capture(company, "Do you clean sofas?", contact_name="Someone Else")

    assert again.is_duplicate is True
    assert (again.lead_id, again.message_id, again.job_id) == (first.lead_id, first.message_id, first.job_id)
    assert (Lead.objects.count(), Message.objects.count(), Job.objects.count(), Event.objects.count()) == before


@pytest.mark.django_db
def test_a_new_lead_after_the_default_pipeline_changed_its_first_stage(company, folded):
    first = capture(company, "hello")
    Lead.objects.filter(pk=first.lead_id).update(status=Lead.Status.LOST)
    pipeline = Lead.objects.get(pk=first.lead_id).pipeline
    new_first = pipeline.stages.create(name="Triage", order=0, kind="open")

    second = capture(company, "hello again")

    assert second.lead_id != first.lead_id
    assert Lead.objects.get(pk=second.lead_id).stage == new_first


@pytest.mark.django_db
def test_the_open_lead_moves_to_the_channel_the_person_wrote_on_last(company, folded):
    first = capture(company, "hello", channel="whatsapp_web")
    second = capture(company, "hello again, by text", channel="sms")
    third = capture(company, "and once more", channel="sms")

    assert first.lead_id == second.lead_id == third.lead_id
    lead = Lead.objects.get(pk=first.lead_id)
    assert lead.channel == "sms"  # replies go where the person wrote last
    assert Event.objects.filter(type="lead.created").count() == 1
    assert list(Message.objects.order_by("id").values_list("lead_id", "channel")) == [
        (lead.pk, "whatsapp_web"), (lead.pk, "sms"), (lead.pk, "sms"),
    ]


@pytest.mark.django_db
def test_handoff_keywords_saved_in_this_process_apply_to_the_next_message(company, folded, settings):
    settings.HANDOFF_KEYWORDS_CACHE_SECONDS = 3600
    assert not Lead.objects.get(pk=capture(company, "operator please").lead_id).is_ai_paused  # defaults cached

    AIConfig.objects.create(company=company, handoff_keywords=["operator"])

    assert Lead.objects.get(pk=capture(company, "operator, now").lead_id).is_ai_paused


@pytest.mark.django_db
def test_handoff_keywords_written_elsewhere_apply_within_the_ttl(company, monkeypatch, settings):
    settings.HANDOFF_KEYWORDS_CACHE_SECONDS = 30
    now = [500.0]
    monkeypatch.setattr(handoff.time, "monotonic", lambda: now[0])
    config = AIConfig.objects.create(company=company, handoff_keywords=["human"])
    assert handoff.handoff_keywords_for(company_id=company.pk) == ["human"]

    AIConfig.objects.filter(pk=config.pk).update(handoff_keywords=["operator"])  # no signal: another process

    now[0] += 29
    assert handoff.handoff_keywords_for(company_id=company.pk) == ["human"]
    now[0] += 2
    assert handoff.handoff_keywords_for(company_id=company.pk) == ["operator"]


@pytest.mark.django_db
def test_the_duplicate_probe_uses_the_unique_index_even_in_a_prepared_generic_plan(company):
    # PostgreSQL may run a statement prepared by psycopg with one plan for every parameter value;
    # the probe spells out the partial index's predicate, and looks each key up on its own, so
    # that plan is still two index lookups, never a walk over the company's messages.
    import re

    from django.db import connection

    first = capture(company, "hello", external_id="probe-1")
    assert capture(company, "hello", external_id="probe-1").message_id == first.message_id
    numbers = iter(range(1, 10))
    statement = re.sub("%s", lambda _: f"${next(numbers)}", inbound._probe_sql())
    # The planner judges by the table's statistics: with the few rows a test leaves (and whatever earlier tests
    # left in them) any index of the company's is as cheap. 5,000 of its messages, analysed, make it decide as
    # in production, whichever tests ran before.
    columns = [field.column for field in Message._meta.concrete_fields if field.column not in ("id", "external_id", "job_id")]
    copied = ", ".join(columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO engage_message ({copied}, external_id) SELECT {copied}, 'bulk-' || n"
            " FROM engage_message, generate_series(1, 5000) n WHERE id = %s",
            [first.message_id],
        )
        cursor.execute("ANALYZE engage_message")
        cursor.execute("SET plan_cache_mode = force_generic_plan")
        cursor.execute(f"PREPARE probe_plan (bigint, text, bigint, text, timestamptz) AS {statement}")
        cursor.execute("EXPLAIN EXECUTE probe_plan (1, 'x', 1, '', now())")
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("DEALLOCATE probe_plan")
        cursor.execute("RESET plan_cache_mode")
    index_conditions = [line for line in plan.splitlines() if "Index Cond" in line]
    assert plan.count("message_unique_inbound_external_id") == 2
    assert len(index_conditions) == 2 and all("external_id" in line for line in index_conditions)


@pytest.mark.django_db
def test_a_retry_just_after_a_dedupe_window_boundary_is_still_a_duplicate(company, folded, monkeypatch, settings):
    # Payload-hash keys are per 10-minute window: the retry carries the next window's key.
    import datetime as dt

    settings.INBOUND_DEDUPE_WINDOW_SECONDS = 600
    boundary = dt.datetime(2026, 11, 22, 3, 10, tzinfo=dt.UTC)
    clock = [boundary - dt.timedelta(seconds=1)]
    monkeypatch.setattr(inbound.timezone, "now", lambda: clock[0])
    first = capture(company, "Do you clean sofas?")
    counts = (Message.objects.count(), Job.objects.count(), Event.objects.count())

    clock[0] = boundary + dt.timedelta(seconds=1)
    retry = capture(company, "Do you clean sofas?")

    assert retry.is_duplicate and (retry.message_id, retry.job_id) == (first.message_id, first.job_id)
    assert (Message.objects.count(), Job.objects.count(), Event.objects.count()) == counts

    clock[0] = boundary + dt.timedelta(seconds=600)  # a window after the first: a new message
    later = capture(company, "Do you clean sofas?")
    assert not later.is_duplicate and later.message_id != first.message_id
