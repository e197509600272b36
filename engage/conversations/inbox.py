"""The console's inbox: open conversations of a staff member's companies, newest activity first.

A conversation is an open lead with messages; its activity is its latest message. The inbox pages
with a keyset cursor over (latest message time, message id), never an OFFSET or a COUNT, so it stays
fast at millions of messages:
- broad views (all, unassigned, unread, AI-handled, a channel) walk the messages newest first
  (index `message_company_created`) and keep a message only when it is its lead's latest
  (an anti-join probe on `message_lead_created`);
- narrow views (needs a human, mine) start from those few leads and order them by their latest
  message (one probe per lead on `message_lead_created`).
"unread" means the customer wrote last: nobody has answered yet.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Q, Subquery

from crm.models import Lead, User
from engage.messaging.models import Message

VIEWS = ("all", "needs_human", "mine", "unassigned", "unread", "ai")
PAGE_SIZE = 25


@dataclass(frozen=True)
class InboxRow:
    lead: Lead
    last_message: Message


@dataclass(frozen=True)
class InboxPage:
    rows: list[InboxRow]
    next_cursor: str | None


def cursor_encode(*, created_at: datetime, message_id: int) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{message_id}".encode()).decode()


def cursor_decode(cursor: str) -> tuple[datetime, int]:
    """The (time, id) a cursor stands for; a ValidationError for anything else."""
    try:
        created_at, message_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        moment = datetime.fromisoformat(created_at)
        if moment.tzinfo is None:
            raise ValueError("naive time")
        return moment, int(message_id)
    except (ValueError, UnicodeError, binascii.Error) as error:
        raise ValidationError({"cursor": "Not a cursor of this inbox."}) from error


def _before(cursor: str | None, prefix: str = "") -> Q:
    if not cursor:
        return Q()
    created_at, message_id = cursor_decode(cursor)
    return Q(**{f"{prefix}created_at__lt": created_at}) | Q(
        **{f"{prefix}created_at": created_at, f"{prefix}id__lt": message_id}
    )


def inbox_page(
    *, company_ids: list[int] | None, user: User, view: str = "all", channel: str = "", cursor: str | None = None,
    limit: int = PAGE_SIZE,
) -> InboxPage:
    """One page of the inbox for `user` over `company_ids` (None: every company, for a superuser)."""
    if view not in VIEWS:
        raise ValidationError({"view": f"One of {', '.join(VIEWS)}."})
    if view in ("needs_human", "mine"):
        rows = _narrow_rows(company_ids=company_ids, user=user, view=view, channel=channel, cursor=cursor, limit=limit)
    else:
        rows = _broad_rows(company_ids=company_ids, user=user, view=view, channel=channel, cursor=cursor, limit=limit)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1].last_message
        next_cursor = cursor_encode(created_at=last.created_at, message_id=last.pk)
    return InboxPage(rows=rows, next_cursor=next_cursor)


def _newer_on_same_lead():
    newer = Q(created_at__gt=OuterRef("created_at")) | Q(created_at=OuterRef("created_at"), id__gt=OuterRef("id"))
    return Message.objects.filter(newer, lead_id=OuterRef("lead_id"))


def _lead_filter(view: str, user: User, prefix: str) -> Q:
    condition = Q(**{f"{prefix}status": Lead.Status.OPEN})
    if view == "unassigned":
        condition &= Q(**{f"{prefix}owner__isnull": True})
    elif view == "ai":
        condition &= Q(**{f"{prefix}is_ai_paused": False})
    elif view == "needs_human":
        condition &= Q(**{f"{prefix}handoff_requested_at__isnull": False})
    elif view == "mine":
        condition &= Q(**{f"{prefix}owner": user})
    return condition


def _broad_rows(*, company_ids, user, view, channel, cursor, limit) -> list[InboxRow]:
    messages = Message.objects.filter(_lead_filter(view, user, "lead__"), _before(cursor), lead__isnull=False)
    if company_ids is not None:
        messages = messages.filter(company_id__in=company_ids)
    if channel:
        messages = messages.filter(channel=channel)
    if view == "unread":
        messages = messages.filter(direction=Message.Direction.INBOUND)
    messages = (
        messages.filter(~Exists(_newer_on_same_lead()))
        .select_related("lead__contact", "lead__stage", "lead__owner", "lead__company")
        .defer("provider_response", "metadata")
        .order_by("-created_at", "-id")[: limit + 1]
    )
    return [InboxRow(lead=message.lead, last_message=message) for message in messages]


def _narrow_rows(*, company_ids, user, view, channel, cursor, limit) -> list[InboxRow]:
    leads = Lead.objects.filter(_lead_filter(view, user, ""))
    if company_ids is not None:
        leads = leads.filter(company_id__in=company_ids)
    if channel:
        leads = leads.filter(channel=channel)
    latest = Message.objects.filter(lead_id=OuterRef("pk")).order_by("-created_at", "-id")
    leads = leads.annotate(
        last_message_id=Subquery(latest.values("id")[:1]), last_message_at=Subquery(latest.values("created_at")[:1])
    ).filter(last_message_id__isnull=False)
    if cursor:
        created_at, message_id = cursor_decode(cursor)
        leads = leads.filter(
            Q(last_message_at__lt=created_at) | Q(last_message_at=created_at, last_message_id__lt=message_id)
        )
    leads = list(
        leads.select_related("contact", "stage", "owner", "company").order_by("-last_message_at", "-last_message_id")[
            : limit + 1
        ]
    )
    messages = Message.objects.defer("provider_response", "metadata").in_bulk([lead.last_message_id for lead in leads])
    return [InboxRow(lead=lead, last_message=messages[lead.last_message_id]) for lead in leads]


def lead_messages_after(*, lead: Lead, after_id: int = 0, limit: int = 200) -> list[Message]:
    """The lead's messages newer than message `after_id` (all of the latest `limit` when 0), oldest first."""
    messages = Message.objects.filter(lead=lead).defer("provider_response").select_related("job")
    if after_id:
        messages = messages.filter(id__gt=after_id)
    return list(reversed(messages.order_by("-created_at", "-id")[:limit]))
