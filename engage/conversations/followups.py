"""Bump-ups: a short nudge after silence, on a cadence, until the lead answers, converts or opts out."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import transaction

from crm.models import Lead
from engage.ai.client import ai_generate
from engage.ai.config import ai_config_for
from engage.ai.models import AISession
from engage.conversations.context import conversation_messages, lead_reply_skip_reason, system_prompt_parts
from engage.conversations.replies import followup_schedule
from engage.ledger.models import Job
from engage.messaging.models import Message
from engage.messaging.services import message_send

FOLLOWUP_INSTRUCTION = (
    "The customer has not answered for a while. Write one short, friendly follow-up message that "
    "picks up the conversation and invites a reply. No pressure, no new promises."
)


def followup_send(*, job: Job, lead_id: int, inbound_message_id: int, number: int) -> dict[str, Any]:
    """Send bump-up `number` unless the lead answered since, closed, opted out or is with a human."""
    lead = Lead.objects.select_related("company", "contact").get(pk=lead_id)
    channel = lead.channel
    config = ai_config_for(company=lead.company)
    existing = Message.objects.filter(job=job, direction=Message.Direction.OUTBOUND).first()
    if existing is None:
        if Message.objects.filter(
            lead=lead, direction=Message.Direction.INBOUND, pk__gt=inbound_message_id
        ).exists():
            return {"stopped": "replied"}
        skip_reason = lead_reply_skip_reason(lead=lead, channel=channel, config=config)
        if skip_reason:
            return {"stopped": skip_reason}
        if number > config.followup_max:
            return {"stopped": "max_reached"}
        inbound_text = Message.objects.filter(pk=inbound_message_id).values_list("body", flat=True).first() or ""
        system = system_prompt_parts(
            lead=lead, config=config, query_text=inbound_text, instruction=FOLLOWUP_INSTRUCTION
        )
        result = ai_generate(
            company=lead.company, agent_type="sales", purpose="followup",
            messages=[{"role": "system", "content": system.text}, *conversation_messages(lead=lead)],
            message_type="followup", locale=lead.contact.locale, channel=channel, contact=lead.contact, lead=lead,
            safety_context=system.safety_context(),
        )
        if not result.is_sendable:
            # Not even the approved fallback passes the filter: the chain stops (the reason is on the AISession).
            return {"stopped": "no_safe_text", "reason": result.reason}
        body, session = result.text, result.session
    else:
        body, session = existing.body, None
    message = message_send(
        job=job, company=lead.company, contact=lead.contact, lead=lead, channel=channel, body=body,
        agent_type=Message.AgentType.SALES, message_type="followup",
    )
    with transaction.atomic():
        if session is not None:
            AISession.objects.filter(pk=session.pk).update(message=message)
        if number < config.followup_max:
            followup_schedule(
                lead=lead, inbound_message_id=inbound_message_id, number=number + 1,
                delay=timedelta(hours=config.followup_cadence_hours),
            )
    return {"message_id": message.pk, "number": number}
