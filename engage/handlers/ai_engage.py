"""`ai_engage` (100): the AI reply to an inbound message (and a new lead's stage rules); `manual_reply` (100): a reply
typed by a person."""

from __future__ import annotations

from typing import Any

from crm.models import Lead
from engage.handlers import JobPermanentError, job_handler


@job_handler("ai_engage", priority=100)
def ai_engage(job) -> dict[str, Any]:
    from engage.services.ai_reply import ai_reply_send
    from engage.services.sequences import inbound_lead_enroll

    lead_id, message_id = job.payload.get("lead_id"), job.payload.get("message_id")
    lead = Lead.objects.filter(pk=lead_id, company_id=job.company_id).first()
    if lead is None:
        raise JobPermanentError(f"Lead {lead_id!r} not found in the job's company.")
    # A lead this message created entered its first stage: that stage's sequence rules apply here,
    # off the webhook's hot path (idempotent when the job runs again).
    inbound_lead_enroll(lead=lead, message_id=message_id)
    return ai_reply_send(job=job, lead_id=lead_id, message_id=message_id)


@job_handler("manual_reply", priority=100)
def manual_reply(job) -> dict[str, Any]:
    from engage.models import Message
    from engage.services.ai_reply import summary_schedule
    from engage.services.messages import message_send

    lead = Lead.objects.select_related("company", "contact").filter(
        pk=job.payload.get("lead_id"), company_id=job.company_id
    ).first()
    if lead is None:
        raise JobPermanentError(f"Lead {job.payload.get('lead_id')!r} not found in the job's company.")
    if not lead.contact.is_consented(lead.channel):
        return {"skipped": "opted_out"}
    message = message_send(
        job=job, company=lead.company, contact=lead.contact, lead=lead, channel=lead.channel,
        body=job.payload["body"], agent_type=Message.AgentType.MANUAL, message_type="manual_reply",
    )
    # A conversation held by a person keeps the lead's summary current too.
    summary_schedule(lead=lead)
    return {"message_id": message.pk}
