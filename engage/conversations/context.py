"""What the AI needs to speak on a lead's behalf: whether it may, and the conversation so far."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Prefetch

from crm.models import Lead
from engage.ai.knowledge import knowledge_search
from engage.ai.models import AIConfig, AISession
from engage.ai.safety_context import SafetyContext
from engage.conversations.rich_inbound import media_describe
from engage.messaging.models import Message, MessageAttachment

RECENT_MESSAGES = 20
LOCALE_NAMES = {"bn": "Bengali", "en": "English"}


def lead_reply_skip_reason(*, lead: Lead, channel: str, config: AIConfig | None = None) -> str | None:
    """Why the AI must not message this lead now (closed, opted out, human hand-off), or None."""
    if lead.status != Lead.Status.OPEN:
        return f"lead_{lead.status}"
    if not lead.contact.is_consented(channel):
        return "opted_out"
    if lead.is_ai_paused:
        return "handoff"
    if config is not None and not config.is_reply_enabled:
        return "replies_disabled"
    return None


def conversation_messages(*, lead: Lead, limit: int = RECENT_MESSAGES) -> list[dict[str, str]]:
    """The lead's recent messages as chat turns, oldest first (inbound = user, outbound = assistant).

    A photo, voice note or location reaches the model as a description of it ("The customer sent a
    photo: 'is this the leak?'"); a tapped button as its title and id.
    """
    rows = list(
        Message.objects.filter(lead=lead)
        .exclude(status=Message.Status.FAILED)
        .order_by("-created_at", "-id")
        .values_list("direction", "body", "media_type", "button_payload", "metadata")[:limit]
    )
    return [
        {
            "role": "user" if direction == Message.Direction.INBOUND else "assistant",
            "content": _turn_text(body=body, media_type=media_type, button_payload=button_payload, metadata=metadata),
        }
        for direction, body, media_type, button_payload, metadata in reversed(rows)
    ]


def _turn_text(*, body: str, media_type: str, button_payload: str, metadata: dict | None) -> str:
    if media_type:
        return media_describe(media_type=media_type, caption=(metadata or {}).get("caption", ""), metadata=metadata)
    if button_payload:
        return f"{body} (the customer tapped this button; its id is {button_payload})"
    return body


@dataclass(frozen=True)
class SystemPrompt:
    """The system message, and its parts the safety filter needs: the instructions (repeating them is a
    prompt leak) and the knowledge passages (the facts whose prices and promises the answer may repeat)."""

    text: str
    instructions: str
    facts: str

    def safety_context(self) -> SafetyContext:
        return SafetyContext(instructions=self.instructions, facts=self.facts)


def system_prompt_parts(
    *, lead: Lead, config: AIConfig, query_text: str, instruction: str = "", prompt: str | None = None,
    has_knowledge: bool | None = None,
) -> SystemPrompt:
    """The company's system prompt (or `prompt`: an experiment arm's), the best knowledge passages for
    `query_text`, and an instruction. `has_knowledge`: whether the company has active documents, when the
    caller read it with the lead (False: no search)."""
    parts = [(config.system_prompt if prompt is None else prompt).strip()]
    locale = lead.contact.locale
    parts.append(f"Write in {LOCALE_NAMES.get(locale, locale)}. The customer's name is {lead.contact.name or 'unknown'}.")
    is_searched = query_text and has_knowledge is not False
    documents = knowledge_search(company=lead.company, text=query_text, limit=3) if is_searched else []
    passages = "\n\n".join(f"[{document.title}]\n{document.body.strip()}" for document in documents)
    instructions = [*parts, instruction]
    if documents:
        parts.append(f"Facts from the company's knowledge base (use only these):\n{passages}")
    if instruction:
        parts.append(instruction)
    return SystemPrompt(
        text="\n\n".join(part for part in parts if part),
        instructions="\n\n".join(part for part in instructions if part),
        facts=passages,
    )


def system_prompt_build(*, lead: Lead, config: AIConfig, query_text: str, instruction: str = "") -> str:
    """The company's system prompt, the best knowledge passages for `query_text`, and an instruction."""
    return system_prompt_parts(lead=lead, config=config, query_text=query_text, instruction=instruction).text


THREAD_LIMIT = 100


def lead_thread(*, lead: Lead, limit: int = THREAD_LIMIT) -> list[Message]:
    """The lead's latest messages, oldest first, each with its AI sessions (`message.ai_sessions.all`)."""
    sessions = AISession.objects.only("id", "message_id", "outcome", "error", "latency_ms", "tokens_in", "tokens_out")
    messages = (
        Message.objects.filter(lead=lead)
        .select_related("template_version__template")
        .prefetch_related(
            Prefetch("ai_sessions", queryset=sessions),
            Prefetch("attachments", queryset=MessageAttachment.objects.order_by("position")),
        )
        .order_by("-created_at", "-id")[:limit]
    )
    return list(reversed(messages))
