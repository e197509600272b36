"""The AI both products share: generation over the openai SDK (`client`), its settings (`config`), the safety
filter and fallbacks (`safety`), the knowledge base (`knowledge`). Prompt templates live in engage.prompts.

    from engage.ai.client import ai_generate, ai_generate_many, GenerationRequest
    result = ai_generate(company=..., agent_type="sales", purpose="reply", messages=[...],
                         message_type="reply", locale="bn", channel="sms", contact=..., lead=...)
    result.text      # the model's text if it passed the safety filter, else the approved fallback
    result.outcome   # ok / error / fallback / rejected (AISession.Outcome); result.session is the record
    result.is_sendable  # False when not even the approved fallback passes the filter: send nothing

A message with its own link passes `link=` (SmartEngage's signed booking link): the filter judges
the text with the link in (`link_insert`), as it is sent. `safety_context=SafetyContext(...)` says
what the text may claim (the service's price, the campaign's code, knowledge passages); every
reason the filter finds is on `result.safety["reasons"]` and `AISession.safety`.
`engage.ai.config.allowed_link_hosts(company=...)` is the one list of hosts a company's messages may link to.

See docs/ai.md.
"""
