"""GET /health: the process answers, and so do the database and Redis (or the embedded broker)."""

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


@never_cache
@require_safe
def health(request):
    """200 {"status": "ok", "checks": {...}}; 503 {"status": "degraded", "checks": {...}, "failing": [...]}."""
    checks = run_checks()
    failing = sorted(name for name, result in checks.items() if result != "ok")
    body: dict = {"status": "degraded" if failing else "ok", "checks": checks}
    if failing:
        body["failing"] = failing
    return JsonResponse(body, status=503 if failing else 200)
