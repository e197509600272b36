"""GET /metrics: the business counters, in one process and summed over web workers and other processes."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.core.cache import cache
from django.test import Client

from engage.campaigns.attribution import user_event_record
from engage.campaigns.smartengage.pipeline import smartengage_reminder_send
from engage.messaging.services import message_status_update
from engage.models import Message
from engage.policy.consent import contact_opt_out
from engage.prompts.services import templates_seed_defaults
from engage.tests.campaign_helpers import AI_TEXT, customer_due
from shokti import metrics


def sample_value(text: str, name: str, labels: dict[str, str]) -> float | None:
    """The value of one sample in Prometheus text format (labels in any order), or None."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return None


def test_metrics_exposes_every_business_counter_after_incrementing():
    run = uuid.uuid4().hex[:8]  # counters are process-global: labels unique to this test
    metrics.ai_messages_sent_total.labels(
        agent_type=run, channel="email", message_type="reminder", status="sent"
    ).inc()
    metrics.ai_messages_delivered_total.labels(agent_type=run, channel="email").inc(2)
    metrics.ai_messages_failed_total.labels(agent_type=run, channel="sms", reason="provider_error").inc()
    metrics.user_events_total.labels(
        event_type="message_clicked", agent_type=run, channel="email", source="deeplink"
    ).inc(3)
    metrics.opt_outs_total.labels(channel="sms", reason=run).inc()
    metrics.jobs_processed_total.labels(task=run, outcome="succeeded").inc(4)
    metrics.campaign_recipients_skipped_total.labels(reason=run).inc(5)

    response = Client().get("/metrics")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    expected = [
        ("ai_messages_sent_total", {"agent_type": run, "channel": "email", "message_type": "reminder", "status": "sent"}, 1),
        ("ai_messages_delivered_total", {"agent_type": run, "channel": "email"}, 2),
        ("ai_messages_failed_total", {"agent_type": run, "channel": "sms", "reason": "provider_error"}, 1),
        (
            "user_events_total",
            {"event_type": "message_clicked", "agent_type": run, "channel": "email", "source": "deeplink"},
            3,
        ),
        ("opt_outs_total", {"channel": "sms", "reason": run}, 1),
        ("jobs_processed_total", {"task": run, "outcome": "succeeded"}, 4),
        ("campaign_recipients_skipped_total", {"reason": run}, 5),
    ]
    for name, labels, value in expected:
        assert sample_value(text, name, labels) == value, name
        assert re.search(rf"^# TYPE {name.removesuffix('_total')}(_total)? counter$", text, re.MULTILINE), name


def test_metrics_includes_django_request_metrics():
    Client().get("/health-that-does-not-exist")

    text = Client().get("/metrics").content.decode()

    assert "django_http_responses_total_by_status_total" in text


# --- multiprocess: web workers and other processes write to one folder ---------------------


@pytest.fixture
def multiprocess_dir(tmp_path) -> Path:
    folder = tmp_path / "prometheus"
    folder.mkdir()
    return folder


def _environment(multiprocess_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PROMETHEUS_MULTIPROC_DIR=str(multiprocess_dir),
        DJANGO_SETTINGS_MODULE="shokti.settings",
        # The probes below touch neither; keep the children off the test database.
        DATABASE_URL=os.environ.get("DATABASE_URL", ""),
    )
    return {key: value for key, value in env.items() if value}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def web_server(multiprocess_dir):
    """The web server as the Procfile starts it (`python -m shokti.web`), 2 workers, on a free port."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "shokti.web"],
        cwd=settings.BASE_DIR,
        env={**_environment(multiprocess_dir), "PORT": str(port), "WEB_CONCURRENCY": "2", "WEB_ACCESS_LOG": "false"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        # Generous: a worker boots Django in ~2 s, but far slower on a loaded 2-core machine.
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(f"{base_url}/metrics", timeout=5).status_code == 200:
                    break
            except requests.RequestException:  # not listening yet, or workers still booting
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the web server did not start: {process.stderr.read().decode()[-2000:]}")
            time.sleep(0.2)
        yield base_url
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_metrics_are_summed_over_web_workers_and_other_processes(web_server, multiprocess_dir):
    from concurrent.futures import ThreadPoolExecutor

    # given: 24 requests, 8 at a time, shared by the server's 2 workers
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(
            lambda _: requests.get(f"{web_server}/api/no-such-endpoint/", timeout=120).status_code, range(24)
        ))
    assert statuses == [404] * 24
    # and a process outside the server (as a Celery worker is) counting jobs into the same folder
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from shokti.metrics import jobs_processed_total; "
            "jobs_processed_total.labels(task='probe', outcome='succeeded').inc(3)",
        ],
        cwd=settings.BASE_DIR,
        env=_environment(multiprocess_dir),
        check=True,
        timeout=60,
    )

    # when
    text = requests.get(f"{web_server}/metrics", timeout=120).text

    # then
    writers = {path.stem.rsplit("_", 1)[1] for path in multiprocess_dir.glob("counter_*.db")}
    assert len(writers) >= 2, writers  # the server's worker(s) + the job process
    assert sample_value(text, "django_http_responses_total_by_status_total", {"status": "404"}) == 24
    assert sample_value(text, "jobs_processed_total", {"task": "probe", "outcome": "succeeded"}) == 3


def test_metrics_drop_the_live_gauges_of_processes_that_are_gone(multiprocess_dir, monkeypatch):
    from prometheus_client import Gauge
    from prometheus_client.values import MultiProcessValue

    # given: a live gauge written by a process that has exited, and one by this process
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(multiprocess_dir))
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    registry = __import__("prometheus_client").CollectorRegistry()
    for pid in (gone.pid, os.getpid()):
        monkeypatch.setattr("prometheus_client.values.ValueClass", MultiProcessValue(lambda pid=pid: pid))
        Gauge(f"probe_in_flight_{pid}", "probe", multiprocess_mode="livesum", registry=registry).set(1)
    assert len(list(multiprocess_dir.glob("gauge_livesum_*.db"))) == 2

    # when
    metrics.registry_for_export()

    # then
    assert [path.name for path in multiprocess_dir.glob("gauge_livesum_*.db")] == [f"gauge_livesum_{os.getpid()}.db"]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_celery_worker_process_counts_into_the_multiprocess_folder(multiprocess_dir, tmp_path, monkeypatch):
    from engage.ledger.services import job_enqueue
    from engage.models import Job
    from shokti.testing import celery_worker  # registers the reliability_* handlers here too

    # given: a real prefork worker writing its metrics to the folder
    command = [
        str(Path(sys.executable).with_name("celery")), "-A", "shokti", "worker", "-Q", "default",
        "--pool", "prefork", "-c", "2", "--without-gossip", "--without-mingle", "--without-heartbeat",
        "--include", "shokti.testing.celery_worker", "-n", f"metrics-{uuid.uuid4().hex[:8]}@%h",
        "--loglevel", "INFO",
    ]
    env = {
        **_environment(multiprocess_dir),
        **celery_worker.WORKER_ENV,
        "DATABASE_URL": celery_worker.test_database_url(),
    }
    log_path = tmp_path / "worker.log"
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            command, stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=settings.BASE_DIR,
            start_new_session=True,
        )
    worker = celery_worker.WorkerProcess(process, log_path)
    try:
        deadline = time.monotonic() + 30
        while " ready." not in worker.log():
            assert process.poll() is None and time.monotonic() < deadline, worker.log()[-3000:]
            time.sleep(0.1)
        marker = tmp_path / "pass"
        marker.touch()

        # when: the ledger hands it a job that succeeds
        job = job_enqueue(
            company=None,
            task_name="reliability_always_fails",
            payload={"pass_when_exists": str(marker)},
            idempotency_key=f"metrics-{uuid.uuid4()}",
        )
        deadline = time.monotonic() + 30
        while Job.objects.get(pk=job.pk).status != Job.Status.COMPLETED:
            assert time.monotonic() < deadline, worker.log()[-3000:]
            time.sleep(0.1)
    finally:
        worker.stop()

    # then: /metrics of a process in multiprocess mode sums the worker child's count
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(multiprocess_dir))
    text = Client().get("/metrics").content.decode()
    assert sample_value(text, "jobs_processed_total", {"task": "reliability_always_fails", "outcome": "succeeded"}) == 1


# --- the seed's counters move where their events happen ------------------------------------------


def exported(client: Client, name: str, labels: dict[str, str]) -> float:
    return sample_value(client.get("/metrics").content.decode(), name, labels) or 0.0


@pytest.mark.django_db
def test_the_seed_counters_move_where_their_events_happen_and_are_exported_with_their_labels(company, fake_openai):
    # given a SmartEngage reminder to send on the console channel, and one to a second customer
    cache.clear()
    templates_seed_defaults(company=company)
    fake_openai.reply(AI_TEXT)
    first, second = customer_due(company), customer_due(company)
    client = Client()
    ai = {"agent_type": "smartengage", "channel": "console"}
    series = {
        "sent": ("ai_messages_sent_total", {**ai, "message_type": "reminder", "status": "sent"}),
        "delivered": ("ai_messages_delivered_total", ai),
        "failed": ("ai_messages_failed_total", {**ai, "reason": "undelivered"}),
        "clicked": (
            "user_events_total", {"event_type": "message_clicked", **ai, "source": "app"},
        ),
        "opted_out": ("opt_outs_total", {"channel": "sms", "reason": "request"}),
        "generated": ("ai_generations_total", {"agent_type": "smartengage", "outcome": "ok"}),
    }
    before = {key: exported(client, name, labels) for key, (name, labels) in series.items()}

    # when: two reminders go out, one is delivered, the other fails at the provider, the first is
    # clicked, and the second customer opts out of SMS
    messages = []
    for customer in (first, second):
        outcome = smartengage_reminder_send(company=company, customer=customer, channel="console")
        assert outcome.status == "sent", outcome
        messages.append(outcome.message_id)
    delivered, undelivered = Message.objects.filter(pk__in=messages).order_by("pk")
    for message, status in ((delivered, "delivered"), (undelivered, "failed")):
        message_status_update(
            company_id=company.pk, channel="console", provider_message_id=message.provider_message_id, status=status
        )
    user_event_record(company=company, event_type="message_clicked", correlation_id=delivered.correlation_id)
    assert contact_opt_out(contact=second.contact, channel="sms", reason="request")
    assert not contact_opt_out(contact=second.contact, channel="sms", reason="request")  # already out: not counted

    # then /metrics shows each series moved by exactly its events
    after = {key: exported(client, name, labels) for key, (name, labels) in series.items()}
    assert {key: after[key] - before[key] for key in series} == {
        "sent": 2, "delivered": 1, "failed": 1, "clicked": 1, "opted_out": 1, "generated": 2,
    }
