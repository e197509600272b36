"""The burnout hook: which workers are under a burnout alert (coaching skips them; they are owed care, not
coaching: coaching/care.py). reports' burnout alerts register their provider here (ReportsConfig.ready)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

# `provider(*, company, worker_ids) -> set of worker ids under an alert`
BURNOUT_PROVIDERS: list[Callable[..., set[int]]] = []


def burnout_provider_register(provider: Callable[..., set[int]]) -> None:
    if provider not in BURNOUT_PROVIDERS:
        BURNOUT_PROVIDERS.append(provider)


def burnout_provider_unregister(provider: Callable[..., set[int]]) -> None:
    if provider in BURNOUT_PROVIDERS:
        BURNOUT_PROVIDERS.remove(provider)


def workers_under_burnout_alert(*, company, worker_ids: Iterable[int]) -> set[int]:
    """The ids among `worker_ids` that some registered provider says are under a burnout alert."""
    worker_ids = set(worker_ids)
    flagged: set[int] = set()
    for provider in BURNOUT_PROVIDERS:
        flagged |= set(provider(company=company, worker_ids=worker_ids)) & worker_ids
    return flagged
