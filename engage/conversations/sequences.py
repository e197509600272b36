"""Sequences: enroll leads (by hand or on entering a stage), advance due steps, send each step once."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import BooleanField
from django.db.models.expressions import RawSQL
from django.utils import timezone

from crm.models import Channel, Event, Lead, Stage, User
from crm.services import event_record, lead_move_to_stage
from engage.ai.client import ai_generate
from engage.ai.safety import fallback_text_for
from engage.conversations.context import lead_reply_skip_reason
from engage.conversations.models import Enrollment, Sequence, SequenceStep
from engage.ledger.models import Job
from engage.ledger.services import job_enqueue
from engage.messaging.models import Message
from engage.messaging.services import message_send
from engage.prompts.models import PromptTemplateVersion
from engage.prompts.rendering import template_render

logger = logging.getLogger(__name__)


def sequence_enroll(
    *, sequence: Sequence, lead: Lead, actor: User | None = None, source: str = "manual"
) -> tuple[Enrollment, bool]:
    """Enroll the lead at the sequence's first step; (enrollment, created). Enrolling twice changes nothing."""
    if sequence.company_id != lead.company_id:
        raise ValidationError({"lead": "The lead belongs to another company."})
    if sequence.pipeline_id != lead.pipeline_id:
        raise ValidationError({"lead": "The lead is in another pipeline than the sequence."})
    if not sequence.is_active:
        raise ValidationError({"sequence": "The sequence is not active."})
    if lead.status != Lead.Status.OPEN:
        raise ValidationError({"lead": f"The lead is {lead.status}."})
    first_step = sequence.steps.order_by("order").first()
    if first_step is None:
        raise ValidationError({"sequence": "The sequence has no steps."})
    existing = Enrollment.objects.filter(sequence=sequence, lead=lead).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            enrollment = Enrollment.objects.create(
                company_id=lead.company_id, sequence=sequence, lead=lead, current_step=first_step,
                next_run_at=timezone.now() + timedelta(minutes=first_step.delay_minutes), enrolled_by=actor,
            )
            event_record(
                company=lead.company, type="sequence.enrolled", contact=lead.contact, target=lead,
                payload={"sequence_id": sequence.pk, "sequence": sequence.name, "source": source},
                source=source, actor=actor,
            )
    except IntegrityError:  # a concurrent enrollment won
        return Enrollment.objects.get(sequence=sequence, lead=lead), False
    return enrollment, True


def enrollment_stop(*, enrollment: Enrollment, reason: str) -> bool:
    """Stop an active enrollment; False if it was not active."""
    stopped = Enrollment.objects.filter(pk=enrollment.pk, status=Enrollment.Status.ACTIVE).update(
        status=Enrollment.Status.STOPPED, stop_reason=reason[:100], next_run_at=None, updated_at=timezone.now()
    )
    return bool(stopped)


@transaction.atomic
def lead_stage_move(*, lead: Lead, stage: Stage, actor: User | None = None, source: str = "admin") -> Lead:
    """Move the lead (crm's lead_move_to_stage), then apply the sequence rules of the stage it entered."""
    previous_stage_id = Lead.objects.filter(pk=lead.pk).values_list("stage_id", flat=True).first()
    lead = lead_move_to_stage(lead=lead, stage=stage, actor=actor, source=source)
    if previous_stage_id == stage.pk:
        return lead
    if lead.status != Lead.Status.OPEN:
        for enrollment in Enrollment.objects.filter(lead=lead, status=Enrollment.Status.ACTIVE):
            enrollment_stop(enrollment=enrollment, reason=f"lead_{lead.status}")
        return lead
    _stage_rules_apply(lead=lead, sequences=_stage_sequences(lead=lead, stage_id=stage.pk), actor=actor)
    return lead


def stage_sequences_exist() -> RawSQL:
    """An expression for a query of leads (`Lead.objects`, whose table keeps its own name): whether the lead's
    stage starts an active sequence of its company (the rows `_stage_sequences` reads). Written as SQL: the
    ORM's `Exists(...)` subquery cost ~0.5 ms of CPU to build and compile on every reply."""
    lead, sequence = Lead._meta.db_table, Sequence._meta.db_table
    return RawSQL(
        f'EXISTS (SELECT 1 FROM "{sequence}" s WHERE s."company_id" = "{lead}"."company_id" AND s."is_active"'
        f' AND s."trigger" = %s AND s."trigger_stage_id" = "{lead}"."stage_id")',
        [Sequence.Trigger.STAGE_ENTERED.value], output_field=BooleanField(),
    )


def _stage_sequences(*, lead: Lead, stage_id: int) -> list[Sequence]:
    """The company's active sequences started by entering the stage."""
    return list(Sequence.objects.filter(
        company_id=lead.company_id, trigger=Sequence.Trigger.STAGE_ENTERED, trigger_stage_id=stage_id, is_active=True
    ))


def _stage_rules_apply(*, lead: Lead, sequences: list[Sequence], actor: User | None = None) -> list[Enrollment]:
    """Enroll the lead in `sequences` (a stage's rules); the new enrollments."""
    enrolled = []
    for sequence in sequences:
        try:
            enrollment, created = sequence_enroll(sequence=sequence, lead=lead, actor=actor, source="rule")
        except ValidationError as error:
            logger.info("lead %s not enrolled in sequence %s: %s", lead.pk, sequence.pk, error)
            continue
        if created:
            enrolled.append(enrollment)
    return enrolled


def inbound_lead_enroll(*, lead: Lead, message_id: int, has_sequences: bool | None = None) -> list[Enrollment]:
    """Apply the stage rules to a lead the inbound message `message_id` created: it entered its first stage.

    The inbound capture (the benchmarked webhook) does not look at sequences: its `ai_engage` job calls
    this, off the request. The lead was created by that message when the capture recorded `lead.created`
    for it with the message's correlation id; a message of an existing lead enrolls nothing. The lead
    is enrolled in the sequences of the stage it is in now (the first one, unless someone has moved it
    since: then `lead_stage_move` applied that stage's rules). Idempotent: an enrollment is unique per
    sequence and lead, so a job run twice enrolls once.

    `has_sequences`: whether the lead's stage starts any (`stage_sequences_exist()`, read with the lead);
    False skips reading them.
    """
    if lead.status != Lead.Status.OPEN or (has_sequences is False and lead.stage_id is not None):
        return []
    sequences = _stage_sequences(lead=lead, stage_id=lead.stage_id)
    if not sequences:
        return []
    created_by_message = Event.objects.filter(
        type="lead.created", target_type=ContentType.objects.get_for_model(Lead), target_id=str(lead.pk),
        correlation_id__in=Message.objects.filter(pk=message_id, lead_id=lead.pk).values("correlation_id"),
    ).exists()
    if not created_by_message:
        return []
    return _stage_rules_apply(lead=lead, sequences=sequences)


def _step_channel(step: SequenceStep, lead: Lead) -> str:
    return step.channel or lead.channel


def sequences_advance(*, batch_size: int = 500, max_batches: int = 100) -> dict[str, int]:
    """Queue one job per due (enrollment, step), `batch_size` enrollments per short transaction, until
    none is due (or `max_batches` ran: the next beat goes on). Rows are locked with SKIP LOCKED and keys
    are unique, so several beat runs or workers at once never queue a step twice."""
    queued = 0
    for _ in range(max_batches):
        batch = _sequences_advance_batch(batch_size=batch_size)
        queued += batch
        if batch < batch_size:
            break
    return {"queued": queued}


def _sequences_advance_batch(*, batch_size: int) -> int:
    now = timezone.now()
    with transaction.atomic():
        due = list(
            Enrollment.objects.filter(status=Enrollment.Status.ACTIVE, next_run_at__lte=now, current_step__isnull=False)
            .select_related("current_step", "lead", "company")
            .order_by("next_run_at")
            .select_for_update(skip_locked=True, of=("self",))[:batch_size]
        )
        for enrollment in due:
            step = enrollment.current_step
            job_enqueue(
                company=enrollment.company,
                task_name="sequence_step",
                payload={"enrollment_id": enrollment.pk, "step_id": step.pk},
                idempotency_key=f"sequence_step:{enrollment.pk}:{step.pk}",
            )
        if due:
            # Handed to the ledger: the step job moves next_run_at on when it has sent.
            Enrollment.objects.filter(pk__in=[enrollment.pk for enrollment in due]).update(
                next_run_at=None, updated_at=now
            )
    return len(due)


NO_SAFE_TEXT = "no_safe_text"  # neither the model's text nor the approved fallback passed the safety filter


def _step_body(*, step: SequenceStep, lead: Lead, channel: str) -> tuple[str | None, PromptTemplateVersion | None]:
    """The step's text and template version; None for the text when nothing safe can be sent."""
    if not step.prompt_template_id:
        return step.fixed_text.strip(), None
    version = (
        PromptTemplateVersion.objects.filter(
            template_id=step.prompt_template_id, status=PromptTemplateVersion.Status.APPROVED
        )
        .select_related("template")
        .first()
    )
    message_type = "sequence_step"
    if version is None:
        return fallback_text_for(company=lead.company, message_type=message_type, locale=lead.contact.locale), None
    last_inbound = (
        Message.objects.filter(lead=lead, direction=Message.Direction.INBOUND)
        .order_by("-created_at").values_list("body", flat=True).first() or ""
    )
    try:
        prompt = template_render(
            body=version.body,
            agent_type=version.template.agent_type,
            context={
                "company_name": lead.company.name, "contact_name": lead.contact.name, "stage": lead.stage.name,
                "summary": lead.summary, "last_message": last_inbound, "channel": channel,
                "step_number": step.order,
            },
        )
    except ValidationError as error:
        # An approved template that cannot render (e.g. not a sales template): the approved fallback goes out.
        logger.warning("sequence step %s: template %s does not render: %s", step.pk, version.pk, error)
        return fallback_text_for(company=lead.company, message_type=message_type, locale=lead.contact.locale), None
    result = ai_generate(
        company=lead.company, agent_type=version.template.agent_type, purpose="sequence_step",
        messages=[{"role": "user", "content": prompt}], message_type=message_type,
        locale=lead.contact.locale, channel=channel, contact=lead.contact, lead=lead,
    )
    return (result.text if result.is_sendable else None), version


def sequence_step_run(*, job: Job, enrollment_id: int, step_id: int) -> dict[str, Any]:
    """Send one step of an enrollment (once per job) and move the enrollment to its next step."""
    enrollment = Enrollment.objects.select_related(
        "sequence", "lead__contact", "lead__company", "lead__stage"
    ).get(pk=enrollment_id)
    step = SequenceStep.objects.get(pk=step_id, sequence_id=enrollment.sequence_id)
    lead = enrollment.lead
    channel = _step_channel(step, lead)
    existing = Message.objects.filter(job=job, direction=Message.Direction.OUTBOUND).first()
    if existing is None:
        if enrollment.status != Enrollment.Status.ACTIVE or enrollment.current_step_id != step.pk:
            return {"skipped": "not_current"}
        skip_reason = lead_reply_skip_reason(lead=lead, channel=channel)
        if skip_reason:
            enrollment_stop(enrollment=enrollment, reason=skip_reason)
            return {"stopped": skip_reason}
        body, version = _step_body(step=step, lead=lead, channel=channel)
        if body is None:
            enrollment_stop(enrollment=enrollment, reason=NO_SAFE_TEXT)
            return {"stopped": NO_SAFE_TEXT}
    else:
        body, version = existing.body, existing.template_version
    if channel == Channel.EMAIL:
        # Email steps are delivered by the ledger's `email_sequence` job (priority 60): one email sender.
        with transaction.atomic():
            email_job = job_enqueue(
                company=lead.company,
                task_name="email_sequence",
                payload={
                    "contact_id": lead.contact_id, "lead_id": lead.pk, "subject": step.subject or enrollment.sequence.name,
                    "body": body, "agent_type": Message.AgentType.SALES,
                },
                idempotency_key=f"email_sequence:{enrollment.pk}:{step.pk}",
            )
            _enrollment_advance(enrollment=enrollment, step=step)
        return {"email_job_id": email_job.pk}
    message = message_send(
        job=job, company=lead.company, contact=lead.contact, lead=lead, channel=channel, body=body,
        agent_type=Message.AgentType.SALES, message_type="sequence_step", subject=step.subject,
        template_version=version,
    )
    next_step = _enrollment_advance(enrollment=enrollment, step=step)
    return {"message_id": message.pk, "next_step_id": next_step.pk if next_step else None}


def _enrollment_advance(*, enrollment: Enrollment, step: SequenceStep) -> SequenceStep | None:
    """Point the enrollment at the step after `step` (or complete it), only if `step` is still current."""
    next_step = enrollment.sequence.steps.filter(order__gt=step.order).order_by("order").first()
    now = timezone.now()
    advance = Enrollment.objects.filter(pk=enrollment.pk, current_step_id=step.pk, status=Enrollment.Status.ACTIVE)
    if next_step is None:
        advance.update(status=Enrollment.Status.COMPLETED, current_step=None, next_run_at=None, updated_at=now)
    else:
        advance.update(
            current_step=next_step, next_run_at=now + timedelta(minutes=next_step.delay_minutes), updated_at=now
        )
    return next_step
