"""Settings read from the environment in a fresh process: the file email backend's folder, the metrics folder."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_django(code: str, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "shokti.settings", **env}
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120, check=False,
    )


def test_email_file_path_a_missing_metrics_folder_and_seeded_counters_in_a_fresh_process(tmp_path):
    metrics_dir = tmp_path / "not" / "made" / "yet"
    emails_dir = tmp_path / "emails"

    done = run_django(
        "from django.conf import settings; from django.core.mail import send_mail;"
        " import prometheus_client; from shokti.metrics import registry_for_export;"
        " send_mail('hello', 'body', 'a@example.test', ['b@example.test']);"
        " print(prometheus_client.generate_latest(registry_for_export()).decode());"
        " print(settings.EMAIL_FILE_PATH)",
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
        EMAIL_FILE_PATH=str(emails_dir),
    )

    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == str(emails_dir)
    assert len(list(emails_dir.iterdir())) == 1
    assert metrics_dir.is_dir() and any(metrics_dir.iterdir())  # the counters' files are in it
    # the business counters exist at 0 from start-up, summed across processes like any other value
    for series in (
        'ai_messages_delivered_total{agent_type="sales",channel="whatsapp_cloud"} 0.0',
        'ai_messages_failed_total{agent_type="smartengage",channel="sms",reason="undelivered"} 0.0',
        'ai_messages_sent_total{agent_type="sales",channel="whatsapp_web",message_type="reply",status="sent"} 0.0',
        'jobs_processed_total{outcome="dead",task="ai_engage"} 0.0',
        'campaign_recipients_skipped_total{reason="daily_cap"} 0.0',
        'throttle_fail_open_total{scope="api_key"} 0.0',
    ):
        assert series in done.stdout, series
