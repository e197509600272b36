"""The ledger's handlers of conversations: `ai_engage` (100) the AI reply to an inbound message (and a new lead's
stage rules), `manual_reply` (100) a reply typed by a person, `followup_bumpup` (95) a nudge after silence,
`ai_summary` (90) the lead's summary after a turn (debounced), `sequence_step` (70) one due step of an enrollment
(email steps are handed on to the `email_sequence` job of engage.messaging.handlers), `media_download` (60) the
photo, voice note or file a customer sent, stored (engage.conversations.media)."""

from __future__ import annotations

from typing import Any

from crm.models import Lead
from engage.ai.knowledge import knowledge_exists
from engage.conversations.claims import inbound_claimed
from engage.conversations.followups import followup_send
from engage.conversations.media import message_media_store
from engage.conversations.replies import ai_reply_send, lead_summary_refresh, summary_schedule
from engage.conversations.sequences import inbound_lead_enroll, sequence_step_run, stage_sequences_exist
from engage.ledger.registry import IO_QUEUE, JobPermanentError, job_handler
from engage.messaging.models import Message
from engage.messaging.services import message_send


@job_handler("ai_engage", priority=100, queue=IO_QUEUE)
def ai_engage(job) -> dict[str, Any]:
    lead_id, message_id = job.payload.get("lead_id"), job.payload.get("message_id")
    # Read once, with what the reply needs (its company is the job's, already loaded by the claim).
    # The contact's worker row too (a LEFT JOIN): the claim hooks ask whether the writer is a worker.
    # Whether the lead's stage starts sequences and the company has knowledge documents, in the same
    # statement: a company without them is not asked again for its sequences or passages.
    lead = (Lead.objects.select_related("contact__worker", "stage")
            .annotate(stage_has_sequences=stage_sequences_exist(), company_has_knowledge=knowledge_exists(Lead._meta.db_table))
            .filter(pk=lead_id, company_id=job.company_id).first())
    if lead is None:
        raise JobPermanentError(f"Lead {lead_id!r} not found in the job's company.")
    lead.company = job.company
    if inbound_claimed(contact=lead.contact, message_id=message_id):
        return {"skipped": "claimed"}  # another app answers it (a worker's reply to their coaching)
    # A lead this message created entered its first stage: that stage's sequence rules apply here,
    # off the webhook's hot path (idempotent when the job runs again).
    inbound_lead_enroll(lead=lead, message_id=message_id, has_sequences=lead.stage_has_sequences)
    return ai_reply_send(job=job, lead_id=lead_id, message_id=message_id, lead=lead,
                         has_knowledge=lead.company_has_knowledge)


@job_handler("manual_reply", priority=100, queue=IO_QUEUE)
def manual_reply(job) -> dict[str, Any]:
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


@job_handler("followup_bumpup", priority=95, queue=IO_QUEUE)
def followup_bumpup(job) -> dict[str, Any]:
    payload = job.payload
    return followup_send(
        job=job, lead_id=payload["lead_id"], inbound_message_id=payload["inbound_message_id"],
        number=int(payload.get("number", 1)),
    )


@job_handler("ai_summary", priority=90, queue=IO_QUEUE)
def ai_summary(job) -> dict[str, Any]:
    return lead_summary_refresh(lead_id=job.payload["lead_id"])


@job_handler("sequence_step", priority=70, queue=IO_QUEUE)
def sequence_step(job) -> dict[str, Any]:
    return sequence_step_run(job=job, enrollment_id=job.payload["enrollment_id"], step_id=job.payload["step_id"])


@job_handler("media_download", priority=60, queue=IO_QUEUE)
def media_download(job) -> dict[str, Any]:
    return message_media_store(company_id=job.company_id, message_id=job.payload["message_id"])
