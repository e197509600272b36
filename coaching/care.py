"""Care instead of coaching: a worker under a burnout alert (coaching.burnout) who met the lateness pattern gets a
short care message from CoachNova, not punctuality coaching. Written by the model under the coaching safety rules
(message_type "coaching"), or this module's care text when the model is offline or its text is rejected (engage's
generic fallback is about bookings, not rest). Sent once per run and worker; a dry run only writes the text."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from coaching.models import CoachingRecipient, CoachingRun
from crm.models import Worker
from crm.services import event_record
from engage import api as engage

CARE_FALLBACK = ("{name}, গত কয়েক দিন আপনি অনেক পরিশ্রম করেছেন, আপনার কাজের জন্য ধন্যবাদ। বিশ্রামও কাজের অংশ: "
                 "প্রয়োজনে একটা দিন ছুটি নিন। আপনার সময়সূচি হালকা করতে আমরা আপনার ম্যানেজারের সাথে কথা বলছি।")
CARE_SYSTEM = (
    "You are CoachNova, writing one short, warm SMS in Bengali to a home-services worker of {company} who has worked "
    "very long hours lately (long weeks, few days off). Thank them for their work, encourage rest, and say that "
    "their manager knows and will help lighten the schedule. Do not mention lateness, ratings, cancellations or any "
    "performance number; no pressure, no comparison with other workers, no threat about jobs or pay. At most "
    "{max_characters} characters."
)


def care_text_generate(*, worker: Worker, channel: str) -> tuple[str, str]:
    """(text, outcome): the model's text when it passed the safety filter, else the care text ("care_fallback")."""
    company = worker.company
    first_name = (worker.contact.name or "").split(" ")[0] or "ভাই"
    result = engage.ai_generate(
        company=company, agent_type="coachnova", purpose="care", message_type="coaching", locale="bn",
        channel=channel, contact=worker.contact,
        messages=[{"role": "system", "content": CARE_SYSTEM.format(company=company.name, max_characters=320)},
                  {"role": "user", "content": f"The worker's name: {worker.contact.name}."}],
    )
    if result.is_fallback or not result.is_sendable:
        return CARE_FALLBACK.format(name=first_name), "care_fallback"
    return result.text, "care_ok"


def care_messages_send(*, run: CoachingRun) -> int:
    """The care message of every worker the run skipped for a burnout alert (once per run and worker)."""
    rows = (run.recipients.filter(status=CoachingRecipient.Status.SKIPPED, reason=CoachingRecipient.Reason.BURNOUT,
                                  message__isnull=True, text="")
            .select_related("worker__contact", "worker__company"))
    sent = 0
    for row in rows:
        text, outcome = care_text_generate(worker=row.worker, channel=row.channel)
        row.text, row.ai_outcome, row.processed_at = text, outcome, timezone.now()
        if run.is_dry_run:
            row.detail = "care message (dry run: not sent)"
            row.save(update_fields=["text", "ai_outcome", "processed_at", "detail"])
            continue
        with transaction.atomic():
            queued = engage.message_queue(
                company=run.company, contact=row.worker.contact, channel=row.channel, body=text,
                agent_type=engage.AgentType.COACHNOVA, message_type="coaching", role=engage.ROLE_WORKER,
                idempotency_key=f"coachnova_care:{run.pk}:{row.worker_id}",
            )
            if queued.decision.allowed:
                row.message, row.detail = queued.message, "care message sent instead of coaching"
                event_record(company=run.company, type="coaching.care_sent", contact=row.worker.contact,
                             target=row.worker, source="coachnova",
                             payload={"run_id": run.pk, "message_id": queued.message.pk, "text": text})
                sent += 1
            else:
                row.detail = f"care message not sent: {queued.decision.reason}"[:200]
            row.save(update_fields=["text", "ai_outcome", "processed_at", "detail", "message"])
    return sent
