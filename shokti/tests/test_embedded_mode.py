"""`make run`'s embedded mode end to end: no DATABASE_URL/REDIS_URL, a SQLite file and Celery's
filesystem broker in a tmp var dir; migrate (schedules included), seed_demo, collectstatic,
then the Procfile under honcho (web on gunicorn, worker, whatsapp_web worker, beat).
The slow test of the suite (30-60 s).
"""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ADMIN_PASSWORD = "embedded-demo-pass"
STARTUP_SECONDS = 90
REQUEST_SECONDS = 30

pytestmark = pytest.mark.slow


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
        PORT="0",  # honcho hands it to the first process, web: gunicorn binds an ephemeral port
        WEB_CONCURRENCY="1",
        CELERY_CONCURRENCY="1",
        PYTHONUNBUFFERED="1",
    )
    return env


def manage(env: dict[str, str], *arguments: str) -> str:
    done = subprocess.run(
        [str(BIN / "python"), "manage.py", *arguments],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False,
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


@pytest.fixture
def embedded_stack(tmp_path):
    """The Procfile running under honcho in embedded mode; yields (base URL, env, log). Stopped by PID."""
    var_dir = tmp_path / "var"
    env = embedded_env(var_dir)
    # make run's steps, in one process: each Django start costs seconds on a busy machine.
    seed_output = manage(
        env, "shell", "-c",
        "from django.core.management import call_command as run\n"
        "run('migrate', interactive=False, verbosity=0)\n"
        "run('seed_demo', customers=30, bookings_per_customer=3)\n"
        "run('collectstatic', interactive=False, verbosity=0)\n",
    )
    log = tmp_path / "honcho.log"
    with log.open("w") as out:
        honcho = subprocess.Popen(
            [str(BIN / "honcho"), "start", "-f", "Procfile"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        port = wait_for(log, r"Listening at: http://127\.0\.0\.1:(\d+)").group(1)
        base_url = f"http://127.0.0.1:{port}"
        _wait_until_answering(f"{base_url}/health")
        yield base_url, env, log, seed_output
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
    """gunicorn listens before its worker has loaded Django; on a busy machine that takes a while."""
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


def test_embedded_mode_serves_health_admin_with_demo_data_and_runs_tasks(embedded_stack):
    base_url, env, log, seed_output = embedded_stack
    assert "admin@shokti.local" in seed_output
    assert not (ROOT / "control").exists()  # the broker's files stay in the var dir

    # /health: the SQLite database and the filesystem broker answer
    health = requests.get(f"{base_url}/health", timeout=REQUEST_SECONDS)
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok"
    assert {"database", "broker"} <= set(body["checks"])
    assert "failing" not in body

    # the admin login form, then the demo data behind it
    session = requests.Session()
    login_page = session.get(f"{base_url}/admin/login/", timeout=REQUEST_SECONDS)
    assert login_page.status_code == 200
    assert 'name="username"' in login_page.text and 'name="password"' in login_page.text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page.text).group(1)
    logged_in = session.post(
        f"{base_url}/admin/login/?next=/admin/crm/company/",
        data={"csrfmiddlewaretoken": token, "username": "admin@shokti.local", "password": ADMIN_PASSWORD},
        headers={"Referer": f"{base_url}/admin/login/"},
        timeout=REQUEST_SECONDS,
    )
    assert logged_in.status_code == 200
    assert logged_in.url.endswith("/admin/crm/company/")
    assert "Sheba Home Services (demo)" in logged_in.text
    assert "Shikkha Courses (demo)" in logged_in.text

    # a task sent in embedded mode travels through the filesystem broker and runs on the worker
    wait_for(log, r"default@\S+ ready")
    sent = manage(
        env, "shell", "-c",
        "from shokti.celery import app; print(app.send_task('celery.accumulate', args=['embedded-ok']).id)",
    )
    task_id = sent.strip().splitlines()[-1]
    wait_for(log, rf"Task celery\.accumulate\[{task_id}\] succeeded in [0-9.]+s: \('embedded-ok',\)", seconds=30)
