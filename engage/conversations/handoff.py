"""Human hand-off: a contact asks for a person, ops take the conversation over and hand it back."""

from __future__ import annotations

import functools
import re
import time
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.utils import timezone
from django.utils.translation import gettext_noop

from crm.models import Company, Lead, User
from crm.services import event_record
from engage.ai.models import DEFAULT_HANDOFF_KEYWORDS, AIConfig
from engage.ledger.models import Job
from engage.ledger.services import job_enqueue

MANUAL_REPLY_MAX_LENGTH = 4096


def handoff_is_requested(*, text: str, keywords: list[str]) -> bool:
    """Whether `text` asks for a human: a keyword as a whole word (any script), case-insensitive."""
    pattern = _keywords_pattern(tuple(keywords))
    return pattern is not None and pattern.search(text.casefold()) is not None


@functools.lru_cache(maxsize=64)
def _keywords_pattern(keywords: tuple[str, ...]) -> re.Pattern | None:
    """One compiled alternation of the keywords as whole words (built once per keyword list: this
    runs on every inbound message)."""
    folded = sorted({keyword.strip().casefold() for keyword in keywords} - {""}, key=len, reverse=True)
    if not folded:
        return None
    return re.compile(rf"(?<!\w)(?:{'|'.join(re.escape(keyword) for keyword in folded)})(?!\w)")


# Per-process cache of each company's hand-off keywords: {company_id: (expires_at monotonic, keywords)}.
# Read on every inbound message; an AIConfig saved in this process clears it at once, one saved
# elsewhere (another web worker) is seen within HANDOFF_KEYWORDS_CACHE_SECONDS (default 30).
_keywords_cache: dict[int, tuple[float, list[str]]] = {}


def _handoff_keywords_cache_clear(**kwargs) -> None:
    _keywords_cache.clear()


def handoff_keywords_cache_connect() -> None:
    """An AIConfig saved or deleted in this process clears the cache at once (EngageConfig.ready)."""
    post_save.connect(_handoff_keywords_cache_clear, sender=AIConfig, dispatch_uid="handoff_keywords_cache_clear_save")
    post_delete.connect(
        _handoff_keywords_cache_clear, sender=AIConfig, dispatch_uid="handoff_keywords_cache_clear_delete"
    )


def handoff_keywords_for(*, company_id: int) -> list[str]:
    """The company's hand-off keywords (the defaults without an AIConfig); cached per process for a few seconds."""
    now = time.monotonic()
    cached = _keywords_cache.get(company_id)
    if cached is not None and cached[0] > now:
        return cached[1]
    # One indexed read, no AIConfig row created.
    keywords = AIConfig.objects.filter(company_id=company_id).values_list("handoff_keywords", flat=True).first()
    keywords = list(DEFAULT_HANDOFF_KEYWORDS if keywords is None else keywords or [])
    ttl = float(settings.HANDOFF_KEYWORDS_CACHE_SECONDS)
    if ttl > 0:
        _keywords_cache[company_id] = (now + ttl, keywords)
    return keywords


def lead_flag_handoff_if_requested(*, company: Company, lead_id: int, text: str) -> bool:
    """In the capture flow: flag the lead for hand-off (and pause the AI) if the message asks for a human."""
    if not handoff_is_requested(text=text, keywords=handoff_keywords_for(company_id=company.pk)):
        return False
    return lead_flag_handoff(company=company, lead_id=lead_id, payload={"text": text[:200]})


def lead_flag_handoff(*, company: Company, lead_id: int, payload: dict) -> bool:
    """Flag the lead for a person to take over and pause its AI (once: False when it already was)."""
    now = timezone.now()
    with transaction.atomic():
        flagged = Lead.objects.filter(pk=lead_id, company=company, handoff_requested_at__isnull=True).update(
            handoff_requested_at=now, is_ai_paused=True, updated_at=now
        )
        if flagged:
            lead = Lead.objects.select_related("contact").get(pk=lead_id)
            event_record(
                company=company, type="handoff.requested", contact=lead.contact, target=lead, payload=payload,
                source="engage",
            )
    return bool(flagged)


@transaction.atomic
def lead_take_over(*, lead: Lead, actor: User | None) -> Lead:
    """A person takes the conversation: the AI stops replying to this lead."""
    lead = Lead.objects.select_for_update().select_related("contact", "company").get(pk=lead.pk)
    if not lead.is_ai_paused:
        lead.is_ai_paused = True
        lead.save(update_fields=["is_ai_paused", "updated_at"])
        event_record(company=lead.company, type="handoff.taken_over", contact=lead.contact, target=lead,
                     source="admin", actor=actor)
    return lead


@transaction.atomic
def lead_hand_back(*, lead: Lead, actor: User | None) -> Lead:
    """Give the conversation back to the AI and clear the hand-off request."""
    lead = Lead.objects.select_for_update().select_related("contact", "company").get(pk=lead.pk)
    if lead.is_ai_paused or lead.handoff_requested_at:
        lead.is_ai_paused = False
        lead.handoff_requested_at = None
        lead.save(update_fields=["is_ai_paused", "handoff_requested_at", "updated_at"])
        event_record(company=lead.company, type="handoff.handed_back", contact=lead.contact, target=lead,
                     source="admin", actor=actor)
    return lead


@transaction.atomic
def lead_manual_reply(*, lead: Lead, actor: User | None, body: str) -> Job:
    """Queue a reply typed by a person, sent on the lead's channel as agent `manual`; takes the conversation over."""
    body = (body or "").strip()
    if not body:
        raise ValidationError({"body": gettext_noop("Type a reply.")})
    if len(body) > MANUAL_REPLY_MAX_LENGTH:  # English here; the console translates (shokti.admin.console_text)
        raise ValidationError({"body": ValidationError(gettext_noop("At most %(limit)s characters."),
                                                       params={"limit": MANUAL_REPLY_MAX_LENGTH})})
    lead = lead_take_over(lead=lead, actor=actor)
    if not lead.contact.is_consented(lead.channel):
        raise ValidationError({"body": ValidationError(gettext_noop("The contact has opted out of %(channel)s."),
                                                       params={"channel": lead.channel})})
    return job_enqueue(
        company=lead.company,
        task_name="manual_reply",
        payload={"lead_id": lead.pk, "body": body, "actor_id": actor.pk if actor else None},
        idempotency_key=f"manual_reply:{lead.pk}:{uuid.uuid4().hex}",
        priority=100,
    )


@transaction.atomic
def lead_assign(*, lead: Lead, owner: User | None, actor: User | None) -> Lead:
    """Give the lead to `owner` (a member of its company), or to nobody; records `lead.assigned`."""
    lead = Lead.objects.select_for_update().select_related("contact", "company").get(pk=lead.pk)
    if owner is not None and not owner.is_superuser and not owner.memberships.filter(company_id=lead.company_id).exists():
        raise ValidationError({"owner": "That person does not work for this company."})
    if lead.owner_id != (owner.pk if owner else None):
        lead.owner = owner
        lead.save(update_fields=["owner", "updated_at"])
        event_record(company=lead.company, type="lead.assigned", contact=lead.contact, target=lead, source="admin",
                     actor=actor, payload={"owner_id": owner.pk if owner else None,
                                           "owner": (owner.full_name or owner.email) if owner else ""})
    return lead
