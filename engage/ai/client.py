"""The one AI client both products use: the official `openai` SDK, recorded in AISession.

A generation has three parts so bulk work can run the slow middle one concurrently:
prepare (database: config, engagement policy, safety policy, fallback text), call (HTTP only,
thread-safe), finish (database: safety filter, AISession row). `ai_generate` does all three;
`ai_generate_many` prepares and finishes in the calling thread and calls the model from a
bounded thread pool, so worker threads never touch the database. Campaign generation
(`bulk=True`) uses one process-wide pool of AI_BULK_MAX_CONCURRENCY threads, kept between
batches (no thread starts per batch), larger than the interactive bound AI_MAX_CONCURRENCY; the
HTTP client keeps as many connections open so every call in flight has one.

Time budget: one deadline (AIConfig.time_budget_seconds, else AI_TIME_BUDGET_SECONDS) covers all
the model work of a message: the call and its retries (ours, so the deadline holds: each attempt's
timeout is the time left, retries wait their back-off only when it fits), then the moderation
endpoint and the tone judge. A model that hangs holds a worker no longer than the budget; on expiry
the approved fallback goes out and the AISession says why (`safety.budget`).

The safety filter judges the text that is sent. A request that carries its own link (`link`:
SmartEngage's signed booking link) gets it put in first (`link_insert`), and the filter judges
the model's text with the link; when that is rejected (or the model failed), the approved fallback
with the link is judged as well. When neither passes, `is_sendable` is False: a configuration
problem (say the fallback with the link is longer than the SMS limit), never a truncated link.
With the engagement policy's `ai_generation` off the model is not called (outcome fallback, for
every product); with its `safety_filter` off nothing is judged.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import httpx2
import openai
from django.conf import settings

from crm.models import Company, Contact, Lead
from engage.ai.config import ai_config_for
from engage.ai.models import AIConfig, AISession
from engage.ai.moderation import ModerationResult, moderation_call
from engage.ai.safety import (
    LINK_PLACEHOLDER,
    SafetyPolicy,
    SafetyVerdict,
    fallback_render,
    fallback_text_for,
    link_insert,
    safety_check,
    safety_policy_for,
)
from engage.ai.safety_context import SafetyContext
from engage.ai.sdk import completion_text, completion_usage, sdk_post
from engage.ai.tone import TONE_JUDGE_TYPES, ToneVerdict, tone_judge_call
from engage.policy.services import policy_for
from shokti.db import connection_release
from shokti.metrics import count

logger = logging.getLogger(__name__)


NO_API_KEY_REASON = "no API key configured"


SAFETY_FILTER_OFF_REASON = "safety filter off by the engagement policy"


AI_GENERATION_OFF_REASON = "AI generation off by the engagement policy"


FALLBACK_REJECTED_REASON = "Nothing sendable: the approved fallback fails the safety filter too"
RETRYABLE_STATUSES = frozenset({408, 409, 429})


_sdk_client_lock = threading.Lock()


def _sdk_client(
    base_url: str | None, api_key: str, timeout: float, max_retries: int, max_connections: int = 100
) -> openai.OpenAI:
    """The process's SDK client for this endpoint. lru_cache builds outside any lock: a campaign's
    first batch (hundreds of threads on a cold cache) built ~90 clients at ~65 ms of CPU each."""
    with _sdk_client_lock:
        return _sdk_client_build(base_url, api_key, timeout, max_retries, max_connections)


@functools.lru_cache(maxsize=32)
def _sdk_client_build(
    base_url: str | None, api_key: str, timeout: float, max_retries: int, max_connections: int
) -> openai.OpenAI:
    # One client (and its connection pool) per endpoint; the SDK client is thread-safe. The SDK's
    # default pool keeps only 100 connections alive: with more calls in flight the rest would be
    # reopened on every call, so the pool keeps as many as the bulk pool has threads.
    limits = httpx2.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    return openai.OpenAI(
        base_url=base_url, api_key=api_key, timeout=timeout, max_retries=max_retries,
        http_client=openai.DefaultHttpxClient(limits=limits),
    )


def _max_in_flight() -> int:
    return max(100, int(settings.AI_MAX_CONCURRENCY), int(getattr(settings, "AI_BULK_MAX_CONCURRENCY", 0)))


_bulk_pool_lock = threading.Lock()


_bulk_pools: dict[int, ThreadPoolExecutor] = {}


def _bulk_pool() -> ThreadPoolExecutor:
    """The process-wide pool for campaign generation (threads start once, on first use, not per batch)."""
    size = max(1, int(getattr(settings, "AI_BULK_MAX_CONCURRENCY", settings.AI_MAX_CONCURRENCY)))
    with _bulk_pool_lock:
        pool = _bulk_pools.get(size)
        if pool is None:
            pool = _bulk_pools[size] = ThreadPoolExecutor(max_workers=size, thread_name_prefix="ai-bulk")
        return pool


@dataclass
class GenerationRequest:
    """What to generate. `message_type=None` means internal text (a summary): no safety filter, no fallback."""

    company: Company
    agent_type: str
    purpose: str
    messages: list[dict[str, str]]
    message_type: str | None = "reply"
    locale: str = "bn"
    channel: str = "console"
    contact: Contact | None = None
    lead: Lead | None = None
    correlation_id: uuid.UUID | None = None
    max_tokens: int | None = None
    # The message's own link (SmartEngage's signed booking link): put where the model left
    # LINK_PLACEHOLDER (else appended) before the filter judges the text, and required in it.
    # "" = a message that could carry one but does not this time (deep links off: the placeholder is
    # removed, no link required); None = a message without one (AIConfig.required_link applies).
    link: str | None = None
    # What the text may claim and must not repeat (engage.ai.safety_context): the service's price, the
    # campaign's promo code, the facts given (knowledge passages), the prompt's instructions. The
    # recipient (from `contact`), the message type and the brand are filled in by the client; without
    # `instructions`, the request's system messages are the instructions.
    safety_context: SafetyContext | None = None
    # Variables the approved fallback may use ({{ customer_first_name }}, {{ service_name_bn }} ...),
    # besides company_name and the contact's names, which are always there.
    fallback_context: dict[str, Any] | None = None


@dataclass
class _Prepared:
    request: GenerationRequest
    model: str
    temperature: float
    max_tokens: int
    api_key: str
    base_url: str | None
    policy: SafetyPolicy | None
    fallback: str
    # The company's engagement policy switched the safety filter off: outgoing text goes unchecked.
    is_filter_off: bool = False
    # ... or AI generation off: the model is not called, the approved fallback is used.
    is_generation_off: bool = False
    context: SafetyContext = field(default_factory=SafetyContext)
    time_budget: float = 15.0
    is_moderation_enabled: bool = False
    is_tone_judge_enabled: bool = False


@dataclass
class _CallOutcome:
    text: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    latency_ms: int = 0
    error: str = ""
    is_called: bool = True
    attempts: int = 0
    is_budget_spent: bool = False
    moderation: ModerationResult | None = None
    tone: ToneVerdict | None = None


@dataclass
class GenerationResult:
    text: str
    outcome: str
    # None from `ai_fallbacks` (nothing generated, nothing recorded).
    session: AISession | None
    reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    # False when neither the model's text nor the approved fallback passes the safety filter: `text`
    # (the fallback) must not be sent, `reason` says why (both verdicts).
    is_sendable: bool = True
    # Every reason (code, message) behind the outcome, and the moderation / tone / budget records
    # (the same dict as AISession.safety).
    safety: dict[str, Any] = field(default_factory=dict)

    @property
    def is_fallback(self) -> bool:
        return self.outcome != AISession.Outcome.OK


def _safety_context(request: GenerationRequest) -> SafetyContext:
    """The request's safety context with the recipient, message type, brand and instructions filled in."""
    context = request.safety_context or SafetyContext()
    contact = request.contact
    instructions = context.instructions
    if not instructions:
        instructions = "\n".join(str(message.get("content", "")) for message in request.messages
                                 if message.get("role") == "system")
    return replace(
        context,
        recipient_name=context.recipient_name or (contact.name if contact else ""),
        recipient_phone=context.recipient_phone or (contact.phone if contact else ""),
        recipient_email=context.recipient_email or (contact.email if contact else ""),
        message_type=context.message_type or (request.message_type or ""),
        brand=context.brand or request.company.name,
        instructions=instructions,
    )


def _prepare(request: GenerationRequest, memo: dict | None = None) -> _Prepared:
    """Config, safety policy and fallback of the request; `memo` shares them across one bulk call's requests."""
    memo = {} if memo is None else memo
    company_id = request.company.pk
    config = memo.get(("config", company_id))
    if config is None:
        config = memo[("config", company_id)] = ai_config_for(company=request.company)
    engagement = memo.get(("engagement", company_id))
    if engagement is None:
        engagement = memo[("engagement", company_id)] = policy_for(company=request.company)
    internal = request.message_type is None
    policy = fallback = None
    is_filtered = False
    if not internal:
        is_filtered = engagement.is_safety_filter_enabled
        policy = memo.get(("policy", company_id)) if is_filtered else None
        if is_filtered and policy is None:
            policy = memo[("policy", company_id)] = safety_policy_for(company=request.company, config=config)
        key = ("fallback", company_id, request.message_type, request.locale)
        fallback = memo.get(key)
        if fallback is None:
            fallback = memo[key] = fallback_text_for(
                company=request.company, message_type=request.message_type, locale=request.locale
            )
        fallback = fallback_render(
            body=fallback, company=request.company, contact=request.contact, context=request.fallback_context
        )
    api_key = config.api_key or settings.OPENAI_API_KEY or ""
    return _Prepared(
        request=request,
        model=config.model or settings.OPENAI_MODEL,
        temperature=config.temperature,
        max_tokens=request.max_tokens or config.max_tokens,
        api_key=api_key,
        base_url=config.api_base_url or settings.OPENAI_BASE_URL or None,
        policy=policy,
        fallback=fallback or "",
        is_filter_off=not internal and not is_filtered,
        is_generation_off=not engagement.is_ai_generation_enabled,
        context=_safety_context(request) if not internal else SafetyContext(),
        time_budget=float(config.time_budget_seconds or getattr(settings, "AI_TIME_BUDGET_SECONDS", 15.0)),
        is_moderation_enabled=bool(policy is not None and api_key and config.is_moderation_enabled),
        is_tone_judge_enabled=bool(
            policy is not None and api_key and config.is_tone_judge_enabled
            and request.message_type in TONE_JUDGE_TYPES
        ),
    )


def _is_retryable(error: openai.OpenAIError) -> bool:
    if isinstance(error, openai.APIConnectionError):  # the connection failed or timed out
        return True
    status = getattr(error, "status_code", None)
    return isinstance(status, int) and (status in RETRYABLE_STATUSES or status >= 500)


def _backoff(error: openai.OpenAIError, attempt: int) -> float:
    """Seconds before the next attempt: what the server asks (retry-after-ms / retry-after), else 0.5 s doubling."""
    response = getattr(error, "response", None)
    headers = response.headers if response is not None else {}
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            value = float(headers.get(name, "")) * scale
        except (TypeError, ValueError):
            continue
        if 0 <= value <= 60:
            return value
    return min(8.0, 0.5 * 2**attempt) * (0.75 + random.random() / 2)


def _call(prepared: _Prepared) -> _CallOutcome:
    """The HTTP part: no database access here (it runs in pool threads). Everything within one deadline."""
    if prepared.is_generation_off:
        return _CallOutcome(is_called=False, error=AI_GENERATION_OFF_REASON)
    if not prepared.api_key:
        # The SDK would raise "Missing credentials": no key is the offline mode, not an error.
        return _CallOutcome(is_called=False, error=NO_API_KEY_REASON)
    client = _sdk_client(
        prepared.base_url, prepared.api_key, float(settings.OPENAI_TIMEOUT_SECONDS), 0, _max_in_flight(),
    )
    started = time.monotonic()
    deadline = started + prepared.time_budget
    attempts_allowed = 1 + max(0, int(settings.OPENAI_MAX_RETRIES))
    outcome = _CallOutcome()
    completion = None
    for attempt in range(attempts_allowed):
        remaining = deadline - time.monotonic()
        if remaining <= 0.05:
            outcome.is_budget_spent = True
            break
        outcome.attempts = attempt + 1
        try:
            completion = sdk_post(
                client, "/chat/completions",
                body={"model": prepared.model, "messages": prepared.request.messages,
                      "temperature": prepared.temperature, "max_tokens": prepared.max_tokens},
                timeout=min(float(settings.OPENAI_TIMEOUT_SECONDS), remaining),
                headers={"x-stainless-retry-count": str(attempt)},
            )
            break
        except openai.OpenAIError as error:
            outcome.error = f"{type(error).__name__}: {error}"
            if not _is_retryable(error) or attempt + 1 >= attempts_allowed:
                break
            pause = _backoff(error, attempt)
            if time.monotonic() + pause >= deadline:
                outcome.is_budget_spent = True
                break
            time.sleep(pause)
    outcome.latency_ms = int((time.monotonic() - started) * 1000)
    if completion is None:
        if outcome.is_budget_spent or time.monotonic() >= deadline - 0.05:
            outcome.is_budget_spent = True
            last = f" (last: {outcome.error})" if outcome.error else ""
            outcome.error = (f"Time budget of {prepared.time_budget:g} s spent after {outcome.attempts} attempt(s)"
                             f"{last}: the approved fallback was sent.")
        logger.warning("AI call failed after %s ms: %s", outcome.latency_ms, outcome.error)
        return outcome
    outcome.text = completion_text(completion).strip()
    outcome.tokens_in, outcome.tokens_out = completion_usage(completion)
    outcome.error = "" if outcome.text else "The model returned an empty answer."
    if outcome.text:
        _judge_by_model(prepared, client, outcome, deadline)
    return outcome


def _judge_by_model(prepared: _Prepared, client: openai.OpenAI, outcome: _CallOutcome, deadline: float) -> None:
    """The moderation endpoint and the tone judge on the model's text, in what is left of the budget."""
    draft = outcome.text.replace(LINK_PLACEHOLDER, " ")
    if prepared.is_moderation_enabled:
        remaining = deadline - time.monotonic()
        if remaining <= 0.05:
            outcome.moderation = ModerationResult(is_called=False, error="the time budget was spent")
            outcome.is_budget_spent = True
        else:
            outcome.moderation = moderation_call(
                client=client, model=settings.OPENAI_MODERATION_MODEL, text=draft, timeout=remaining
            )
    if prepared.is_tone_judge_enabled:
        remaining = deadline - time.monotonic()
        if remaining <= 0.05:
            outcome.tone = ToneVerdict(error="the time budget was spent")
        else:
            outcome.tone = tone_judge_call(client=client, model=prepared.model, text=draft,
                                           message_type=prepared.request.message_type or "", timeout=remaining)


def _verdict(prepared: _Prepared, text: str, *, draft: str | None = None) -> SafetyVerdict | None:
    """The safety filter's verdict on a final text; None when the filter does not apply."""
    if prepared.policy is None:
        return None
    request = prepared.request
    return safety_check(
        text=text,
        policy=prepared.policy,
        channel=request.channel,
        locale=request.locale,
        link=request.link,
        context=prepared.context,
        draft=draft,
    )


def _final(request: GenerationRequest, text: str) -> str:
    return text if request.link is None else link_insert(text=text, link=request.link)


@dataclass
class _Judgement:
    outcome: str
    reason: str
    text: str
    is_sendable: bool
    # What AISession.safety records: every reason of the model's text and the fallback, the
    # moderation endpoint's and the tone judge's answers, the time budget spent.
    safety: dict[str, Any] = field(default_factory=dict)


def _model_verdict(prepared: _Prepared, call: _CallOutcome, text: str) -> SafetyVerdict | None:
    """The offline filter on the final text plus the moderation endpoint and the tone judge's reasons."""
    verdict = _verdict(prepared, text, draft=call.text if prepared.request.link is not None else None)
    if verdict is None:
        return None
    extra = [*(call.moderation.reasons() if call.moderation else []), *(call.tone.reasons() if call.tone else [])]
    return SafetyVerdict.of([*verdict.reasons, *extra], verdict.details) if extra else verdict


def _judge(prepared: _Prepared, call: _CallOutcome) -> _Judgement:
    """The model's final text if the filter passes it, else the approved fallback's, which is judged too
    (no database access)."""
    request = prepared.request
    safety: dict[str, Any] = {}
    if call.is_called:
        safety["budget"] = {"seconds": prepared.time_budget, "attempts": call.attempts,
                            "spent_ms": call.latency_ms, "is_spent": call.is_budget_spent}
    if call.moderation is not None:
        safety["moderation"] = call.moderation.as_dict()
    if call.tone is not None:
        safety["tone"] = call.tone.as_dict()
    if not call.is_called:
        outcome, reason = AISession.Outcome.FALLBACK, call.error
    elif call.error:
        outcome, reason = AISession.Outcome.ERROR, call.error
    else:
        text = _final(request, call.text)
        verdict = _model_verdict(prepared, call, text)
        if verdict is None or verdict.is_ok:
            reason = SAFETY_FILTER_OFF_REASON if prepared.is_filter_off else ""
            return _Judgement(AISession.Outcome.OK, reason, text, True, {**safety, "reasons": []})
        outcome, reason = AISession.Outcome.REJECTED, verdict.reason or ""
        safety["reasons"] = [item.as_dict() for item in verdict.reasons]
    if request.message_type is None:  # internal text: no fallback, nothing to judge
        return _Judgement(outcome, reason, "", True, safety)
    fallback = _final(request, prepared.fallback)
    verdict = _verdict(prepared, fallback)
    if verdict is not None and not verdict.is_ok:
        safety["fallback_reasons"] = [item.as_dict() for item in verdict.reasons]
        return _Judgement(outcome, f"{reason} | {FALLBACK_REJECTED_REASON}: {verdict.reason}", fallback, False, safety)
    return _Judgement(outcome, reason, fallback, True, safety)


def _finish(prepared: _Prepared, call: _CallOutcome, *, save: bool = True) -> GenerationResult:
    """Filter, fall back and record; with save=False the AISession is built unsaved (the caller bulk-inserts)."""
    request = prepared.request
    judgement = _judge(prepared, call)
    session = AISession(
        company=request.company,
        agent_type=request.agent_type,
        purpose=request.purpose,
        prompt_messages=request.messages,
        model=prepared.model,
        response_text=call.text,
        final_text=judgement.text,
        tokens_in=call.tokens_in,
        tokens_out=call.tokens_out,
        latency_ms=call.latency_ms,
        outcome=judgement.outcome,
        error=judgement.reason,
        safety=judgement.safety,
        lead=request.lead,
        contact=request.contact,
        correlation_id=request.correlation_id,
    )
    if save:
        session.save(force_insert=True)
    count("ai_generations_total", agent_type=request.agent_type, outcome=judgement.outcome)
    return GenerationResult(text=judgement.text, outcome=judgement.outcome, session=session, reason=judgement.reason,
                            is_sendable=judgement.is_sendable, safety=judgement.safety)


def ai_fallbacks(*, requests: Sequence[GenerationRequest], reason: str) -> list[GenerationResult]:
    """The approved fallback of each request, with its link, judged by the same safety filter as a generation,
    without calling the model or recording an AISession (a dry run's customers beyond its model sample)."""
    memo: dict = {}
    results = []
    for request in requests:
        judgement = _judge(_prepare(request, memo), _CallOutcome(is_called=False, error=reason))
        results.append(GenerationResult(text=judgement.text, outcome=judgement.outcome, session=None,
                                        reason=judgement.reason, is_sendable=judgement.is_sendable,
                                        safety=judgement.safety))
    return results


def ai_generate(*, ai_config: AIConfig | None = None, **kwargs: Any) -> GenerationResult:
    """Generate one message (see GenerationRequest for the arguments); never raises on model failure.

    `ai_config`: the company's AIConfig when the caller has just read it (it is not read again)."""
    request = GenerationRequest(**kwargs)
    memo = {("config", request.company.pk): ai_config} if ai_config is not None else None
    prepared = _prepare(request, memo)
    # The model takes seconds: a pooled database connection goes back to the pool meanwhile (io worker).
    connection_release()
    return _finish(prepared, _call(prepared))


def ai_generate_many(
    *, requests: Sequence[GenerationRequest], max_workers: int | None = None, bulk: bool = False
) -> list[GenerationResult]:
    """Generate many messages, calling the model concurrently from a bounded thread pool; results in order.

    `bulk=True` (campaigns) shares the process-wide pool of AI_BULK_MAX_CONCURRENCY threads.
    """
    if bulk and max_workers is None:
        return ai_generate_start(requests=requests).results()
    memo: dict = {}
    prepared = [_prepare(request, memo) for request in requests]
    workers = max(1, min(max_workers or settings.AI_MAX_CONCURRENCY, len(prepared) or 1))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ai") as pool:
        calls = list(pool.map(_call, prepared))
    return _results_record(prepared, calls)


def _results_record(prepared: list[_Prepared], calls: list[_CallOutcome]) -> list[GenerationResult]:
    results = [_finish(item, call, save=False) for item, call in zip(prepared, calls, strict=True)]
    # One INSERT for the batch's records (PostgreSQL returns their ids).
    AISession.objects.bulk_create([result.session for result in results], batch_size=500)
    return results


class GenerationBatch:
    """Model calls in flight on the bulk pool; `results()` waits for them, filters and records (calling thread)."""

    def __init__(self, prepared: list[_Prepared], futures: list[Future]) -> None:
        self._prepared, self._futures = prepared, futures

    def results(self) -> list[GenerationResult]:
        return _results_record(self._prepared, [future.result() for future in self._futures])


def ai_generate_start(*, requests: Sequence[GenerationRequest]) -> GenerationBatch:
    """Start many generations on the process-wide bulk pool and return at once (bulk work overlaps its
    database work with the model's latency); the database reads happen here, in the calling thread."""
    memo: dict = {}
    prepared = [_prepare(request, memo) for request in requests]
    pool = _bulk_pool()
    return GenerationBatch(prepared, [pool.submit(_call, item) for item in prepared])


def ai_text_judge(*, company: Company, text: str, message_type: str) -> tuple[list, dict[str, Any]]:
    """The model-side checks of a text that is not the model's (the safety API): the moderation endpoint
    and the tone judge as a send would run them on a model's text, within the company's time budget.
    Returns (reasons, the records as AISession.safety keeps them); nothing without a key."""
    config = ai_config_for(company=company)
    api_key = config.api_key or settings.OPENAI_API_KEY or ""
    if not api_key:
        return [], {}
    prepared = _Prepared(
        request=GenerationRequest(company=company, agent_type="sales", purpose="safety_check", messages=[],
                                  message_type=message_type),
        model=config.model or settings.OPENAI_MODEL, temperature=config.temperature, max_tokens=config.max_tokens,
        api_key=api_key, base_url=config.api_base_url or settings.OPENAI_BASE_URL or None, policy=None, fallback="",
        time_budget=float(config.time_budget_seconds or getattr(settings, "AI_TIME_BUDGET_SECONDS", 15.0)),
        is_moderation_enabled=config.is_moderation_enabled,
        is_tone_judge_enabled=config.is_tone_judge_enabled and message_type in TONE_JUDGE_TYPES,
    )
    client = _sdk_client(prepared.base_url, api_key, float(settings.OPENAI_TIMEOUT_SECONDS), 0, _max_in_flight())
    outcome = _CallOutcome(text=text)
    _judge_by_model(prepared, client, outcome, time.monotonic() + prepared.time_budget)
    reasons = [*(outcome.moderation.reasons() if outcome.moderation else []),
               *(outcome.tone.reasons() if outcome.tone else [])]
    records: dict[str, Any] = {}
    if outcome.moderation is not None:
        records["moderation"] = outcome.moderation.as_dict()
    if outcome.tone is not None:
        records["tone"] = outcome.tone.as_dict()
    return reasons, records
