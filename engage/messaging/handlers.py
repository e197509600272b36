"""Message-sending handlers: a queued message (`message_send`, 80), the opt-out confirmation (95), email_sequence (60)."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from crm.models import Channel, Contact, Lead
from engage.ledger.registry import IO_QUEUE, JobPermanentError, job_handler
from engage.messaging.models import Message
from engage.messaging.services import MESSAGE_SEND_TASK, message_send, message_send_for_job

DEFAULT_OPT_OUT_CONFIRMATION = (
    "You will not receive more messages from us on this channel. Reply START to receive them again. / "
    "এই চ্যানেলে আপনাকে আর বার্তা পাঠানো হবে না। আবার পেতে চাইলে START লিখুন।"
)
DEFAULT_OPT_IN_CONFIRMATION = (
    "You will receive our messages on this channel again. Reply STOP at any time to stop them. / "
    "এই চ্যানেলে আপনি আবার আমাদের বার্তা পাবেন। যেকোনো সময় বন্ধ করতে STOP লিখুন।"
)


def _contact(job) -> Contact:
    contact = Contact.objects.select_related("company").filter(
        pk=job.payload.get("contact_id"), company_id=job.company_id
    ).first()
    if contact is None:
        raise JobPermanentError(f"Contact {job.payload.get('contact_id')!r} not found in the job's company.")
    return contact


def _consent_confirmation(job, *, body: str, message_type: str) -> dict[str, Any]:
    contact = _contact(job)
    lead = Lead.objects.filter(pk=job.payload.get("lead_id"), company_id=job.company_id).first()
    message = message_send(
        job=job, company=contact.company, contact=contact, lead=lead,
        channel=job.payload.get("channel") or Channel.CONSOLE, body=body, agent_type="", message_type=message_type,
    )
    return {"message_id": message.pk, "status": message.status}


@job_handler("opt_out_confirmation", priority=95, queue=IO_QUEUE)
def opt_out_confirmation(job) -> dict[str, Any]:
    """One confirmation after an opt-out; sent although consent is now withdrawn (it says so, and how to come back)."""
    return _consent_confirmation(
        job, body=getattr(settings, "OPT_OUT_CONFIRMATION_TEXT", DEFAULT_OPT_OUT_CONFIRMATION),
        message_type="opt_out_confirmation",
    )


@job_handler("opt_in_confirmation", priority=95, queue=IO_QUEUE)
def opt_in_confirmation(job) -> dict[str, Any]:
    """One confirmation after a person who opted out sent START: they will get messages again, and how to stop."""
    return _consent_confirmation(
        job, body=getattr(settings, "OPT_IN_CONFIRMATION_TEXT", DEFAULT_OPT_IN_CONFIRMATION),
        message_type="opt_in_confirmation",
    )


@job_handler("email_sequence", priority=60, queue=IO_QUEUE)
def email_sequence(job) -> dict[str, Any]:
    """Send one email of an email campaign/sequence to one consented contact: payload contact_id, subject, body."""

    contact = _contact(job)
    if not contact.email:
        raise JobPermanentError("The contact has no email address.")
    subject, body = job.payload.get("subject", ""), job.payload.get("body", "")
    if not body:
        raise JobPermanentError("An email_sequence job needs a body.")
    if not contact.is_email_consented:
        return {"skipped": "no_consent"}
    lead = Lead.objects.filter(pk=job.payload.get("lead_id"), company_id=job.company_id).first()
    message = message_send(
        job=job,
        company=contact.company,
        contact=contact,
        lead=lead,
        channel=Channel.EMAIL,
        subject=subject,
        body=body,
        agent_type=job.payload.get("agent_type", Message.AgentType.SALES),
        message_type="email_sequence",
        correlation_id=job.payload.get("correlation_id"),
    )
    return {"message_id": message.pk, "status": message.status}


@job_handler(MESSAGE_SEND_TASK, priority=80, queue=IO_QUEUE)
def queued_message_send(job) -> dict[str, Any]:
    """Send the message queued with the job; at most once (the message is unique per job)."""
    return message_send_for_job(job=job)
