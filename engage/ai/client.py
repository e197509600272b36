"""The one AI client both products use: the official `openai` SDK, recorded in AISession.

A generation has three parts so bulk work can run the slow middle one concurrently:
prepare (database: config, engagement policy, safety policy, fallback text), call (HTTP only,
thread-safe), finish (database: safety filter, AISession row). `ai_generate` does all three;
`ai_generate_many` prepares and finishes in the calling thread and calls the model from a
bounded thread pool, so worker threads never touch the database. Campaign generation
(`bulk=True`) uses one process-wide pool of AI_BULK_MAX_CONCURRENCY threads, kept between
batches (no thread starts per batch), larger than the interactive bound AI_MAX_CONCURRENCY; the
HTTP client keeps as many connections open so every call in flight has one.

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
import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx2
import openai
from django.conf import settings

from crm.models import Company, Contact, Lead
from engage.ai.config import ai_config_for
from engage.ai.models import AISession
from engage.ai.safety import (
    SafetyPolicy,
    SafetyVerdict,
    fallback_text_for,
    link_insert,
    safety_check,
    safety_policy_for,
)
from engage.policy.services import policy_for

logger = logging.getLogger(__name__)


NO_API_KEY_REASON = "no API key configured"


SAFETY_FILTER_OFF_REASON = "safety filter off by the engagement policy"


AI_GENERATION_OFF_REASON = "AI generation off by the engagement policy"


FALLBACK_REJECTED_REASON = "Nothing sendable: the approved fallback fails the safety filter too"


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


@dataclass
class _CallOutcome:
    text: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    latency_ms: int = 0
    error: str = ""
    is_called: bool = True


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

    @property
    def is_fallback(self) -> bool:
        return self.outcome != AISession.Outcome.OK


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
            policy = memo[("policy", company_id)] = safety_policy_for(company=request.company)
        key = ("fallback", company_id, request.message_type, request.locale)
        fallback = memo.get(key)
        if fallback is None:
            fallback = memo[key] = fallback_text_for(
                company=request.company, message_type=request.message_type, locale=request.locale
            )
    return _Prepared(
        request=request,
        model=config.model or settings.OPENAI_MODEL,
        temperature=config.temperature,
        max_tokens=request.max_tokens or config.max_tokens,
        api_key=config.api_key or settings.OPENAI_API_KEY or "",
        base_url=config.api_base_url or settings.OPENAI_BASE_URL or None,
        policy=policy,
        fallback=fallback or "",
        is_filter_off=not internal and not is_filtered,
        is_generation_off=not engagement.is_ai_generation_enabled,
    )


def _call(prepared: _Prepared) -> _CallOutcome:
    """The HTTP part: no database access here (it runs in pool threads)."""
    if prepared.is_generation_off:
        return _CallOutcome(is_called=False, error=AI_GENERATION_OFF_REASON)
    if not prepared.api_key:
        # The SDK would raise "Missing credentials": no key is the offline mode, not an error.
        return _CallOutcome(is_called=False, error=NO_API_KEY_REASON)
    client = _sdk_client(
        prepared.base_url, prepared.api_key, float(settings.OPENAI_TIMEOUT_SECONDS), int(settings.OPENAI_MAX_RETRIES),
        _max_in_flight(),
    )
    started = time.monotonic()
    try:
        completion = client.chat.completions.create(
            model=prepared.model,
            messages=prepared.request.messages,
            temperature=prepared.temperature,
            max_tokens=prepared.max_tokens,
        )
    except openai.OpenAIError as error:
        latency_ms = int((time.monotonic() - started) * 1000)
        logger.warning("AI call failed after %s ms: %s", latency_ms, error)
        return _CallOutcome(latency_ms=latency_ms, error=f"{type(error).__name__}: {error}")
    latency_ms = int((time.monotonic() - started) * 1000)
    usage = completion.usage
    text = (completion.choices[0].message.content or "").strip() if completion.choices else ""
    return _CallOutcome(
        text=text,
        tokens_in=usage.prompt_tokens if usage else 0,
        tokens_out=usage.completion_tokens if usage else 0,
        latency_ms=latency_ms,
        error="" if text else "The model returned an empty answer.",
    )


def _verdict(prepared: _Prepared, text: str) -> SafetyVerdict | None:
    """The safety filter's verdict on a final text; None when the filter does not apply."""
    if prepared.policy is None:
        return None
    request = prepared.request
    return safety_check(
        text=text,
        policy=prepared.policy,
        channel=request.channel,
        locale=request.locale,
        recipient_phone=request.contact.phone if request.contact else "",
        recipient_email=request.contact.email if request.contact else "",
        link=request.link,
    )


def _final(request: GenerationRequest, text: str) -> str:
    return text if request.link is None else link_insert(text=text, link=request.link)


def _judge(prepared: _Prepared, call: _CallOutcome) -> tuple[str, str, str, bool]:
    """(outcome, reason, final text, is sendable): the model's final text if the filter passes it, else the
    approved fallback's, which is judged too (no database access)."""
    request = prepared.request
    if not call.is_called:
        outcome, reason = AISession.Outcome.FALLBACK, call.error
    elif call.error:
        outcome, reason = AISession.Outcome.ERROR, call.error
    else:
        text = _final(request, call.text)
        verdict = _verdict(prepared, text)
        if verdict is None or verdict.is_ok:
            return AISession.Outcome.OK, SAFETY_FILTER_OFF_REASON if prepared.is_filter_off else "", text, True
        outcome, reason = AISession.Outcome.REJECTED, verdict.reason or ""
    if request.message_type is None:  # internal text: no fallback, nothing to judge
        return outcome, reason, "", True
    fallback = _final(request, prepared.fallback)
    verdict = _verdict(prepared, fallback)
    if verdict is not None and not verdict.is_ok:
        return outcome, f"{reason} | {FALLBACK_REJECTED_REASON}: {verdict.reason}", fallback, False
    return outcome, reason, fallback, True


def _finish(prepared: _Prepared, call: _CallOutcome, *, save: bool = True) -> GenerationResult:
    """Filter, fall back and record; with save=False the AISession is built unsaved (the caller bulk-inserts)."""
    request = prepared.request
    outcome, reason, final_text, is_sendable = _judge(prepared, call)
    session = AISession(
        company=request.company,
        agent_type=request.agent_type,
        purpose=request.purpose,
        prompt_messages=request.messages,
        model=prepared.model,
        response_text=call.text,
        final_text=final_text,
        tokens_in=call.tokens_in,
        tokens_out=call.tokens_out,
        latency_ms=call.latency_ms,
        outcome=outcome,
        error=reason,
        lead=request.lead,
        contact=request.contact,
        correlation_id=request.correlation_id,
    )
    if save:
        session.save(force_insert=True)
    return GenerationResult(text=final_text, outcome=outcome, session=session, reason=reason, is_sendable=is_sendable)


def ai_fallbacks(*, requests: Sequence[GenerationRequest], reason: str) -> list[GenerationResult]:
    """The approved fallback of each request, with its link, judged by the same safety filter as a generation,
    without calling the model or recording an AISession (a dry run's customers beyond its model sample)."""
    memo: dict = {}
    results = []
    for request in requests:
        outcome, why, text, is_sendable = _judge(_prepare(request, memo), _CallOutcome(is_called=False, error=reason))
        results.append(GenerationResult(text=text, outcome=outcome, session=None, reason=why, is_sendable=is_sendable))
    return results


def ai_generate(**kwargs: Any) -> GenerationResult:
    """Generate one message (see GenerationRequest for the arguments); never raises on model failure."""
    prepared = _prepare(GenerationRequest(**kwargs))
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
