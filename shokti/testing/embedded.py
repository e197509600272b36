"""`make run`'s stack in a temporary folder, for the slow tests (a pytest plugin: conftest.py lists it).

No DATABASE_URL/REDIS_URL: a SQLite file and Celery's filesystem broker in a tmp var dir; migrate
(schedules included), seed_demo (the demo and its story, as `make run` seeds it) and collectstatic in
one process, then the Procfile under honcho (web on granian, worker, whatsapp_web worker, beat) with
the console standing in for SMS and WhatsApp, as `make run` sets it. One stack per test session,
stopped by PID at its end.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ADMIN_PASSWORD = "embedded-demo-pass"
STARTUP_SECONDS = 120
REQUEST_SECONDS = 30


@dataclass(frozen=True)
class EmbeddedStack:
    base_url: str
    env: dict[str, str]
    log: Path
    seed_output: str
    var_dir: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def embedded_env(var_dir: Path) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "PROMETHEUS_MULTIPROC_DIR", "PORT"}
        and not name.startswith(("PYTEST_", "DJANGO_"))
    }
    env.update(
        SHOKTI_VAR_DIR=str(var_dir),
        DEMO_ADMIN_PASSWORD=ADMIN_PASSWORD,
        PORT=str(_free_port()),  # honcho hands it to the first process, web
        WEB_CONCURRENCY="1",
        CELERY_CONCURRENCY="1",
        PYTHONUNBUFFERED="1",
        CHANNELS_CONSOLE_FALLBACK="true",  # as `make run`: the demo has no SMS or WhatsApp accounts
        OPENAI_API_KEY="",  # the AI offline, whatever the developer's environment holds
    )
    return env


def manage(env: dict[str, str], *arguments: str) -> str:
    done = subprocess.run(
        [str(BIN / "python"), "manage.py", *arguments],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, f"manage.py {' '.join(arguments)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def wait_for(log: Path, pattern: str, seconds: float = STARTUP_SECONDS) -> re.Match:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        match = re.search(pattern, log.read_text(errors="replace"))
        if match:
            return match
        time.sleep(0.2)
    raise AssertionError(f"{pattern!r} did not appear in {seconds} s:\n{log.read_text(errors='replace')[-4000:]}")


@pytest.fixture(scope="session")
def embedded_stack(tmp_path_factory):
    """The Procfile running under honcho in embedded mode on the seeded demo. Stopped by PID."""
    folder = tmp_path_factory.mktemp("embedded")
    var_dir = folder / "var"
    env = embedded_env(var_dir)
    # make run's steps, in one process: each Django start costs seconds on a busy machine.
    seed_output = manage(
        env, "shell", "-c",
        "from django.core.management import call_command as run\n"
        "run('migrate', interactive=False, verbosity=0)\n"
        "run('seed_demo')\n"
        "run('collectstatic', interactive=False, verbosity=0)\n",
    )
    log = folder / "honcho.log"
    with log.open("w") as out:
        honcho = subprocess.Popen(
            [str(BIN / "honcho"), "start", "-f", "Procfile"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        port = wait_for(log, r"Listening at: http://127\.0\.0\.1:(\d+)").group(1)
        base_url = f"http://127.0.0.1:{port}"
        _wait_until_answering(f"{base_url}/health")
        yield EmbeddedStack(base_url=base_url, env=env, log=log, seed_output=seed_output, var_dir=var_dir)
    finally:
        children = [int(pid) for pid in re.findall(r"started \(pid=(\d+)\)", log.read_text(errors="replace"))]
        honcho.send_signal(signal.SIGTERM)  # honcho passes it on to web, workers and beat
        try:
            honcho.wait(timeout=30)
        except subprocess.TimeoutExpired:
            honcho.kill()
            honcho.wait()
        for pid in children:
            _stop(pid)


def _wait_until_answering(url: str) -> None:
    """The server listens before its worker has loaded Django; on a busy machine that takes a while."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        try:
            requests.get(url, timeout=REQUEST_SECONDS)
            return
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _stop(pid: int) -> None:
    """Make sure a child honcho started has exited (it should have, with honcho)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
