"""Sequences: enrollment by hand and by stage rule, the beat advancing due steps once, step sending."""

import datetime as dt
import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from crm.models import Contact, Lead
from crm.tests.factories import LeadFactory, PipelineFactory
from engage.conversations.sequences import lead_stage_move, sequence_enroll, sequences_advance
from engage.models import (
    Enrollment,
    Job,
    Message,
    PromptTemplate,
    Sequence,
    SequenceStep,
)
from engage.prompts.services import template_version_approve, template_version_create
from engage.tests.helpers import jobs, run_job


@pytest.fixture
def lead(company):
    return LeadFactory(company=company, channel="console", contact__name="Rahim")


@pytest.fixture
def sequence(lead):
    sequence = Sequence.objects.create(company=lead.company, name="Welcome", pipeline=lead.pipeline)
    SequenceStep.objects.create(sequence=sequence, order=1, delay_minutes=0, fixed_text="স্বাগতম!")
    SequenceStep.objects.create(sequence=sequence, order=2, delay_minutes=60, fixed_text="কোর্সের সময়সূচি দেখুন।")
    return sequence


def due(enrollment):
    Enrollment.objects.filter(pk=enrollment.pk).update(next_run_at=timezone.now() - dt.timedelta(seconds=1))


def sent(lead):
    return list(Message.objects.filter(lead=lead, message_type="sequence_step").order_by("id"))


@pytest.mark.django_db
def test_enrolling_by_hand_starts_at_the_first_step_and_twice_changes_nothing(sequence, lead, staff_user):
    enrollment, created = sequence_enroll(sequence=sequence, lead=lead, actor=staff_user)
    again, created_again = sequence_enroll(sequence=sequence, lead=lead, actor=staff_user)

    assert (created, created_again, again.pk) == (True, False, enrollment.pk)
    assert enrollment.current_step.order == 1
    assert enrollment.next_run_at <= timezone.now()
    assert (enrollment.status, enrollment.enrolled_by) == ("active", staff_user)


@pytest.mark.django_db
def test_a_lead_of_another_company_or_pipeline_cannot_enroll(sequence, company, other_company):
    foreign = LeadFactory(company=other_company)
    other_pipeline = LeadFactory(company=company, pipeline=PipelineFactory(company=company))
    for lead in (foreign, other_pipeline):
        with pytest.raises(ValidationError):
            sequence_enroll(sequence=sequence, lead=lead)
    assert Enrollment.objects.count() == 0


@pytest.mark.django_db
def test_entering_the_trigger_stage_enrolls_the_lead(lead):
    qualified = lead.pipeline.stages.get(name="Qualified")
    sequence = Sequence.objects.create(
        company=lead.company, name="Qualified nurture", pipeline=lead.pipeline,
        trigger=Sequence.Trigger.STAGE_ENTERED, trigger_stage=qualified,
    )
    SequenceStep.objects.create(sequence=sequence, order=1, delay_minutes=30, fixed_text="ধন্যবাদ")

    lead_stage_move(lead=lead, stage=lead.pipeline.stages.get(name="Contacted"))
    assert Enrollment.objects.count() == 0
    lead_stage_move(lead=lead, stage=qualified)

    enrollment = Enrollment.objects.get()
    assert (enrollment.sequence, enrollment.lead) == (sequence, lead)
    assert enrollment.next_run_at > timezone.now() + dt.timedelta(minutes=29)


@pytest.mark.django_db
def test_the_beat_queues_each_due_step_once_and_the_job_sends_and_advances(sequence, lead):
    enrollment, _ = sequence_enroll(sequence=sequence, lead=lead)

    assert sequences_advance() == {"queued": 1}
    assert sequences_advance() == {"queued": 0}
    [job] = jobs("sequence_step")
    assert (job.priority, job.idempotency_key) == (70, f"sequence_step:{enrollment.pk}:{sequence.steps.get(order=1).pk}")

    assert run_job(job) == "completed"

    assert [message.body for message in sent(lead)] == ["স্বাগতম!"]
    enrollment.refresh_from_db()
    assert enrollment.current_step.order == 2
    assert enrollment.next_run_at > timezone.now() + dt.timedelta(minutes=59)
    assert sequences_advance() == {"queued": 0}  # step 2 is not due yet

    due(enrollment)
    sequences_advance()
    run_job(jobs("sequence_step")[-1])

    assert [message.body for message in sent(lead)] == ["স্বাগতম!", "কোর্সের সময়সূচি দেখুন।"]
    enrollment.refresh_from_db()
    assert (enrollment.status, enrollment.current_step, enrollment.next_run_at) == ("completed", None, None)


@pytest.mark.django_db
def test_one_beat_run_queues_a_backlog_bigger_than_its_batch_in_short_batches(sequence, lead):
    leads = [lead, *(LeadFactory(company=lead.company, pipeline=lead.pipeline) for _ in range(6))]
    for each in leads:
        sequence_enroll(sequence=sequence, lead=each)

    assert sequences_advance(batch_size=3) == {"queued": 7}

    assert sorted(job.payload["enrollment_id"] for job in jobs("sequence_step")) == sorted(
        Enrollment.objects.values_list("pk", flat=True)
    )
    assert not Enrollment.objects.filter(next_run_at__isnull=False).exists()
    assert sequences_advance(batch_size=3, max_batches=1) == {"queued": 0}


@pytest.mark.django_db
def test_running_a_step_job_twice_sends_once(sequence, lead):
    sequence_enroll(sequence=sequence, lead=lead)
    sequences_advance()
    [job] = jobs("sequence_step")

    run_job(job)
    Job.objects.filter(pk=job.pk).update(status="queued")
    run_job(job)

    assert len(sent(lead)) == 1


@pytest.mark.django_db
@pytest.mark.parametrize("change", ["won", "opt_out", "handoff"])
def test_a_step_stops_the_enrollment_at_conversion_opt_out_or_hand_off(sequence, lead, change):
    enrollment, _ = sequence_enroll(sequence=sequence, lead=lead)
    sequences_advance()
    if change == "won":
        Lead.objects.filter(pk=lead.pk).update(status="won")
    elif change == "opt_out":
        Contact.objects.filter(pk=lead.contact_id).update(is_sms_consented=False)
    else:
        Lead.objects.filter(pk=lead.pk).update(is_ai_paused=True)

    run_job(jobs("sequence_step")[0])

    assert sent(lead) == []
    enrollment.refresh_from_db()
    assert enrollment.status == "stopped"
    assert enrollment.stop_reason == {"won": "lead_won", "opt_out": "opted_out", "handoff": "handoff"}[change]


@pytest.mark.django_db
def test_moving_to_won_stops_active_enrollments(sequence, lead):
    enrollment, _ = sequence_enroll(sequence=sequence, lead=lead)

    lead_stage_move(lead=lead, stage=lead.pipeline.stages.get(name="Won"))

    enrollment.refresh_from_db()
    assert (enrollment.status, enrollment.stop_reason) == ("stopped", "lead_won")
    assert sequences_advance() == {"queued": 0}


@pytest.mark.django_db
def test_a_template_step_generates_from_the_approved_version(fake_openai, lead):
    template = PromptTemplate.objects.create(company=lead.company, agent_type="sales", locale="bn", name="nudge")
    version = template_version_approve(
        version=template_version_create(template=template, body="Write to {{ contact_name }} at stage {{ stage }}.")
    )
    sequence = Sequence.objects.create(company=lead.company, name="AI nurture", pipeline=lead.pipeline)
    SequenceStep.objects.create(sequence=sequence, order=1, prompt_template=template)
    fake_openai.reply("রহিম, আপনার জন্য নতুন ব্যাচ শুরু হচ্ছে।")
    sequence_enroll(sequence=sequence, lead=lead)
    sequences_advance()

    run_job(jobs("sequence_step")[0])

    assert fake_openai.last_request["messages"] == [{"role": "user", "content": "Write to Rahim at stage New."}]
    [message] = sent(lead)
    assert (message.body, message.template_version) == ("রহিম, আপনার জন্য নতুন ব্যাচ শুরু হচ্ছে।", version)


@pytest.mark.django_db
def test_a_step_whose_text_and_fallback_both_fail_the_filter_sends_nothing_and_stops(fake_openai, lead):
    from engage.models import BannedPhrase

    template = PromptTemplate.objects.create(company=lead.company, agent_type="sales", locale="bn", name="nudge")
    template_version_approve(version=template_version_create(template=template, body="Write to {{ contact_name }}."))
    sequence = Sequence.objects.create(company=lead.company, name="AI nurture", pipeline=lead.pipeline)
    SequenceStep.objects.create(sequence=sequence, order=1, prompt_template=template)
    SequenceStep.objects.create(sequence=sequence, order=2, delay_minutes=60, fixed_text="Second")
    # the model's draft and the approved sequence_step fallback both contain the banned phrase
    BannedPhrase.objects.create(company=lead.company, phrase="ধন্যবাদ")
    fake_openai.reply("রহিম, ধন্যবাদ! নতুন ব্যাচ শুরু হচ্ছে।")
    enrollment, _ = sequence_enroll(sequence=sequence, lead=lead)
    sequences_advance()

    assert run_job(jobs("sequence_step")[0]) == "completed"

    assert sent(lead) == []
    enrollment.refresh_from_db()
    assert (enrollment.status, enrollment.stop_reason, enrollment.next_run_at) == ("stopped", "no_safe_text", None)


@pytest.mark.django_db
def test_an_email_step_is_handed_to_the_email_sequence_job(lead):
    sequence = Sequence.objects.create(company=lead.company, name="Email course", pipeline=lead.pipeline)
    SequenceStep.objects.create(sequence=sequence, order=1, channel="email", fixed_text="Day 1", subject="Welcome")
    enrollment, _ = sequence_enroll(sequence=sequence, lead=lead)
    sequences_advance()

    run_job(jobs("sequence_step")[0])

    [email_job] = jobs("email_sequence")
    assert email_job.priority == 60
    assert email_job.payload["subject"] == "Welcome" and email_job.payload["body"] == "Day 1"
    assert email_job.payload["contact_id"] == lead.contact_id
    enrollment.refresh_from_db()
    assert enrollment.status == "completed"


def email_account(company, smtp_server):
    from channels_app.models import ChannelAccount

    account = ChannelAccount(company=company, channel="email", name="Email", settings={
        "host": "127.0.0.1", "port": smtp_server.port, "from_email": "Alpha <hello@alpha.test>",
    })
    account.secrets_set({})
    account.save()
    return account


def email_sequence_for(lead):
    sequence = Sequence.objects.create(company=lead.company, name="Email course", pipeline=lead.pipeline)
    SequenceStep.objects.create(sequence=sequence, order=1, channel="email", fixed_text="Day 1: classes start Monday.",
                                subject="Welcome to the course")
    return sequence


@pytest.mark.django_db
def test_an_email_step_arrives_by_smtp_once_even_if_its_job_runs_twice(lead, smtp_server):
    email_account(lead.company, smtp_server)
    sequence_enroll(sequence=email_sequence_for(lead), lead=lead)
    sequences_advance()
    run_job(jobs("sequence_step")[0])
    [email_job] = jobs("email_sequence")

    assert run_job(email_job) == "completed"
    Job.objects.filter(pk=email_job.pk).update(status="queued")  # a redelivered task
    run_job(email_job)

    [received] = smtp_server.messages
    assert smtp_server.envelopes[0].rcpt_tos == [lead.contact.email]
    assert received["Subject"] == "Welcome to the course"
    assert "Day 1: classes start Monday." in received.get_body(preferencelist=("plain",)).get_content()
    [message] = Message.objects.filter(lead=lead, direction="outbound")
    assert (message.channel, message.message_type, message.status, message.job_id) == (
        "email", "email_sequence", "sent", email_job.pk
    )


@pytest.mark.django_db
def test_an_email_step_is_not_sent_to_a_contact_who_withdrew_email_consent_meanwhile(lead, smtp_server):
    email_account(lead.company, smtp_server)
    sequence_enroll(sequence=email_sequence_for(lead), lead=lead)
    sequences_advance()
    run_job(jobs("sequence_step")[0])
    Contact.objects.filter(pk=lead.contact_id).update(is_email_consented=False)
    [email_job] = jobs("email_sequence")

    assert run_job(email_job) == "completed"

    assert Job.objects.get(pk=email_job.pk).result == {"skipped": "no_consent"}
    assert smtp_server.messages == []
    assert not Message.objects.filter(lead=lead, direction="outbound").exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_beat_runs_never_queue_a_step_twice(company):
    # given: 30 due enrollments
    leads = [LeadFactory(company=company) for _ in range(30)]
    pipeline_ids = {lead.pipeline_id for lead in leads}
    sequences = {}
    for lead in leads:
        if lead.pipeline_id not in sequences:
            sequences[lead.pipeline_id] = Sequence.objects.create(
                company=company, name=f"S{lead.pipeline_id}", pipeline=lead.pipeline
            )
            SequenceStep.objects.create(sequence=sequences[lead.pipeline_id], order=1, fixed_text="হ্যালো")
        sequence_enroll(sequence=sequences[lead.pipeline_id], lead=lead)
    assert len(pipeline_ids) == 30

    # when: four advancers run at once
    barrier = threading.Barrier(4)
    counts = []

    def advance():
        try:
            barrier.wait()
            counts.append(sequences_advance(batch_size=10)["queued"])
            counts.append(sequences_advance(batch_size=10)["queued"])
            counts.append(sequences_advance(batch_size=10)["queued"])
        finally:
            connection.close()

    threads = [threading.Thread(target=advance) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then
    assert sum(counts) == 30
    assert Job.objects.filter(task_name="sequence_step").count() == 30


# --- Admin: enroll action and sequence pages -------------------------------------------------------


@pytest.mark.django_db
def test_ops_enroll_leads_from_the_lead_list(client, staff_user, sequence, lead, other_company):
    from django.urls import reverse

    closed = LeadFactory(company=lead.company, pipeline=lead.pipeline, status="won")
    client.force_login(staff_user)
    data = {"action": "enroll_in_sequence", "_selected_action": [lead.pk, closed.pk]}

    confirm = client.post(reverse("admin:crm_lead_changelist"), data)
    assert confirm.status_code == 200 and "Enroll leads in a sequence" in confirm.content.decode()
    assert Enrollment.objects.count() == 0

    done = client.post(reverse("admin:crm_lead_changelist"), {**data, "apply": "1", "sequence": sequence.pk}, follow=True)

    assert "Enrolled 1 lead(s) in Welcome. 1 refused" in done.content.decode()
    assert list(Enrollment.objects.values_list("lead_id", flat=True)) == [lead.pk]


@pytest.mark.django_db
def test_moving_a_lead_to_a_stage_in_the_admin_applies_the_sequence_rules(client, staff_user, lead):
    from django.urls import reverse

    qualified = lead.pipeline.stages.get(name="Qualified")
    sequence = Sequence.objects.create(company=lead.company, name="Rule", pipeline=lead.pipeline,
                                       trigger="stage_entered", trigger_stage=qualified)
    SequenceStep.objects.create(sequence=sequence, order=1, fixed_text="হ্যালো")
    client.force_login(staff_user)

    client.post(reverse("admin:crm_lead_changelist"),
                {"action": "move_to_stage", "_selected_action": [lead.pk], "apply": "1", "stage": qualified.pk})

    assert Lead.objects.get(pk=lead.pk).stage == qualified
    assert Enrollment.objects.get().sequence == sequence


@pytest.mark.django_db
def test_sequence_pages_are_scoped_to_the_users_companies(client, staff_user, other_staff_user, sequence):
    from django.urls import reverse

    client.force_login(staff_user)
    assert client.get(reverse("admin:engage_sequence_change", args=[sequence.pk])).status_code == 200
    link = reverse("admin:engage_sequence_change", args=[sequence.pk])
    assert link in client.get(reverse("admin:engage_sequence_changelist")).content.decode()
    client.force_login(other_staff_user)
    assert client.get(reverse("admin:engage_sequence_change", args=[sequence.pk])).status_code == 404
    assert link not in client.get(reverse("admin:engage_sequence_changelist")).content.decode()


@pytest.mark.django_db
def test_a_template_that_cannot_render_sends_the_fallback(fake_openai, lead):
    template = PromptTemplate.objects.create(company=lead.company, agent_type="coachnova", locale="bn", name="x")
    template_version_approve(version=template_version_create(template=template, body="{{ worker_name }}"))
    sequence = Sequence.objects.create(company=lead.company, name="Misconfigured", pipeline=lead.pipeline)
    step = SequenceStep(sequence=sequence, order=1, prompt_template=template)
    with pytest.raises(ValidationError):
        step.full_clean()
    step.save()  # as if saved before the check existed
    sequence_enroll(sequence=sequence, lead=lead)
    sequences_advance()

    assert run_job(jobs("sequence_step")[0]) == "completed"

    assert [message.body for message in sent(lead)] == ["আমাদের সাথে থাকার জন্য ধন্যবাদ। কোনো প্রশ্ন থাকলে জানাবেন।"]
    assert fake_openai.requests == []
