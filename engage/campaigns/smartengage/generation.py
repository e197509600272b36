"""Steps 5-7: the model calls of a batch (concurrent, started before the previous batch is sent), the link put
in and the final text judged by the safety filter, the fallback when needed."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from engage.ai.client import (
    AI_GENERATION_OFF_REASON,
    GenerationBatch,
    GenerationResult,
    ai_fallbacks,
    ai_generate_start,
)
from engage.ai.models import AISession
from engage.campaigns.smartengage.outcomes import Plan, Reason

DRY_RUN_NOT_CALLED = "Dry run: the model was not called for this customer (beyond the sample); the approved fallback is shown."


def generation_start(*, plans: list[Plan], dry_run: bool = False) -> Generation | None:
    """Steps 5-7, started: the model calls go out (bulk pool) and this returns at once; None when none are needed.

    A dry run calls the model for the first SMARTENGAGE_DRY_RUN_MODEL_SAMPLE customers of each
    batch only (a preview of what the model writes, AISessions recorded); every other customer gets
    the approved fallback with the link, judged by the same filter as a real send, and marked so: a
    dry run of the whole eligible set costs no model calls and is not held up by them.
    """
    to_generate = [plan for plan in plans if not plan.reason and plan.request is not None]
    if not to_generate:
        return None
    if dry_run:
        sample = max(0, int(getattr(settings, "SMARTENGAGE_DRY_RUN_MODEL_SAMPLE", 20)))
        beyond = to_generate[sample:]
        results = ai_fallbacks(requests=[plan.request for plan in beyond], reason=DRY_RUN_NOT_CALLED)
        for plan, result in zip(beyond, results, strict=True):
            _result_apply(plan=plan, result=result, is_model_asked=False)
            plan.note = plan.note or DRY_RUN_NOT_CALLED
        to_generate = to_generate[:sample]
        if not to_generate:
            return None
    return Generation(plans=to_generate, batch=ai_generate_start(requests=[plan.request for plan in to_generate]))


@dataclass
class Generation:
    plans: list[Plan]
    batch: GenerationBatch


def _result_apply(*, plan: Plan, result: GenerationResult, is_model_asked: bool = True) -> None:
    """The generation's final text (link in, judged) and the reason it is not the model's own."""
    plan.session, plan.text = result.session, result.text
    if result.outcome == AISession.Outcome.REJECTED:
        plan.reason = Reason.SAFETY_REJECTED
    elif result.outcome != AISession.Outcome.OK and is_model_asked and result.reason != AI_GENERATION_OFF_REASON:
        # The model failed or had no key. Switched off by the policy is no failure (the approved
        # fallback is what the company chose), nor is a dry run's customer beyond its model sample.
        plan.reason = Reason.AI_FAILED_FALLBACK
    if not result.is_sendable:
        plan.reason, plan.is_blocked, plan.note = Reason.SAFETY_REJECTED, True, result.reason


def generation_finish(generation: Generation | None) -> None:
    """Steps 5-7, finished: wait for the calls; the client put the link in, filtered and fell back."""
    if generation is None:
        return
    for plan, result in zip(generation.plans, generation.batch.results(), strict=True):
        _result_apply(plan=plan, result=result)
