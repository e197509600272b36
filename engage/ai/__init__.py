"""The AI both products share: generation over the openai SDK, safety, templates, knowledge.

    from engage.ai import ai_generate, ai_generate_many, GenerationRequest
    result = ai_generate(company=..., agent_type="sales", purpose="reply", messages=[...],
                         message_type="reply", locale="bn", channel="sms", contact=..., lead=...)
    result.text      # the model's text if it passed the safety filter, else the approved fallback
    result.outcome   # ok / error / fallback / rejected (AISession.Outcome); result.session is the record
    result.is_sendable  # False when not even the approved fallback passes the filter: send nothing

A message with its own link passes `link=` (SmartEngage's signed booking link): the filter judges
the text with the link in (`link_insert`), as it is sent.

See docs/ai.md.
"""

from engage.ai.client import (
    GenerationRequest,
    GenerationResult,
    ai_config_for,
    ai_fallbacks,
    ai_generate,
    ai_generate_many,
)
from engage.ai.knowledge import knowledge_search
from engage.ai.safety import (
    LINK_PLACEHOLDER,
    SafetyPolicy,
    fallback_text_for,
    link_insert,
    safety_check,
    safety_policy_for,
    sms_segments,
)
from engage.ai.templates import (
    TEMPLATE_VARIABLES,
    template_latest_approved,
    template_render,
    template_variables_check,
)

__all__ = [
    "LINK_PLACEHOLDER",
    "TEMPLATE_VARIABLES",
    "GenerationRequest",
    "GenerationResult",
    "SafetyPolicy",
    "ai_config_for",
    "ai_fallbacks",
    "ai_generate",
    "ai_generate_many",
    "fallback_text_for",
    "knowledge_search",
    "link_insert",
    "safety_check",
    "safety_policy_for",
    "sms_segments",
    "template_latest_approved",
    "template_render",
    "template_variables_check",
]
