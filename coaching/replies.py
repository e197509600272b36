"""The reply path: a worker's answer to their coaching lands on it (engage asks us before its sales AI replies), its
reason is recognised (traffic, the customer moved the time, a schedule too tight), and a manager may accept it,
which excuses the bookings behind the coaching."""

from __future__ import annotations

import datetime as dt
import re

from django.db import transaction
from django.utils import timezone

from coaching.models import BookingPunctuality, CoachingRecipient
from coaching.punctuality import booking_excuse
from crm.services import event_record
from engage.api import Message

REPLY_WINDOW_DAYS = 14
Reason = CoachingRecipient.ReplyReason
REASON_PATTERNS = (
    (Reason.CUSTOMER_MOVED, re.compile(
        r"গ্রাহক.{0,20}(?:সময়|বদল|পরিবর্তন|পিছি|এগি)|সময়.{0,10}বদল|customer.{0,30}(?:moved|changed|resched|late|asked)"
        r"|(?:moved|changed) the time", re.IGNORECASE)),
    (Reason.TRAFFIC, re.compile(r"জ্যাম|যানজট|রাস্তা|traffic|\bjam\b|road", re.IGNORECASE)),
    (Reason.SCHEDULE_TIGHT, re.compile(
        r"ঠাসা|পরপর|একটার পর একটা|সময় কম|schedule|tight|back[ -]to[ -]back|too many", re.IGNORECASE)),
)


def reply_reason(text: str) -> str:
    for reason, pattern in REASON_PATTERNS:
        if pattern.search(text or ""):
            return reason
    return Reason.OTHER


def coaching_reply_claim(*, contact, message_id) -> bool:
    """engage's inbound claim hook: a worker's message within REPLY_WINDOW_DAYS of their coaching is its reply.
    `contact.worker` comes loaded: no query for a writer who is no worker."""
    worker = getattr(contact, "worker", None) if contact is not None else None
    if worker is None:
        return False
    message = Message.objects.filter(pk=message_id, contact=contact).only("pk", "body").first()
    if message is None:
        return False
    since = timezone.now() - dt.timedelta(days=REPLY_WINDOW_DAYS)
    with transaction.atomic():
        recipient = (CoachingRecipient.objects.select_for_update()
                     .filter(worker=worker, status=CoachingRecipient.Status.COACHED, created_at__gte=since)
                     .order_by("-created_at").first())
        if recipient is None:
            return False
        text = message.body
        recipient.reply_text = (f"{recipient.reply_text}\n{text}" if recipient.reply_text else text)[:4000]
        if not recipient.reply_reason or recipient.reply_reason == Reason.OTHER:
            recipient.reply_reason = reply_reason(text)
        recipient.replied_at = timezone.now()
        recipient.save(update_fields=["reply_text", "reply_reason", "replied_at"])
        event_record(company=worker.company, type="coaching.replied", contact=contact, target=worker,
                     source="coachnova", payload={"recipient_id": recipient.pk, "run_id": recipient.run_id,
                                                  "reason": recipient.reply_reason, "message_id": message.pk})
    return True


def coaching_reply_accept(*, recipient: CoachingRecipient, actor=None) -> int:
    """A manager accepts the worker's reason: every booking behind this coaching is excused; returns how many."""
    reason = recipient.get_reply_reason_display() if recipient.reply_reason else "accepted by a manager"
    excused = 0
    with transaction.atomic():
        for row in BookingPunctuality.objects.filter(pk__in=recipient.booking_ids, is_excused=False):
            booking_excuse(booking_punctuality=row, reason=reason, actor=actor)
            excused += 1
        CoachingRecipient.objects.filter(pk=recipient.pk).update(accepted_at=timezone.now(), accepted_by=actor)
        worker = recipient.worker
        event_record(company=worker.company, type="coaching.reason_accepted", contact=worker.contact, target=worker,
                     actor=actor, source="admin", payload={"recipient_id": recipient.pk, "excused": excused})
    return excused
