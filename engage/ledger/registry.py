"""The registry of job handlers, keyed by task name.

A handler is a function `handler(job) -> dict | None` registered with
`@job_handler("task_name", priority=...)`. It runs outside any transaction
(it opens its own), may run more than once for the same job (a redelivered
or replayed task), and must therefore be idempotent: outbound messages go
through `engage.messaging.services.message_send(job=...)`, which sends at most once per job.
Raise an exception to fail (retried with backoff); one with `permanent = True`
(e.g. `ChannelError(..., permanent=True)` or `JobPermanentError`) goes straight
to the dead-letter queue.

Each feature keeps its handlers in its own `handlers.py`, imported at start-up by EngageConfig.ready()
(see `engage.apps.HANDLER_MODULES`).

`queue` says which Celery queue runs it: `IO_QUEUE` ("io") for handlers that mostly wait (on the
model, a provider, a webhook receiver), consumed by a thread-pool worker with many threads;
`DEFAULT_QUEUE` for CPU-bound work (campaign runs), consumed by the prefork worker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engage.ledger.models import Job

HandlerFunction = Callable[["Job"], "dict[str, Any] | None"]
ReplayFunction = Callable[["Job"], None]

DEFAULT_QUEUE = "default"
IO_QUEUE = "io"


class JobPermanentError(Exception):
    """A failure that retrying cannot fix: the job goes to the dead-letter queue at once."""

    permanent = True


@dataclass(frozen=True)
class JobHandler:
    task_name: str
    priority: int
    function: HandlerFunction
    # Called in job_replay's transaction before a dead/failed/cancelled job is queued again: it puts the
    # job's own records back in a state where running it does its work (a failed campaign run goes back
    # to queued), or raises ValidationError saying why this job cannot be replayed.
    on_replay: ReplayFunction | None = None
    queue: str = DEFAULT_QUEUE


_HANDLERS: dict[str, JobHandler] = {}


def job_handler(
    task_name: str, *, priority: int, on_replay: ReplayFunction | None = None, queue: str = DEFAULT_QUEUE
) -> Callable[[HandlerFunction], HandlerFunction]:
    """Register `function` as the handler of `task_name` (importing its module again is harmless).

    `on_replay(job)`, when the job's work depends on records the job's failure left behind (see JobHandler);
    `queue`, the Celery queue that runs it (IO_QUEUE for handlers that mostly wait).
    """
    if not 0 <= priority <= 100:
        raise ValueError("A job priority is 0-100.")

    def register(function: HandlerFunction) -> HandlerFunction:
        existing = _HANDLERS.get(task_name)
        if existing is not None and (existing.function.__module__, existing.function.__qualname__) != (
            function.__module__,
            function.__qualname__,
        ):
            raise ValueError(f"Two handlers for job task {task_name!r}.")
        _HANDLERS[task_name] = JobHandler(task_name, priority, function, on_replay, queue)
        return function

    return register


def handler_for(task_name: str) -> JobHandler:
    try:
        return _HANDLERS[task_name]
    except KeyError:
        raise JobPermanentError(f"No handler is registered for job task {task_name!r}.") from None


def handler_names() -> list[str]:
    return sorted(_HANDLERS)


def handler_queue(task_name: str) -> str:
    """The Celery queue of a task's runs (DEFAULT_QUEUE for an unknown task: it is dead at its claim)."""
    handler = _HANDLERS.get(task_name)
    return handler.queue if handler else DEFAULT_QUEUE


def default_priority(task_name: str) -> int:
    handler = _HANDLERS.get(task_name)
    return handler.priority if handler else 50
