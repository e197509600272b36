"""The AI both products share: generation over the openai SDK, safety, templates, knowledge.

    from engage.ai import ai_generate, ai_generate_many, GenerationRequest
    result = ai_generate(company=..., agent_type="sales", purpose="reply", messages=[...],
                         message_type="reply", locale="bn", channel="sms", contact=..., lead=...)
    result.text      # the model's text if it passed the safety filter, else the approved fallback
    result.outcome   # ok / error / fallback / rejected (AISession.Outcome); result.session is the record

See docs/ai.md.
"""

from engage.ai.client import (
    GenerationRequest,
    GenerationResult,
    ai_config_for,
    ai_generate,
    ai_generate_many,
)
from engage.ai.knowledge import knowledge_search
from engage.ai.safety import (
    SafetyPolicy,
    fallback_text_for,
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
    "TEMPLATE_VARIABLES",
    "GenerationRequest",
    "GenerationResult",
    "SafetyPolicy",
    "ai_config_for",
    "ai_generate",
    "ai_generate_many",
    "fallback_text_for",
    "knowledge_search",
    "safety_check",
    "safety_policy_for",
    "sms_segments",
    "template_latest_approved",
    "template_render",
    "template_variables_check",
]
