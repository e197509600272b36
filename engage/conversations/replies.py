"""The AI reply to an inbound message (`ai_engage` job), and the follow-up and summary it schedules."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from crm.models import Lead
from crm.services import event_record
from engage.ai.client import ai_generate
from engage.ai.config import ai_config_for
from engage.ai.models import AISession
from engage.ai.moderation import crisis_signs
from engage.conversations.context import conversation_messages, lead_reply_skip_reason, system_prompt_parts
from engage.conversations.handoff import lead_flag_handoff
from engage.experiments.services import experiment_exposures_for, reply_experiment_running
from engage.ledger.models import Job
from engage.ledger.services import job_enqueue, jobs_enqueue
from engage.messaging.models import Message
from engage.messaging.services import message_send
from engage.prompts.models import PromptTemplateVersion
from engage.prompts.rendering import template_render

logger = logging.getLogger(__name__)

NO_SAFE_REPLY = "no_safe_reply"  # neither the model's text nor the fallback passed the safety filter
CRISIS = "crisis"  # the customer wrote about harming themselves: a person answers, not the model
SUMMARY_DEBOUNCE_SECONDS = 600


def _inbound_and_existing_outbound(*, job: Job, lead: Lead, message_id: int) -> tuple[Message, Message | None]:
    """The inbound message (of the lead's company; Message.DoesNotExist if not) and the job's outbound
    message when a previous run sent it, in one statement."""
    inbound = existing = None
    for message in Message.objects.filter(
        Q(pk=message_id, company=lead.company, direction=Message.Direction.INBOUND)
        | Q(job=job, direction=Message.Direction.OUTBOUND)
    ).order_by("id"):
        if message.direction == Message.Direction.INBOUND and message.pk == message_id:
            inbound = message
        elif message.direction == Message.Direction.OUTBOUND and existing is None:
            existing = message
    if inbound is None:
        raise Message.DoesNotExist(f"Inbound message {message_id!r} not found in the lead's company.")
    return inbound, existing


def _followup_spec(*, lead: Lead, inbound_message_id: int, number: int, delay: timedelta) -> dict[str, Any]:
    return {
        "task_name": "followup_bumpup",
        "payload": {"lead_id": lead.pk, "inbound_message_id": inbound_message_id, "number": number},
        "idempotency_key": f"followup_bumpup:{lead.pk}:{inbound_message_id}:{number}",
        "run_at": timezone.now() + delay,
    }


def _summary_spec(*, lead: Lead) -> dict[str, Any]:
    now = timezone.now()
    bucket = int(now.timestamp()) // SUMMARY_DEBOUNCE_SECONDS
    return {
        "task_name": "ai_summary",
        "payload": {"lead_id": lead.pk},
        "idempotency_key": f"ai_summary:{lead.pk}:{bucket}",
        "run_at": datetime.fromtimestamp((bucket + 1) * SUMMARY_DEBOUNCE_SECONDS, tz=UTC),
    }


def followup_schedule(*, lead: Lead, inbound_message_id: int, number: int, delay: timedelta) -> Job:
    """Queue bump-up `number` after the inbound message (one per lead, message and number)."""
    spec = _followup_spec(lead=lead, inbound_message_id=inbound_message_id, number=number, delay=delay)
    return job_enqueue(company=lead.company, **spec)


def summary_schedule(*, lead: Lead) -> Job:
    """Queue a summary refresh, at most one per lead per 10 minutes, run at the end of that window."""
    return job_enqueue(company=lead.company, **_summary_spec(lead=lead))


@dataclass(frozen=True)
class ReplyArm:
    """The lead's arm in the company's running experiment on AI replies: its prompt (None: the company's
    system prompt, the control), its template version and the stored assignment the message carries."""

    prompt: str | None = None
    version: PromptTemplateVersion | None = None
    assignment_id: int | None = None


NO_ARM = ReplyArm()


def reply_arm(*, lead: Lead, inbound: Message) -> ReplyArm:
    """The lead's arm (assigned and stored at its first AI reply) when the company runs an experiment on AI
    replies; NO_ARM, without a statement, when it does not (a per-process cached check).

    The company's holdout does not apply: a lead who asked a question is answered (see
    engage.experiments.services._holdout_settings). A template-version arm's (or a pinned control's)
    sales template, rendered for this lead, replaces the company's system prompt; an unpinned control
    keeps it."""
    if not reply_experiment_running(company_id=lead.company_id):
        return NO_ARM
    exposure = experiment_exposures_for(company=lead.company, applies_to="ai_replies", unit_ids=[lead.pk]).get(lead.pk)
    if exposure is None or exposure.is_holdout:
        return NO_ARM
    version = exposure.template_version
    if version is None:
        return ReplyArm(assignment_id=exposure.assignment_id)
    try:
        prompt = template_render(
            body=version.body, agent_type="sales",
            context={
                "company_name": lead.company.name, "contact_name": lead.contact.name or "",
                "stage": lead.stage.name if lead.stage_id else "", "summary": lead.summary,
                "last_message": inbound.body, "channel": lead.channel, "step_number": "",
            },
        )
    except ValidationError as error:
        # Checked when the experiment started; a template that still cannot render answers with the control.
        logger.warning("AI reply arm: template version %s does not render: %s", version.pk, error)
        return ReplyArm(assignment_id=exposure.assignment_id)
    return ReplyArm(prompt=prompt, version=version, assignment_id=exposure.assignment_id)


def ai_reply_send(
    *, job: Job, lead_id: int, message_id: int, lead: Lead | None = None, has_knowledge: bool | None = None
) -> dict[str, Any]:
    """Answer an inbound message: conversation + knowledge → model → safety filter → send → schedule follow-ups.

    `lead`: the lead `lead_id` with its company and contact, when the caller has just read it;
    `has_knowledge`: whether its company has active knowledge documents, read with it (False: no search)."""
    if lead is None:
        lead = Lead.objects.select_related("company", "contact", "stage").get(pk=lead_id)
    inbound, existing = _inbound_and_existing_outbound(job=job, lead=lead, message_id=message_id)
    config = ai_config_for(company=lead.company)
    channel = lead.channel
    if existing is None:
        skip_reason = lead_reply_skip_reason(lead=lead, channel=channel, config=config)
        if skip_reason:
            event_record(
                company=lead.company, type="ai.reply_skipped", contact=lead.contact, target=lead,
                payload={"reason": skip_reason, "message_id": message_id, "job_id": job.pk}, source="engage",
                correlation_id=inbound.correlation_id,
            )
            return {"skipped": skip_reason}
        if signs := crisis_signs(inbound.body):
            # Someone writing about harming themselves gets a person at once, never a generated text.
            lead_flag_handoff(
                company=lead.company, lead_id=lead.pk,
                payload={"reason": CRISIS, "words": signs[:3], "message_id": message_id},
            )
            return {"skipped": CRISIS}
        arm = reply_arm(lead=lead, inbound=inbound)
        system = system_prompt_parts(lead=lead, config=config, query_text=inbound.body, prompt=arm.prompt,
                                     has_knowledge=has_knowledge)
        result = ai_generate(
            company=lead.company, agent_type="sales", purpose="reply",
            messages=[{"role": "system", "content": system.text}, *conversation_messages(lead=lead)],
            message_type="reply", locale=lead.contact.locale, channel=channel, contact=lead.contact, lead=lead,
            correlation_id=inbound.correlation_id, safety_context=system.safety_context(), ai_config=config,
        )
        if not result.is_sendable:
            # Neither the model's text nor the approved fallback passes the safety filter (a fallback
            # too long for the channel, a banned phrase in it): send nothing, a person answers.
            lead_flag_handoff(
                company=lead.company, lead_id=lead.pk,
                payload={"reason": NO_SAFE_REPLY, "detail": result.reason[:500], "message_id": message_id},
            )
            return {"skipped": NO_SAFE_REPLY, "reason": result.reason}
        body, session = result.text, result.session
    else:
        # A retried job: send what was generated the first time, do not ask the model again (the message
        # keeps the arm it was written with).
        body, session, arm = existing.body, None, NO_ARM
    message = message_send(
        job=job, company=lead.company, contact=lead.contact, lead=lead, channel=channel, body=body,
        agent_type=Message.AgentType.SALES, message_type="reply", correlation_id=inbound.correlation_id,
        existing=existing, template_version=arm.version, experiment_assignment_id=arm.assignment_id,
    )
    with transaction.atomic():
        if session is not None:
            AISession.objects.filter(pk=session.pk).update(message=message)
        # The first follow-up and the summary refresh in one INSERT (followup_schedule + summary_schedule).
        jobs_enqueue(company=lead.company, jobs=[
            _followup_spec(
                lead=lead, inbound_message_id=message_id, number=1,
                delay=timedelta(hours=config.followup_after_hours),
            ),
            _summary_spec(lead=lead),
        ])
    return {"message_id": message.pk, "outcome": session.outcome if session else "resent"}


def lead_summary_refresh(*, lead_id: int) -> dict[str, Any]:
    """Regenerate the lead's summary from its conversation; the old one stays if the model fails."""
    lead = Lead.objects.select_related("company", "contact").get(pk=lead_id)
    turns = conversation_messages(lead=lead, limit=40)
    if not turns:
        return {"skipped": "no_messages"}
    transcript = "\n".join(
        f"{'Customer' if turn['role'] == 'user' else 'Us'}: {turn['content']}" for turn in turns
    )
    result = ai_generate(
        company=lead.company, agent_type="sales", purpose="summary",
        messages=[
            {
                "role": "system",
                "content": "Summarise this sales conversation for the sales team in at most three short sentences "
                "in English: what the customer wants, their objections or questions, and the next step.",
            },
            {"role": "user", "content": transcript},
        ],
        message_type=None, locale="en", contact=lead.contact, lead=lead, max_tokens=200,
    )
    if result.outcome != AISession.Outcome.OK:
        return {"skipped": result.outcome, "reason": result.reason}
    Lead.objects.filter(pk=lead.pk).update(summary=result.text, updated_at=timezone.now())
    return {"summary_length": len(result.text)}
