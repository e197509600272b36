"""The Celery app. Tasks live in each app's tasks.py, found by autodiscovery, except engage's: each of its features
has its own tasks.py, imported by EngageConfig.ready() (engage.apps.TASK_MODULES). Schedules live in
django-celery-beat's tables (defaults: shokti/schedules.py).

Queues (declared in settings.CELERY_TASK_QUEUES):
- `default`: everything, run by the ordinary worker (`-Q default`).
- `whatsapp_web`: the WhatsApp Web session can only send one message at a time, so its tasks
  are routed there and a worker with `--concurrency 1 -Q whatsapp_web` consumes it.

Priorities: on Redis, Celery emulates priorities with one list per step; steps 0-9, **0 is taken
first**. The job ledger keeps 0-100 with **100 first** (P1 90-100: AI reply, follow-up,
summary; P2 50-70: sequence step, email sequence, webhook reminder), so
`engage.ledger.services.job_priority_step(ledger_priority)` maps 90-100 -> 0, 80-89 -> 1, ..., 50-59 -> 4, ...,
0-9 -> 9. Pass the result as `apply_async(priority=...)`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from functools import cached_property
from typing import Any

from celery import Celery
from celery.signals import beat_init, before_task_publish, worker_process_shutdown, worker_ready, worker_shutdown
from kombu.transport import TRANSPORT_ALIASES

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shokti.settings")


class DjangoCelerySettings(Mapping):
    """The `CELERY_*` Django settings as Celery's lowercase names, read once when Celery first needs them.

    Celery looks settings up on every publish; through Django's lazy settings object and the
    namespace prefixing (`config_from_object("django.conf:settings", namespace="CELERY")`) that
    was ~7 lookups and ~20% of a publish's CPU, paid by every webhook that queues a job. Settings
    do not change at run time; tests that need another broker set `app.conf` directly.
    """

    prefix = "CELERY_"

    @cached_property
    def _values(self) -> dict[str, Any]:
        from django.conf import settings

        return {
            name[len(self.prefix):].lower(): getattr(settings, name)
            for name in dir(settings)
            if name.startswith(self.prefix)
        }

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


# `filesystem://` (the embedded default) is kombu's filesystem transport with messages renamed into place
# whole (shokti.filesystem_broker): kombu's own lets a consumer read a message before it is written.
TRANSPORT_ALIASES["filesystem"] = "shokti.filesystem_broker:Transport"

app = Celery("shokti")
app.config_from_object(DjangoCelerySettings())
app.autodiscover_tasks()

@worker_process_shutdown.connect
def _mark_metrics_process_dead(pid=None, **kwargs) -> None:
    # A prefork child writes its metrics to PROMETHEUS_MULTIPROC_DIR; mark it gone so live
    # gauges stop counting it (counters keep their sum).
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid())


# --- liveness for /health?deep=1 (shokti/liveness.py) ---------------------------------------------------


@worker_ready.connect
def _worker_heartbeat_start(sender=None, **kwargs) -> None:
    from shokti.liveness import worker_heartbeat_start

    queues = sorted(sender.app.amqp.queues.consume_from) if sender is not None else []
    worker_heartbeat_start(name=getattr(sender, "hostname", None) or f"worker-{os.getpid()}", queues=queues)


@worker_shutdown.connect
def _worker_forget(sender=None, **kwargs) -> None:
    from shokti.liveness import worker_forget

    try:
        worker_forget(name=getattr(sender, "hostname", None) or f"worker-{os.getpid()}")
    except Exception:  # shutting down: a lost delete only lets the key expire by itself
        pass


def _beat_published(**kwargs) -> None:
    from shokti.liveness import beat_tick_note

    try:
        beat_tick_note()
    except Exception:  # never let liveness bookkeeping stop beat from publishing
        pass


@beat_init.connect
def _beat_liveness(**kwargs) -> None:
    # Only the beat process connects this: its publishes are beat's ticks.
    before_task_publish.connect(_beat_published, weak=False)
