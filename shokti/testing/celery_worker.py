"""A pytest plugin: a real Celery worker (prefork) started by the test, and handlers for reliability tests.

`celery_worker_factory(broker_url=None, queues="default,io", pool="prefork", concurrency=2, **env)` starts
`celery -A shokti worker -Q default,io --pool prefork -c 2` as a subprocess against pytest-django's
test database (tests using it need `@pytest.mark.django_db(transaction=True)`: the worker is
another process and sees only committed rows), waits until it is ready and stops it by its
process group at teardown. `celery_worker` is one worker on the test Redis for a whole module.
`redis_server_factory()` starts a throw-away `redis-server` on a free port (outage tests).

The `reliability_*` job handlers below are imported by the worker (`--include`) and by the test
process (this plugin), so both know them; their payload tells them what to do.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest

from engage.ledger.registry import job_handler

WORKER_READY_TIMEOUT = 30.0
# Fast retries and short leases, so failures and reclaims happen within a test.
WORKER_ENV = {
    "JOBS_RETRY_BASE_SECONDS": "0.2",
    "JOBS_RETRY_MAX_SECONDS": "1",
    "JOBS_LOCK_TIMEOUT_SECONDS": "60",
    "JOBS_LEASE_SECONDS": "3",
    "JOBS_HEARTBEAT_SECONDS": "0.5",
    "CELERY_TASK_TIME_LIMIT": "60",
    "CELERY_TASK_SOFT_TIME_LIMIT": "55",
    "LOG_LEVEL": "INFO",
    "OPENAI_API_KEY": "",  # the AI runs offline (fallback replies) in the worker
}


# --- handlers used by the reliability tests -------------------------------------------


@job_handler("reliability_always_fails", priority=50)
def reliability_always_fails(job):
    """Fails until the file named by payload["pass_when_exists"] exists (if given)."""
    marker = job.payload.get("pass_when_exists")
    if marker and Path(marker).exists():
        return {"passed": True}
    raise RuntimeError(job.payload.get("error", "always fails"))


@job_handler("reliability_send_then_wait", priority=90)
def reliability_send_then_wait(job):
    """Sends one console message, notes its pid, then (first time only) waits to be killed."""
    from crm.models import Contact
    from engage.messaging.services import message_send

    calls = Path(job.payload["calls_file"])
    with calls.open("a") as handle:
        handle.write(f"{os.getpid()}\n")
    contact = Contact.objects.select_related("company").get(pk=job.payload["contact_id"])
    message = message_send(
        job=job, company=contact.company, contact=contact, lead=None, channel="console",
        body="Your technician arrives at 10:00.", agent_type="sales", message_type="reminder",
    )
    pid_file = Path(job.payload["pid_file"])
    if not pid_file.exists():
        pid_file.write_text(str(os.getpid()))
        time.sleep(float(job.payload.get("sleep", 30)))
    return {"message_id": message.pk}


# --- processes ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_database_url() -> str:
    from django.db import connection

    settings = connection.settings_dict
    user = quote(settings.get("USER") or "postgres")
    password = f":{quote(settings['PASSWORD'])}" if settings.get("PASSWORD") else ""
    host = settings.get("HOST") or "127.0.0.1"
    port = settings.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{settings['NAME']}"


test_database_url.__test__ = False  # a helper, not a test, when imported into a test module


class WorkerProcess:
    def __init__(self, process: subprocess.Popen, log_path: Path):
        self.process = process
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            # The worker and its prefork children share the process group we created for them.
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # children left behind, if any
        except ProcessLookupError:
            pass


def start_worker(
    *, broker_url: str, database_url: str, log_dir: Path, extra_env: dict[str, str] | None = None,
    queues: str = "default,io", pool: str = "prefork", concurrency: int = 2,
) -> WorkerProcess:
    env = {
        **os.environ,
        **WORKER_ENV,
        "DATABASE_URL": database_url,
        "REDIS_URL": broker_url,
        "CELERY_BROKER_URL": broker_url,
        **(extra_env or {}),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log_path = log_dir / f"worker-{time.monotonic_ns()}.log"
    command = [
        str(Path(sys.executable).parent / "celery"), "-A", "shokti", "worker", "-Q", queues, "--pool", pool,
        "-c", str(concurrency), "--without-gossip", "--without-mingle", "--without-heartbeat",
        "--include", "shokti.testing.celery_worker", "-n", f"reliability-{os.getpid()}-{time.monotonic_ns()}@%h",
        "--loglevel", "INFO",
    ]
    log_file = log_path.open("w")
    process = subprocess.Popen(
        command, stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=Path(__file__).resolve().parents[2],
        start_new_session=True,
    )
    worker = WorkerProcess(process, log_path)
    deadline = time.monotonic() + WORKER_READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"celery worker exited with {process.returncode}:\n{worker.log()}")
        if " ready." in worker.log():
            return worker
        time.sleep(0.1)
    worker.stop()
    raise RuntimeError(f"celery worker not ready after {WORKER_READY_TIMEOUT}s:\n{worker.log()}")


@contextmanager
def broker_for_this_process(broker_url: str) -> Iterator[None]:
    """Point this process's Celery app (the on_commit dispatch) at another broker for a while."""
    from kombu import pools

    from shokti.celery import app

    def reset() -> None:
        # Drop every pooled broker connection (kombu keeps them in a global registry).
        pools.reset()
        app._pool = None
        app.amqp._producer_pool = None

    previous = app.conf.broker_url
    reset()
    app.conf.broker_url = broker_url
    try:
        yield
    finally:
        reset()
        app.conf.broker_url = previous


class RedisServer:
    """A throw-away redis-server. `persistent`: with its append-only file, as production runs it, and stopped
    cleanly (SHUTDOWN), so a stop and start is a restart that keeps the broker's queues."""

    def __init__(self, port: int, directory: Path, *, persistent: bool = False):
        self.port = port
        self.directory = directory
        self.persistent = persistent
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes" if self.persistent else "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            if self.persistent:
                self.process.terminate()  # SHUTDOWN: the append-only file is complete
            else:
                self.process.kill()
            self.process.wait(timeout=20)
        self.process = None


@pytest.fixture
def redis_server_factory(tmp_path) -> Iterator:
    servers: list[RedisServer] = []

    def make() -> RedisServer:
        server = RedisServer(free_port(), tmp_path)
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def celery_worker_factory(django_db_setup, django_db_blocker, tmp_path) -> Iterator:
    workers: list[WorkerProcess] = []

    def make(
        *, broker_url: str | None = None, queues: str = "default,io", pool: str = "prefork", concurrency: int = 2,
        **extra_env: str,
    ) -> WorkerProcess:
        from django.conf import settings

        with django_db_blocker.unblock():
            database_url = test_database_url()
        worker = start_worker(
            broker_url=broker_url or settings.CELERY_BROKER_URL, database_url=database_url, log_dir=tmp_path,
            extra_env=extra_env, queues=queues, pool=pool, concurrency=concurrency,
        )
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        worker.stop()


@pytest.fixture(scope="module")
def celery_worker(django_db_setup, django_db_blocker) -> Iterator[WorkerProcess]:
    """One worker on the test Redis for the whole module; its queue is purged first."""
    from django.conf import settings

    from shokti.celery import app

    with django_db_blocker.unblock():
        database_url = test_database_url()
    app.control.purge()
    with tempfile.TemporaryDirectory() as directory:
        worker = start_worker(broker_url=settings.CELERY_BROKER_URL, database_url=database_url, log_dir=Path(directory))
        try:
            yield worker
        finally:
            worker.stop()


def wait_for(condition, *, timeout: float = 20.0, interval: float = 0.1, message: str = "condition", worker=None):
    """Poll `condition()` until it returns something truthy; fail the test after `timeout` (with the worker's log)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    log = f"\n--- worker log ---\n{worker.log()[-6000:]}" if worker is not None else ""
    pytest.fail(f"timed out after {timeout}s waiting for {message}{log}")
