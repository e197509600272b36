"""engage's part of a contact merge, for campaigns: the merged customer's campaign history moves to the kept one.

Registered as a crm contact-merge hook at start-up (EngageConfig.ready). It runs before crm merges the
customer profiles, so the merged customer still exists and its rows are moved, not cascaded."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef
from django.utils import timezone

from crm.models import Contact, Customer
from engage.campaigns.models import CampaignRecipient
from engage.ledger.models import Job
from engage.ledger.services import job_cancel
from engage.messaging.models import Message

# The statuses the campaign's "once per cycle" constraint covers (engage.campaigns.runs.INTENT_STATUSES).
_INTENTS = (CampaignRecipient.Status.PENDING, CampaignRecipient.Status.SENT, CampaignRecipient.Status.FAILED)


def contact_merge_campaign_rows(*, keep: Contact, merge: Contact) -> dict[str, int]:
    """crm's contact-merge hook: when both contacts are customers, move the merged one's campaign recipients."""
    customers = {customer.contact_id: customer for customer in Customer.objects.filter(contact__in=[keep, merge])}
    if keep.pk in customers and merge.pk in customers:
        # A merged customer without a kept one simply moves to the kept contact: its rows go with it.
        return campaign_recipients_merge(keep=customers[keep.pk], merge=customers[merge.pk])
    return {}


def campaign_recipients_merge(*, keep: Customer, merge: Customer) -> dict[str, int]:
    """Move the merged customer's campaign recipients (its campaign history) to the kept customer.

    The kept customer is then "already reminded" in every cycle either of them was reminded in. One
    campaign cycle holds one intent per customer (pending, sent or failed): when both were reminded
    by the same campaign in the same cycle, the kept customer's row stays the cycle's intent and the
    merged one's moves too, as `skipped` / `already_reminded` with its former status in `error`
    (its body and message stay linked). A merged intent still pending loses its send job: the job is
    cancelled and its queued message marked failed, so the kept customer is not reminded twice.
    """
    rows = CampaignRecipient.objects.filter(customer=merge)
    held_by_keep = CampaignRecipient.objects.filter(
        customer=keep, campaign_id=OuterRef("campaign_id"), cycle_started_at=OuterRef("cycle_started_at"),
        status__in=_INTENTS,
    )
    colliding = list(rows.filter(Exists(held_by_keep), status__in=_INTENTS).select_for_update())
    now = timezone.now()
    for row in colliding:
        note = (
            f"Merged from customer #{merge.pk} (was {row.status}): customer #{keep.pk}'s own recipient row"
            " is this cycle's reminder."
        )
        if row.status == CampaignRecipient.Status.PENDING and row.job_id is not None:
            _pending_send_cancel(job_id=row.job_id, reason=note)
        row.status, row.reason, row.error, row.job, row.updated_at = (
            CampaignRecipient.Status.SKIPPED, CampaignRecipient.Reason.ALREADY_REMINDED, note, None, now,
        )
    CampaignRecipient.objects.bulk_update(colliding, ["status", "reason", "error", "job", "updated_at"])
    return {
        "campaign_recipients": rows.update(customer=keep),
        "campaign_recipients_already_reminded": len(colliding),
    }


def _pending_send_cancel(*, job_id: int, reason: str) -> None:
    """Cancel a reminder's send job that has not run (one already running sends: too late to stop)."""
    try:
        job_cancel(job=Job(pk=job_id), reason=reason)
    except (ValidationError, Job.DoesNotExist):
        return
    Message.objects.filter(job_id=job_id, status=Message.Status.QUEUED).update(
        status=Message.Status.FAILED, error=reason, updated_at=timezone.now()
    )
