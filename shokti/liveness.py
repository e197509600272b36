"""Whether Celery workers and beat are alive, as /health?deep=1 reports it (wiring: shokti/celery.py starts it).

- Each worker process that consumes queues writes `liveness:worker:<name>` into the Django cache every
  `WORKER_HEARTBEAT_SECONDS` (10), with a time to live of three beats, and keeps its name in the
  `liveness:workers` registry. A worker that died (SIGKILL, a lost machine) simply stops writing and
  its key expires: no clean shutdown needed.
- The beat process notes `liveness:beat` each time it publishes a task (the 10-second lease reclaim
  is one, so a live beat ticks at least every 10 s).

The Django cache is Redis in production and a file cache in embedded mode, so both work; with
Redis away neither can be read, and /health says so (redis: error, workers/beat: unknown).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Any

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

REGISTRY_KEY = "liveness:workers"
BEAT_KEY = "liveness:beat"
_beat_last_noted = 0.0


def heartbeat_seconds() -> float:
    return float(getattr(settings, "WORKER_HEARTBEAT_SECONDS", 10))


def worker_key(name: str) -> str:
    return f"liveness:worker:{name}"


def worker_beat(*, name: str, queues: list[str]) -> None:
    """One heartbeat of a worker: its key (three beats to live) and its name in the registry."""
    ttl = max(1, round(heartbeat_seconds() * 3))
    cache.set(worker_key(name), {"name": name, "queues": sorted(queues), "pid": os.getpid(), "at": time.time()}, ttl)
    names = cache.get(REGISTRY_KEY) or []
    if name not in names:
        cache.set(REGISTRY_KEY, sorted({*names, name})[-500:], None)


def worker_heartbeat_start(*, name: str, queues: list[str]) -> threading.Thread:
    """Beat now, then every WORKER_HEARTBEAT_SECONDS from a daemon thread, for as long as the process lives."""

    def run() -> None:
        while True:
            try:
                worker_beat(name=name, queues=queues)
            except Exception:  # the cache fails soft already; never let the heartbeat thread die
                logger.warning("worker heartbeat failed", exc_info=True)
            time.sleep(heartbeat_seconds())

    thread = threading.Thread(target=run, name="worker-liveness", daemon=True)
    thread.start()
    return thread


def worker_forget(*, name: str) -> None:
    cache.delete(worker_key(name))


def workers_alive() -> list[dict[str, Any]]:
    """The workers whose heartbeat is fresh: [{name, queues, pid, at}], by name."""
    names = cache.get(REGISTRY_KEY) or []
    if not names:
        return []
    beats = cache.get_many([worker_key(name) for name in names])
    horizon = time.time() - heartbeat_seconds() * 3
    return sorted((beat for beat in beats.values() if beat.get("at", 0) >= horizon), key=lambda beat: beat["name"])


def workers_per_queue(alive: list[dict[str, Any]]) -> dict[str, int]:
    """How many of `alive` consume each queue; every required queue (HEALTH_REQUIRED_QUEUES) present, 0 if none."""
    per_queue = {queue: 0 for queue in settings.HEALTH_REQUIRED_QUEUES}
    for worker in alive:
        for queue in worker["queues"]:
            per_queue[queue] = per_queue.get(queue, 0) + 1
    return per_queue


def beat_tick_note() -> None:
    """Called in the beat process as it publishes a task; written at most every 2 seconds."""
    global _beat_last_noted
    now = time.time()
    if now - _beat_last_noted < 2:
        return
    _beat_last_noted = now
    cache.set(BEAT_KEY, {"at": now, "host": socket.gethostname(), "pid": os.getpid()}, None)


def beat_last_tick_age() -> float | None:
    """Seconds since beat last published a task, or None if it never did (or the cache forgot)."""
    tick = cache.get(BEAT_KEY)
    return None if not tick else max(0.0, time.time() - tick["at"])
