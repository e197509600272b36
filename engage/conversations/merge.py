"""engage's part of a contact merge, for conversations: crm.services.contact_merge calls this through its hooks.

The boundary: crm owns the merge (crm must not import engage); engage registers its hooks at
start-up (EngageConfig.ready), and each re-points its own rows in the merge's transaction. This one
moves messages and AI sessions (keyed to the contact); engage.campaigns.merge moves campaign
recipients (keyed to the customer profile). The hooks run before crm merges the profiles."""

from __future__ import annotations

from crm.models import Contact
from engage.ai.models import AISession
from engage.messaging.models import Message


def contact_merge_messages(*, keep: Contact, merge: Contact) -> dict[str, int]:
    """crm's contact-merge hook: move the merged contact's messages and AI sessions to the kept one."""
    return {
        "messages": Message.objects.filter(contact=merge).update(contact=keep),
        "ai_sessions": AISession.objects.filter(contact=merge).update(contact=keep),
    }
