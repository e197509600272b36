"""The `ai_engage` job: an inbound message gets an AI reply on the lead's channel, recorded end to end."""

import datetime as dt

import pytest
from django.utils import timezone

from channels_app.adapters import console
from crm.models import Event, Lead
from engage.conversations.replies import ai_reply_send
from engage.models import AIConfig, AISession, Job, KnowledgeDoc, Message
from engage.tests.helpers import capture, jobs, run_job

pytestmark = pytest.mark.django_db

ANSWER = "আমাদের ডিজিটাল মার্কেটিং কোর্স তিন মাসের, দাম ৫০০০ টাকা।"
FALLBACK = "ধন্যবাদ, আপনার বার্তা পেয়েছি। আমাদের একজন প্রতিনিধি শীঘ্রই আপনার সাথে যোগাযোগ করবেন।"


def outbound(lead_id):
    return list(Message.objects.filter(lead_id=lead_id, direction="outbound").order_by("id"))


def test_an_inbound_message_gets_a_reply_built_from_prompt_knowledge_and_history(fake_openai, company):
    # given
    AIConfig.objects.create(company=company, system_prompt="You sell Shokti's courses.")
    KnowledgeDoc.objects.create(company=company, title="কোর্সের দাম", body="ডিজিটাল মার্কেটিং কোর্সের দাম ৫০০০ টাকা।")
    KnowledgeDoc.objects.create(company=company, title="Refunds", body="Full refund within 7 days.")
    fake_openai.reply(ANSWER)
    first = capture(company, "হ্যালো")
    Message.objects.create(
        company=company, contact_id=first.contact_id, lead_id=first.lead_id, direction="outbound",
        channel="console", body="হ্যালো! কীভাবে সাহায্য করতে পারি?", status="sent",
    )
    inbound = capture(company, "কোর্সের দাম কত?")

    # when
    assert run_job(inbound.job_id) == "completed"

    # then: the prompt
    request = fake_openai.last_request
    system, *turns = request["messages"]
    assert system["role"] == "system"
    assert system["content"].startswith("You sell Shokti's courses.")
    assert "[কোর্সের দাম]\nডিজিটাল মার্কেটিং কোর্সের দাম ৫০০০ টাকা।" in system["content"]
    assert "Refunds" not in system["content"]
    assert turns == [
        {"role": "user", "content": "হ্যালো"},
        {"role": "assistant", "content": "হ্যালো! কীভাবে সাহায্য করতে পারি?"},
        {"role": "user", "content": "কোর্সের দাম কত?"},
    ]
    # the reply, sent through the lead's channel and recorded
    reply = outbound(inbound.lead_id)[-1]
    assert (reply.body, reply.status, reply.channel) == (ANSWER, "sent", "console")
    assert (reply.agent_type, reply.message_type, reply.job_id) == ("sales", "reply", inbound.job_id)
    assert console.outbox[-1].body == ANSWER
    session = AISession.objects.get(purpose="reply")
    assert (session.outcome, session.message, session.lead_id) == ("ok", reply, inbound.lead_id)
    assert Event.objects.filter(type="message.sent", contact_id=inbound.contact_id).count() == 1
    # and what comes next: a follow-up in 24 h, and a summary
    followup = jobs("followup_bumpup")[0]
    assert followup.payload == {"lead_id": inbound.lead_id, "inbound_message_id": inbound.message_id, "number": 1}
    assert followup.idempotency_key == f"followup_bumpup:{inbound.lead_id}:{inbound.message_id}:1"
    assert followup.priority == 95
    expected = timezone.now() + dt.timedelta(hours=24)
    assert abs((followup.next_run_at - expected).total_seconds()) < 60
    assert [job.priority for job in jobs("ai_summary")] == [90]


def test_a_company_setting_changes_the_follow_up_delay(fake_openai, company):
    AIConfig.objects.create(company=company, followup_after_hours=2)
    inbound = capture(company, "দাম কত?")

    run_job(inbound.job_id)

    delay = jobs("followup_bumpup")[0].next_run_at - timezone.now()
    assert dt.timedelta(hours=1, minutes=59) < delay <= dt.timedelta(hours=2)


def test_a_failed_generation_sends_the_fallback_and_records_why(fake_openai, company):
    fake_openai.fail(status=500, times=3)
    inbound = capture(company, "দাম কত?")

    run_job(inbound.job_id)

    assert [message.body for message in outbound(inbound.lead_id)] == [FALLBACK]
    session = AISession.objects.get()
    assert session.outcome == "error" and "InternalServerError" in session.error


def test_without_an_api_key_the_fallback_is_sent(fake_openai, company, settings):
    settings.OPENAI_API_KEY = ""
    inbound = capture(company, "দাম কত?")

    run_job(inbound.job_id)

    assert [message.body for message in outbound(inbound.lead_id)] == [FALLBACK]
    assert AISession.objects.get().error == "no API key configured"
    assert fake_openai.requests == []


def test_running_the_same_job_twice_sends_and_generates_once(fake_openai, company):
    fake_openai.reply(ANSWER)
    inbound = capture(company, "দাম কত?")
    job = Job.objects.get(pk=inbound.job_id)

    ai_reply_send(job=job, lead_id=inbound.lead_id, message_id=inbound.message_id)
    ai_reply_send(job=job, lead_id=inbound.lead_id, message_id=inbound.message_id)

    assert len(outbound(inbound.lead_id)) == 1
    assert len(fake_openai.requests) == 1
    assert AISession.objects.count() == 1
    assert len(jobs("followup_bumpup")) == 1


@pytest.mark.parametrize("reason", ["lead_won", "lead_lost", "opted_out", "handoff", "replies_disabled"])
def test_no_reply_when_the_lead_is_closed_opted_out_or_with_a_human(fake_openai, company, reason):
    inbound = capture(company, "দাম কত?")
    lead = Lead.objects.get(pk=inbound.lead_id)
    if reason in ("lead_won", "lead_lost"):
        Lead.objects.filter(pk=lead.pk).update(status=reason.removeprefix("lead_"))
    elif reason == "opted_out":
        lead.contact.__class__.objects.filter(pk=lead.contact_id).update(is_sms_consented=False)
    elif reason == "handoff":
        Lead.objects.filter(pk=lead.pk).update(is_ai_paused=True)
    else:
        AIConfig.objects.create(company=company, is_reply_enabled=False)

    assert run_job(inbound.job_id) == "completed"

    assert outbound(inbound.lead_id) == []
    assert fake_openai.requests == []
    assert Job.objects.get(pk=inbound.job_id).result == {"skipped": reason}
    assert Event.objects.get(type="ai.reply_skipped").payload["reason"] == reason
    assert jobs("followup_bumpup") == []


def test_a_job_pointing_at_another_companys_lead_is_dead_at_once(fake_openai, company, other_company):
    inbound = capture(company, "দাম কত?")
    Job.objects.filter(pk=inbound.job_id).update(company=other_company)

    assert run_job(inbound.job_id) == "dead"
    assert outbound(inbound.lead_id) == []


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_answers_an_inbound_message_through_the_sdk(fake_openai, celery_worker_factory, company):
    from shokti.testing.celery_worker import wait_for

    # given: a prefork worker whose AI settings point at the fake model server of this test, and the
    # knowledge passage the answer's price comes from (the safety filter rejects a price nobody gave)
    KnowledgeDoc.objects.create(company=company, title="কোর্সের দাম", body="ডিজিটাল মার্কেটিং কোর্সের দাম ৫০০০ টাকা।")
    fake_openai.reply(ANSWER)
    worker = celery_worker_factory(OPENAI_BASE_URL=fake_openai.base_url, OPENAI_API_KEY="test")

    # when: a message comes in (the ledger hands ai_engage to Celery on commit)
    inbound = capture(company, "কোর্সের দাম কত?")

    # then: the worker asked the model and sent its answer, once
    reply = wait_for(
        lambda: Message.objects.filter(lead_id=inbound.lead_id, direction="outbound", status="sent").first(),
        timeout=30, message="the AI reply", worker=worker,
    )
    assert (reply.body, reply.job_id) == (ANSWER, inbound.job_id)
    assert fake_openai.last_request["messages"][-1] == {"role": "user", "content": "কোর্সের দাম কত?"}
    assert AISession.objects.get(purpose="reply").outcome == "ok"
    wait_for(lambda: Job.objects.get(pk=inbound.job_id).status == "completed", message="the job to complete")
    assert Message.objects.filter(lead_id=inbound.lead_id, direction="outbound").count() == 1
    assert len(jobs("followup_bumpup")) == 1


def test_when_neither_the_answer_nor_the_fallback_is_safe_nothing_is_sent_and_a_person_is_asked(fake_openai, company):
    # given a banned phrase both the model's answer and the approved reply fallback contain
    from engage.models import BannedPhrase

    BannedPhrase.objects.create(company=company, phrase="আমাদের")
    fake_openai.reply(ANSWER)
    inbound = capture(company, "দাম কত?")

    assert run_job(inbound.job_id) == "completed"

    # then the lead got no text, is flagged for hand-off with its AI paused, and the session says why
    assert outbound(inbound.lead_id) == []
    lead = Lead.objects.get(pk=inbound.lead_id)
    assert lead.handoff_requested_at is not None and lead.is_ai_paused
    event = Event.objects.get(type="handoff.requested", contact=lead.contact)
    assert event.payload["reason"] == "no_safe_reply" and event.payload["message_id"] == inbound.message_id
    assert "banned phrase" in event.payload["detail"]
    assert AISession.objects.get().outcome == "rejected"
    assert jobs("followup_bumpup") == []


# The statements one AI reply job costs once the per-process caches are warm: the claim, the lead (with
# whether its stage starts sequences and its company has knowledge documents: neither is read here when
# not), the inbound and any outbound message of the job, the conversation, the session, the message, its
# `sent` update and event, the session's message, the follow-up and summary jobs, the completion: 11.
# bench/ai_reply_profile.py counts the same outside a test transaction (plus BEGIN/COMMIT).
# A new statement on the reply path must be a decision, not drift (docs/benchmarks.md, ai_replies).
PLAIN_ANSWER = "আমাদের নতুন কোর্স আগামী মাসে শুরু হবে।"  # no price: nothing for the claims check
AI_REPLY_STATEMENTS = 11


def test_an_ai_reply_runs_in_a_fixed_number_of_statements(fake_openai, company):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    AIConfig.objects.create(company=company)
    fake_openai.reply(PLAIN_ANSWER)
    run_job(capture(company, "প্রথম", phone="+8801711000101").job_id)  # warms the per-process caches
    inbound = capture(company, "দাম কত?", phone="+8801711000102")
    Job.objects.filter(pk=inbound.job_id).update(next_run_at=timezone.now())
    from engage.ledger.services import job_execute

    with CaptureQueriesContext(connection) as queries:
        assert job_execute(job_id=inbound.job_id, worker="test") == "completed"

    statements = [query["sql"] for query in queries.captured_queries if not query["sql"].startswith(
        ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT"))]
    assert len(statements) <= AI_REPLY_STATEMENTS, "\n".join(statements)
    assert outbound(inbound.lead_id)[-1].body == PLAIN_ANSWER
    assert len(jobs("followup_bumpup", payload__lead_id=inbound.lead_id)) == 1
    assert len(jobs("ai_summary", payload__lead_id=inbound.lead_id)) == 1


def test_a_banned_phrase_added_after_replies_were_cached_judges_the_next_reply(fake_openai, company):
    from engage.models import BannedPhrase

    AIConfig.objects.create(company=company)
    fake_openai.reply(PLAIN_ANSWER)
    first = capture(company, "প্রথম", phone="+8801711000201")
    assert run_job(first.job_id) == "completed"
    assert outbound(first.lead_id)[-1].body == PLAIN_ANSWER, list(AISession.objects.values("outcome", "error"))

    BannedPhrase.objects.create(company=company, phrase="কোর্স")  # clears this process's cache at once
    second = capture(company, "আবার", phone="+8801711000202")
    assert run_job(second.job_id) == "completed"

    assert outbound(second.lead_id)[-1].body == FALLBACK


def test_jobs_enqueue_inserts_new_jobs_once_and_returns_existing_ones_for_a_repeated_key(company):
    from engage.ledger.services import job_enqueue, jobs_enqueue

    earlier = job_enqueue(company=company, task_name="ai_summary", payload={"lead_id": 1}, idempotency_key="s:1")
    made = jobs_enqueue(company=company, jobs=[
        {"task_name": "followup_bumpup", "payload": {"lead_id": 1}, "idempotency_key": "f:1"},
        {"task_name": "ai_summary", "payload": {"lead_id": 1}, "idempotency_key": "s:1"},
    ])
    again = jobs_enqueue(company=company, jobs=[
        {"task_name": "followup_bumpup", "payload": {"lead_id": 1}, "idempotency_key": "f:1"},
    ])

    assert [job.idempotency_key for job in made] == ["f:1", "s:1"]
    assert made[1].pk == earlier.pk and again[0].pk == made[0].pk
    assert Job.objects.filter(company=company).count() == 2
    assert made[0].payload == {"lead_id": 1} and made[0].priority == 95


@pytest.mark.parametrize("text", ["আমি আর বাঁচতে চাই না, সব শেষ করে দিতে চাই।", "honestly I want to die, nothing works",
                                  "ami atmohotta korbo", "I'm going to end it all tonight",
                                  "I don't see the point of living anymore", "সবকিছু শেষ করে দিতে ইচ্ছা করছে"])
def test_a_customer_writing_about_harming_themselves_gets_a_person_not_the_model(fake_openai, company, text):
    fake_openai.reply(ANSWER)
    inbound = capture(company, text)

    assert run_job(inbound.job_id) == "completed"

    # then the model was not asked, nothing was sent, and the conversation waits for a person
    assert fake_openai.requests == []
    assert outbound(inbound.lead_id) == []
    lead = Lead.objects.get(pk=inbound.lead_id)
    assert lead.handoff_requested_at is not None and lead.is_ai_paused
    event = Event.objects.get(type="handoff.requested", contact=lead.contact)
    assert event.payload["reason"] == "crisis" and event.payload["message_id"] == inbound.message_id
    assert jobs("followup_bumpup") == []


def test_a_customer_who_only_mentions_dying_batteries_still_gets_the_ai(fake_openai, company):
    fake_openai.reply(ANSWER)
    inbound = capture(company, "My AC remote's battery died, can you bring one?")

    assert run_job(inbound.job_id) == "completed"

    assert len(fake_openai.requests) == 1 and len(outbound(inbound.lead_id)) == 1
    assert not Lead.objects.get(pk=inbound.lead_id).is_ai_paused


def test_a_running_ai_reply_experiment_answers_each_lead_with_its_arms_prompt_and_records_the_arm(
    fake_openai, company
):
    from engage.experiments.models import Experiment, ExperimentPhase, ExperimentSettings, ExperimentVariant
    from engage.experiments.services import (
        experiment_outcomes_refresh,
        experiment_start,
        holdout_contains,
        reply_experiment_running,
        unit_bucket,
        variant_for_bucket,
    )
    from engage.prompts.models import PromptTemplate
    from engage.prompts.services import template_version_approve, template_version_create

    # given a company whose replies use its system prompt, and a sales reply template to test against it
    AIConfig.objects.create(company=company, system_prompt="You sell Shokti's courses.")
    template = PromptTemplate.objects.create(company=company, agent_type="sales", locale="bn", name="reply")
    version = template_version_create(
        template=template, body="You are Bina of {{ company_name }}. Answer {{ contact_name }} in two sentences."
    )
    template_version_approve(version=version)
    fake_openai.reply(PLAIN_ANSWER)
    assert not reply_experiment_running(company_id=company.pk)  # cached now: saving an experiment clears it
    experiment = Experiment.objects.create(
        company=company, name="Short replies", applies_to="ai_replies", unit="lead", primary_metric="reply_24h",
    )
    control = ExperimentVariant.objects.create(experiment=experiment, name="A (current prompt)", kind="control")
    short = ExperimentVariant.objects.create(
        experiment=experiment, name="B (Bina, short)", kind="template_version", template_version=version
    )
    experiment_start(experiment=experiment)
    assert reply_experiment_running(company_id=company.pk)
    first = capture(company, "কোর্সের দাম কত?", phone="+8801711000301", name="Karim")
    second = capture(company, "কবে শুরু?", phone="+8801711000302", name="Salma")
    # the company's holdout is on and holds the first lead: it does not apply to replies
    settings = ExperimentSettings.objects.create(company=company, is_holdout_enabled=True, holdout_percent=50)
    settings.holdout_salt = next(
        f"h{n}" for n in range(1000)
        if holdout_contains(settings=ExperimentSettings(is_holdout_enabled=True, holdout_percent=50,
                                                        holdout_salt=f"h{n}"), unit="lead", unit_id=first.lead_id)
    )
    settings.save()
    weights = [(control.pk, 50), (short.pk, 50)]
    wanted = {first.lead_id: control.pk, second.lead_id: short.pk}
    salt = next(
        f"s{n}" for n in range(1000)
        if all(variant_for_bucket(bucket=unit_bucket(salt=f"s{n}", experiment_id=experiment.pk, unit_id=lead_id),
                                  weights=weights) == arm for lead_id, arm in wanted.items())
    )
    ExperimentPhase.objects.filter(experiment=experiment).update(salt=salt)

    # when both leads get their AI reply
    assert run_job(first.job_id) == "completed"
    control_prompt = fake_openai.last_request["messages"][0]["content"]
    assert run_job(second.job_id) == "completed"
    short_prompt = fake_openai.last_request["messages"][0]["content"]

    # then the control answered with the company's prompt, the variant with its template, rendered for the lead
    assert control_prompt.startswith("You sell Shokti's courses.")
    assert short_prompt.startswith("You are Bina of Alpha Home Services. Answer Salma in two sentences.")
    assert "You sell Shokti's courses." not in short_prompt
    # and each reply carries its arm (and the variant its template version)
    control_reply, short_reply = outbound(first.lead_id)[-1], outbound(second.lead_id)[-1]
    assert control_reply.body == short_reply.body == PLAIN_ANSWER
    assert control_reply.experiment_assignment.variant_id == control.pk
    assert control_reply.template_version_id is None
    assert short_reply.experiment_assignment.variant_id == short.pk
    assert short_reply.template_version_id == version.pk
    # a second question of the same lead stays in its arm
    again = capture(company, "আর কিছু?", phone="+8801711000302", name="Salma")
    assert again.lead_id == second.lead_id
    assert run_job(again.job_id) == "completed"
    assert fake_openai.last_request["messages"][0]["content"].startswith("You are Bina of Alpha Home Services.")
    assert outbound(second.lead_id)[-1].experiment_assignment_id == short_reply.experiment_assignment_id
    # the primary metric, reply within 24 h, reads the lead's next message: the second lead wrote again
    experiment_outcomes_refresh(experiment=experiment)
    outcomes = dict(
        experiment.phases.get().assignments.values_list("unit_id", "outcome_value")
    )
    assert outcomes == {first.lead_id: 0.0, second.lead_id: 1.0}


def test_an_ai_reply_experiment_is_on_leads_and_tests_prompts_only(company):
    from django.core.exceptions import ValidationError

    from engage.experiments.models import Experiment, ExperimentVariant

    with pytest.raises(ValidationError, match="its unit is the lead"):
        Experiment(company=company, name="x", applies_to="ai_replies", unit="customer", primary_metric="reply_24h",
                   ).full_clean()
    experiment = Experiment.objects.create(
        company=company, name="Replies", applies_to="ai_replies", unit="lead", primary_metric="reply_24h"
    )
    variant = ExperimentVariant(experiment=experiment, name="Best hour", kind="send_time")
    with pytest.raises(ValidationError, match="tests prompts"):
        variant.full_clean()


def test_knowledge_passages_follow_the_companys_active_documents_from_one_reply_to_the_next(fake_openai, company):
    # The lead's SELECT says whether the company has active documents; without them no search is made.
    AIConfig.objects.create(company=company)
    fake_openai.reply(PLAIN_ANSWER)
    doc = KnowledgeDoc.objects.create(company=company, title="কোর্সের দাম", body="কোর্সের দাম ৫০০০ টাকা।",
                                      is_active=False)
    first = capture(company, "কোর্সের দাম কত?", phone="+8801711000301")
    assert run_job(first.job_id) == "completed"
    assert "[কোর্সের দাম]" not in fake_openai.last_request["messages"][0]["content"]

    doc.is_active = True
    doc.save()
    second = capture(company, "কোর্সের দাম কত?", phone="+8801711000302")
    assert run_job(second.job_id) == "completed"
    assert "[কোর্সের দাম]" in fake_openai.last_request["messages"][0]["content"]
