"""How long `seed_demo` takes to load a large demo (COPY path), and a rerun that finds it in place.

Runs `manage.py seed_demo` in a scratch PostgreSQL database (`<bench database>_seed`,
dropped afterwards) so the other benchmarks' data is untouched.
BENCH_SEED_CUSTOMERS (default 100000; 1000000 takes minutes) sets the volume.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOOKINGS_PER_CUSTOMER = 10
# Ceilings: seconds per 100k customers (with 10 bookings each), and for a rerun that creates nothing.
CEILING_SECONDS_PER_100K = 60.0
CEILING_RERUN_SECONDS = 10.0


def _seed(env: dict[str, str], customers: int) -> float:
    done = subprocess.run(
        [sys.executable, "manage.py", "seed_demo", "--customers", str(customers),
         "--bookings-per-customer", str(BOOKINGS_PER_CUSTOMER)],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    )
    return float(re.search(r"in ([0-9.]+) s", done.stdout).group(1))


def main() -> list[dict]:
    import psycopg
    from django.conf import settings

    customers = int(os.environ.get("BENCH_SEED_CUSTOMERS", "100000"))
    database = settings.DATABASES["default"]
    scratch = f"{database['NAME']}_seed"
    conninfo = {key: value for key, value in {
        "host": database.get("HOST"), "port": database.get("PORT"),
        "user": database.get("USER"), "password": database.get("PASSWORD"),
    }.items() if value}
    url = f"postgres://{database.get('USER') or 'postgres'}@{database.get('HOST') or '127.0.0.1'}:{database.get('PORT') or 5432}/{scratch}"
    env = {**os.environ, "DATABASE_URL": url, "DEMO_ADMIN_PASSWORD": "bench-only-password"}
    with psycopg.connect(dbname="postgres", autocommit=True, **conninfo) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{scratch}"')
        connection.execute(f'CREATE DATABASE "{scratch}"')
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
        load_seconds = _seed(env, customers)
        rerun_seconds = _seed(env, customers)
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True, **conninfo) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
    return [
        {
            "figure": f"seed_demo --customers {customers:,} --bookings-per-customer {BOOKINGS_PER_CUSTOMER}",
            "value": load_seconds,
            "unit": "s",
            "ceiling": CEILING_SECONDS_PER_100K * customers / 100_000,
        },
        {
            "figure": "the same command again (finds everything, creates nothing)",
            "value": rerun_seconds,
            "unit": "s",
            "ceiling": CEILING_RERUN_SECONDS,
        },
    ]
