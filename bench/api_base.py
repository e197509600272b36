"""The API base's cost per request: API-key auth, throttle, company scoping, list, /health, /metrics.

    make bench                                    # with the other benchmarks (bench/run_all.py)
    .venv/bin/python bench/run_all.py api_base    # only this one

In the benchmark database (migrated by run_all), one company gets BENCH_API_CONTACTS contacts
(default 100,000; made once, found again on the next run). Requests go through Django's whole
stack in this process (middleware, DRF, the Redis throttle, PostgreSQL) with the test client, so
the figures are the server's work per request without sockets or the web server:
- GET /api/contacts/?phone=...: API-key lookup, throttle (a Redis GET and SET), scoping, an
  indexed lookup on (company, phone);
- GET /api/contacts/ (first page of everything) and a page deep in the list: cursor pagination,
  no COUNT, so both stay flat however many contacts the company has;
- GET /health: a database round trip and a Redis PING on a new connection;
- GET /metrics: rendering every series of this process.
Throttle rates are lifted, so what is measured is the work, not the quota. Ceilings are for our
2 shared CPUs with other suites running (wall time, client and server in one process); on an
idle machine the figures are 3-5 times lower (about 19 ms of CPU per contacts request, profiled).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shokti.settings")

CONTACTS = int(os.environ.get("BENCH_API_CONTACTS", "100000"))
ROUNDS = int(os.environ.get("BENCH_API_ROUNDS", "400"))
SLUG = "bench-api-base"


def _company_with_contacts():
    from crm.models import Company, Contact

    company, _ = Company.objects.get_or_create(slug=SLUG, defaults={"name": "Bench API base"})
    have = Contact.objects.filter(company=company).count()
    batch = []
    for index in range(have, CONTACTS):
        batch.append(Contact(company=company, name=f"Bench {index}", phone=f"+88017{index:08d}",
                             email=f"bench{index}@example.test"))
        if len(batch) == 5000:
            Contact.objects.bulk_create(batch)
            batch = []
    if batch:
        Contact.objects.bulk_create(batch)
    if have < CONTACTS:
        from django.db import connection

        with connection.cursor() as cursor:  # as autovacuum would, soon after a bulk load
            cursor.execute("ANALYZE crm_contact")
    return company


def _timings(client, path: str, rounds: int, **headers) -> list[float]:
    for _ in range(10):  # warm caches and connections
        client.get(path, **headers)
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        response = client.get(path, **headers)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code, response.content[:300])
    return timings


def _deep_page(company) -> str:
    """The URL of a page that starts 50 contacts before the oldest: a cursor deep in the list."""
    from rest_framework.pagination import Cursor

    from crm.models import Contact
    from shokti.api.pagination import NewestFirstCursorPagination

    position = Contact.objects.filter(company=company).order_by("id").values_list("id", flat=True)[50]
    paginator = NewestFirstCursorPagination()
    paginator.base_url = "/api/contacts/"
    return paginator.encode_cursor(Cursor(offset=0, reverse=False, position=str(position)))


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def main() -> list[dict]:
    import django

    django.setup()
    from django.conf import settings
    from django.test import Client
    from django.test.utils import override_settings

    from crm.services import api_key_create

    company = _company_with_contacts()
    _, raw_key = api_key_create(company=company, name="bench")
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "anon": "1000000/minute",
             "user": "1000000/minute", "api_key": "1000000/minute"}
    figures = []
    with override_settings(
        ALLOWED_HOSTS=[*settings.ALLOWED_HOSTS, "testserver"],
        REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates},
    ):
        client = Client()
        key = {"HTTP_X_API_KEY": raw_key}
        phone = f"+88017{CONTACTS // 2:08d}"
        deep_page = _deep_page(company)
        cases = [
            (f"GET /api/contacts/?phone= (API key, {CONTACTS:,} contacts)", f"/api/contacts/?phone={phone}", key, 50, 150),
            (f"GET /api/contacts/ first page ({CONTACTS:,} contacts)", "/api/contacts/", key, 50, 150),
            (f"GET /api/contacts/ a page near the end ({CONTACTS:,} contacts)", deep_page, key, 50, 150),
            ("GET /health (database + Redis)", "/health", {}, 30, 100),
            ("GET /metrics", "/metrics", {}, 25, 80),
        ]
        for label, path, headers, ceiling_p50, ceiling_p99 in cases:
            timings = _timings(client, path, ROUNDS, **headers)
            figures.append({"figure": f"{label}: p50", "value": round(statistics.median(timings), 2),
                            "unit": "ms", "ceiling": ceiling_p50})
            figures.append({"figure": f"{label}: p99", "value": round(_p99(timings), 2),
                            "unit": "ms", "ceiling": ceiling_p99})
    return figures


if __name__ == "__main__":
    for figure in main():
        print(f"{figure['figure']}: {figure['value']} {figure['unit']} (ceiling {figure['ceiling']})")
