"""GET /health: the process answers, and so do the database and Redis (or the embedded broker).

GET /health?deep=1 also says whether the background side works: Celery workers alive for every
required queue (HEALTH_REQUIRED_QUEUES), beat ticking (within HEALTH_BEAT_MAX_AGE_SECONDS), and the
age of the oldest due queued job (degraded past HEALTH_MAX_QUEUE_AGE_SECONDS). For monitoring and
on-call dashboards; a load balancer's check stays the plain /health (a stuck worker is no reason to
take web servers out).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

logger = logging.getLogger(__name__)


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_redis() -> None:
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    finally:
        client.close()


def _check_embedded_broker() -> None:
    folder = settings.BROKER_DIR / "out"
    folder.mkdir(parents=True, exist_ok=True)
    if not folder.is_dir():
        raise OSError(f"{folder} is not a folder")


def run_checks() -> dict[str, str]:
    """{"database": "ok" | "error", "redis" (or "broker" when embedded): "ok" | "error"}."""
    checks = {"database": _check_database}
    if settings.REDIS_URL:
        checks["redis"] = _check_redis
    else:
        checks["broker"] = _check_embedded_broker
    results = {}
    for name, check in checks.items():
        try:
            check()
        except Exception:  # a health check reports any failure, whatever its type
            # The details go to the log, not to an unauthenticated caller.
            logger.exception("health check %s failed", name)
            results[name] = "error"
        else:
            results[name] = "ok"
    return results


def deep_checks(*, cache_ok: bool) -> tuple[dict[str, str], dict]:
    """Workers, beat and the queue: ({name: "ok" | "error" | "unknown"}, details)."""
    from engage.ledger.selectors import jobs_oldest_due_age_seconds
    from shokti.liveness import beat_last_tick_age, workers_alive, workers_per_queue

    checks: dict[str, str] = {}
    details: dict = {}
    if cache_ok:
        alive = workers_alive()
        per_queue = workers_per_queue(alive)
        missing = [queue for queue in settings.HEALTH_REQUIRED_QUEUES if not per_queue.get(queue)]
        checks["workers"] = "error" if missing else "ok"
        details["workers"] = {"alive": [worker["name"] for worker in alive], "per_queue": per_queue}
        if missing:
            details["workers"]["queues_without_worker"] = missing
        age = beat_last_tick_age()
        checks["beat"] = "ok" if age is not None and age <= settings.HEALTH_BEAT_MAX_AGE_SECONDS else "error"
        details["beat"] = {"last_tick_seconds_ago": None if age is None else round(age, 1)}
    else:
        # Liveness lives in the cache: with Redis away nobody can tell (redis is failing already).
        checks["workers"] = checks["beat"] = "unknown"
    try:
        oldest = jobs_oldest_due_age_seconds()
    except Exception:  # reported like any failing check; the details go to the log
        logger.exception("health check jobs failed")
        checks["jobs"] = "error"
    else:
        too_old = oldest is not None and oldest > settings.HEALTH_MAX_QUEUE_AGE_SECONDS
        checks["jobs"] = "error" if too_old else "ok"
        details["jobs"] = {"oldest_queued_age_seconds": oldest}
    return checks, details


@never_cache
@require_safe
def health(request):
    """200 {"status": "ok", "checks": {...}}; 503 {"status": "degraded", "checks": {...}, "failing": [...]}.
    With `?deep=1`: workers, beat and jobs too, and their details."""
    checks = run_checks()
    details: dict = {}
    if request.GET.get("deep") in ("1", "true", "yes"):
        deep, details = deep_checks(cache_ok=checks.get("redis", "ok") == "ok")
        checks.update(deep)
    failing = sorted(name for name, result in checks.items() if result == "error")
    body: dict = {"status": "degraded" if failing else "ok", "checks": checks, **details}
    if failing:
        body["failing"] = failing
    return JsonResponse(body, status=503 if failing else 200)
