"""Run every benchmark in bench/ and write its figures into docs/benchmarks.md (`make bench`).

Each `bench/<name>.py` has a `main()`. It returns a list of figures, dicts with
`figure` (what was measured), `value`, `unit` and `ceiling` (the most we accept,
same unit; lower is better), and optionally `note`. run_all writes them as the
table of the `<name>` section of docs/benchmarks.md, between the markers
`<!-- bench:<name>:start -->` and `<!-- bench:<name>:end -->`, replacing the
previous run's table and leaving the rest of the page alone. A main() that
returns None keeps its section up to date itself.

The database (DATABASE_URL, `make bench` uses `<test database>_bench`) is created
if missing and migrated before the first module runs.
    python bench/run_all.py                 # every module
    python bench/run_all.py seed_demo       # only these
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
import platform
import re
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shokti.settings")


def database_prepare() -> None:
    """Create the benchmark database when it does not exist yet, then migrate it."""
    import django
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("postgresql"):
        import psycopg

        conninfo = {key: value for key, value in {
            "host": database.get("HOST"), "port": database.get("PORT"),
            "user": database.get("USER"), "password": database.get("PASSWORD"),
        }.items() if value}
        with psycopg.connect(dbname="postgres", autocommit=True, **conninfo) as connection:
            exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database["NAME"]]).fetchone()
            if not exists:
                connection.execute(f'CREATE DATABASE "{database["NAME"]}"')
    django.setup()
    from django.core.management import call_command

    call_command("migrate", "--noinput", verbosity=0)


def modules(selected: list[str]) -> list[str]:
    names = sorted(path.stem for path in (ROOT / "bench").glob("*.py") if not path.stem.startswith(("_", "run_all")))
    return [name for name in names if not selected or name in selected]


def figure_rows(figures: list[dict]) -> list[str]:
    rows = ["| Figure | Measured | Ceiling | Ratio | |", "|---|---:|---:|---:|---|"]
    for figure in figures:
        value, ceiling, unit = figure["value"], figure["ceiling"], figure.get("unit", "")
        ratio = value / ceiling if ceiling else float("inf")
        verdict = "ok" if ratio <= 1 else "**over the ceiling**"
        note = f" ({figure['note']})" if figure.get("note") else ""
        rows.append(
            f"| {figure['figure']}{note} | {value:,.3g} {unit} | {ceiling:,.3g} {unit} | {ratio:.2f} | {verdict} |"
        )
    return rows


def section_write(name: str, figures: list[dict], elapsed: float) -> None:
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    stamp = (
        f"_Last run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC by `make bench` on {platform.node() or 'this machine'}"
        f" ({os.cpu_count()} CPUs), {elapsed:.0f} s._"
    )
    block = "\n".join([start, *figure_rows(figures), "", stamp, end])
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip("\n") + f"\n\n## {name}\n\n{block}\n"
    DOC.write_text(text if text.endswith("\n") else text + "\n")


def main(selected: list[str]) -> int:
    database_prepare()
    failed = []
    for name in modules(selected):
        print(f"== bench/{name}.py", flush=True)
        started = time.perf_counter()
        try:
            figures = importlib.import_module(f"bench.{name}").main()
        except Exception:
            traceback.print_exc()
            failed.append(name)
            continue
        elapsed = time.perf_counter() - started
        if figures is not None:
            section_write(name, list(figures), elapsed)
            for row in figure_rows(list(figures))[2:]:
                print("  " + row)
    print(f"figures in {DOC.relative_to(ROOT)}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
