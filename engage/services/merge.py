"""engage's part of a contact merge: crm.services.contact_merge calls this through its hook registry.

The boundary: crm owns the merge (crm must not import engage); engage registers, at start-up
(EngageConfig.ready), a hook that re-points its own rows (messages, AI sessions) in the same transaction.
"""

from __future__ import annotations

from crm.models import Contact
from crm.services import contact_merge_hook_register
from engage.models import AISession, Message


def contact_merge_engage_rows(*, keep: Contact, merge: Contact) -> dict[str, int]:
    """Move the merged contact's messages and AI sessions to the kept contact."""
    return {
        "messages": Message.objects.filter(contact=merge).update(contact=keep),
        "ai_sessions": AISession.objects.filter(contact=merge).update(contact=keep),
    }


def register() -> None:
    contact_merge_hook_register(contact_merge_engage_rows)
