"""GET /health: the process answers, and so do the database and Redis (or the embedded broker)."""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


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


def run_checks() -> dict[str, dict]:
    checks = {"database": _check_database}
    if settings.REDIS_URL:
        checks["redis"] = _check_redis
    else:
        checks["broker"] = _check_embedded_broker
    results = {}
    for name, check in checks.items():
        started = time.perf_counter()
        try:
            check()
        except Exception as error:  # a health check reports any failure, whatever its type
            results[name] = {"status": "error", "error": f"{type(error).__name__}: {error}"[:300]}
        else:
            results[name] = {"status": "ok", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}
    return results


@never_cache
@require_GET
def health(request):
    checks = run_checks()
    failing = sorted(name for name, result in checks.items() if result["status"] != "ok")
    body = {"status": "ok" if not failing else "degraded", "checks": checks}
    if failing:
        body["failing"] = failing
    return JsonResponse(body, status=503 if failing else 200)
