"""The AI both products share: generation over the openai SDK, safety, templates, knowledge.

    from engage.ai import ai_generate, ai_generate_many, GenerationRequest
    result = ai_generate(company=..., agent_type="sales", purpose="reply", messages=[...],
                         message_type="reply", locale="bn", channel="sms", contact=..., lead=...)
    result.text      # the model's text if it passed the safety filter, else the approved fallback
    result.outcome   # ok / error / fallback / rejected (AISession.Outcome); result.session is the record
    result.is_sendable  # False when not even the approved fallback passes the filter: send nothing

A message with its own link passes `link=` (SmartEngage's signed booking link): the filter judges
the text with the link in (`link_insert`), as it is sent. `safety_context=SafetyContext(...)` says
what the text may claim (the service's price, the campaign's code, knowledge passages); every
reason the filter finds is on `result.safety["reasons"]` and `AISession.safety`.
`allowed_link_hosts(company=...)` is the one list of hosts a company's messages may link to.

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
from engage.ai.links import allowed_link_hosts
from engage.ai.reasons import REASON_CODES, SafetyReason
from engage.ai.safety import (
    LINK_PLACEHOLDER,
    SafetyPolicy,
    SafetyVerdict,
    fallback_render,
    fallback_text_for,
    link_insert,
    safety_check,
    safety_policy_for,
    sms_segments,
)
from engage.ai.safety_context import SafetyContext
from engage.ai.templates import (
    TEMPLATE_VARIABLES,
    template_latest_approved,
    template_render,
    template_variables_check,
)

__all__ = [
    "LINK_PLACEHOLDER",
    "REASON_CODES",
    "TEMPLATE_VARIABLES",
    "GenerationRequest",
    "GenerationResult",
    "SafetyContext",
    "SafetyPolicy",
    "SafetyReason",
    "SafetyVerdict",
    "ai_config_for",
    "ai_fallbacks",
    "ai_generate",
    "ai_generate_many",
    "allowed_link_hosts",
    "fallback_render",
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
