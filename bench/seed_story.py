"""How long `make run`'s `seed_demo` takes: the demo at its default size (120 customers) with the engagement
story (engage/demo.py: a real campaign run and its funnel, conversations, jobs, sequences), on the
embedded default (SQLite, in a temporary folder) and on PostgreSQL (a scratch database
`<bench database>_story`, dropped afterwards); each first on an empty database, then again (a rerun
finds everything and creates nothing). The command prints its time and the story's share.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Ceilings, seconds: the whole seed on an empty database, the story's share of it, a rerun.
CEILING_SEED_SECONDS = 30.0
CEILING_STORY_SECONDS = 20.0
CEILING_RERUN_SECONDS = 15.0


def _manage(env: dict[str, str], *arguments: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *arguments], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


def _seed_times(env: dict[str, str]) -> tuple[float, float, float]:
    """(seed, its story part, rerun) in seconds, as the command reports them."""
    _manage(env, "migrate", "--noinput", "-v", "0")
    first = _manage(env, "seed_demo")
    seed, story = re.search(r"created in ([0-9.]+) s \(CRM [0-9.]+ s, story ([0-9.]+) s\)", first).groups()
    rerun = re.search(r"checked in ([0-9.]+) s", _manage(env, "seed_demo")).group(1)
    return float(seed), float(story), float(rerun)


def main() -> list[dict]:
    import psycopg
    from django.conf import settings

    base_env = {**os.environ, "DEMO_ADMIN_PASSWORD": "bench-only-password"}
    with tempfile.TemporaryDirectory(prefix="seed-story-") as var_dir:
        sqlite_env = {name: value for name, value in base_env.items()
                      if name not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")}
        sqlite_env["SHOKTI_VAR_DIR"] = var_dir
        sqlite = _seed_times(sqlite_env)

    database = settings.DATABASES["default"]
    scratch = f"{database['NAME']}_story"
    conninfo = {key: value for key, value in {
        "host": database.get("HOST"), "port": database.get("PORT"),
        "user": database.get("USER"), "password": database.get("PASSWORD"),
    }.items() if value}
    url = f"postgres://{database.get('USER') or 'postgres'}@{database.get('HOST') or '127.0.0.1'}:{database.get('PORT') or 5432}/{scratch}"
    with psycopg.connect(dbname="postgres", autocommit=True, **conninfo) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{scratch}"')
        connection.execute(f'CREATE DATABASE "{scratch}"')
    try:
        with tempfile.TemporaryDirectory(prefix="seed-story-") as var_dir:
            postgres = _seed_times({**base_env, "DATABASE_URL": url, "SHOKTI_VAR_DIR": var_dir})
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True, **conninfo) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
    figures = []
    for backend, (seed, story, rerun) in (("SQLite (make run's default)", sqlite), ("PostgreSQL", postgres)):
        figures += [
            {"figure": f"seed_demo, 120 customers and the story, {backend}", "value": seed, "unit": "s",
             "ceiling": CEILING_SEED_SECONDS},
            {"figure": f"of which the story, {backend}", "value": story, "unit": "s",
             "ceiling": CEILING_STORY_SECONDS},
            {"figure": f"the same command again (creates nothing), {backend}", "value": rerun, "unit": "s",
             "ceiling": CEILING_RERUN_SECONDS},
        ]
    return figures
