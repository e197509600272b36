"""What DevOps scrape and alert on: the background gauges on /metrics, and the alert rules and dashboard in ops/.

promtool (Debian's `prometheus` package, installed by `make test`'s services step) checks the Prometheus
config and rules and runs the rules' own unit tests (ops/prometheus/alerts_test.yml); every metric the
rules and the Grafana dashboard read must be one that /metrics really exports.
"""

import datetime as dt
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from engage.api import job_enqueue
from engage.models import Job
from shokti import liveness
from shokti.tests.test_metrics import sample_value

OPS = Path(__file__).resolve().parents[2] / "ops"
METRIC = re.compile(r"\b((?:shokti|ai|jobs|user|opt|campaign|cache|throttle|django)_[a-z0-9_]+)\b")


def promtool(*args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("promtool")
    assert binary, "promtool is missing: `make services` installs Debian's prometheus package"
    return subprocess.run([binary, *args], cwd=OPS / "prometheus", capture_output=True, text=True, timeout=60)


def test_promtool_accepts_the_config_and_rules_and_the_rules_pass_their_unit_tests():
    for args in (("check", "config", "prometheus.yml"), ("check", "rules", "alerts.yml"),
                 ("test", "rules", "alerts_test.yml")):
        done = promtool(*args)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
    assert "SUCCESS" in promtool("test", "rules", "alerts_test.yml").stdout


def read_expressions() -> list[str]:
    rules = yaml.safe_load((OPS / "prometheus" / "alerts.yml").read_text())
    expressions = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    dashboard = json.loads((OPS / "grafana" / "dashboards" / "shokti.json").read_text())
    expressions += [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    return expressions


@pytest.mark.django_db
def test_every_metric_the_alerts_and_the_dashboard_read_is_exported():
    Client().get("/health")  # one request, so django-prometheus's response series exist
    exported = {sample.name for family in _families(Client().get("/metrics").content.decode())
                for sample in family.samples}
    read = {name for expression in read_expressions() for name in METRIC.findall(expression)}

    assert len(read) >= 12
    assert read <= exported, sorted(read - exported)


def _families(text: str):
    from prometheus_client.parser import text_string_to_metric_families

    return list(text_string_to_metric_families(text))


@pytest.mark.django_db
def test_the_background_gauges_say_which_queues_have_workers_when_beat_ticked_and_how_old_the_oldest_job_is(
    company, settings
):
    cache.clear()
    settings.HEALTH_REQUIRED_QUEUES = ["default", "io"]
    liveness.worker_beat(name="io@test", queues=["io"])
    liveness.beat_tick_note.__globals__["_beat_last_noted"] = 0.0
    liveness.beat_tick_note()
    job = job_enqueue(company=company, task_name="webhook_deliver", payload={}, idempotency_key="gauge-test")
    Job.objects.filter(pk=job.pk).update(next_run_at=timezone.now() - dt.timedelta(seconds=120))

    text = Client().get("/metrics").content.decode()

    assert sample_value(text, "shokti_workers_alive", {"queue": "io"}) == 1
    assert sample_value(text, "shokti_workers_alive", {"queue": "default"}) == 0
    assert 0 <= sample_value(text, "shokti_beat_last_tick_age_seconds", {}) < 30
    assert 119 <= sample_value(text, "shokti_jobs_oldest_queued_age_seconds", {}) < 180


@pytest.mark.django_db
def test_with_nothing_alive_and_nothing_queued_the_gauges_read_so(settings):
    cache.clear()
    settings.HEALTH_REQUIRED_QUEUES = ["default", "io"]

    text = Client().get("/metrics").content.decode()

    assert sample_value(text, "shokti_workers_alive", {"queue": "io"}) == 0
    assert sample_value(text, "shokti_beat_last_tick_age_seconds", {}) == -1
    assert sample_value(text, "shokti_jobs_oldest_queued_age_seconds", {}) == 0


def test_a_gauge_that_cannot_be_read_is_left_out_and_the_counters_still_export(monkeypatch):
    # no database access allowed here: the job gauge's query fails, the scrape still answers
    text = Client().get("/metrics")

    assert text.status_code == 200
    body = text.content.decode()
    assert "shokti_jobs_oldest_queued_age_seconds" not in body
    assert "jobs_processed_total" in body


def test_the_observability_profile_mounts_files_that_exist():
    compose = yaml.safe_load((OPS.parent / "docker-compose.yml").read_text())
    services = {name: service for name, service in compose["services"].items()
                if "observability" in service.get("profiles", [])}

    assert set(services) == {"prometheus", "grafana"}
    for service in services.values():
        for volume in service["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (OPS.parent / source).exists(), source
