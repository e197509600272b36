"""seed_demo gives CoachNova something to show: punctuality for the demo workers (varied), two past runs with what
late workers received and answered, and an impact labelled as seeded; a second seed adds nothing."""

import io

import pytest
from django.core.management import call_command
from django.utils import timezone

from coaching.models import CoachingRecipient, CoachingRun, WorkerPunctuality

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def demo_settings(settings, tmp_path, monkeypatch):
    settings.VAR_DIR = tmp_path
    monkeypatch.delenv("DEMO_ADMIN_PASSWORD", raising=False)


def seed() -> str:
    out = io.StringIO()
    call_command("seed_demo", "--now", timezone.now().date().isoformat(), "--customers", "40", stdout=out)
    return out.getvalue()


def test_the_demo_has_varied_punctuality_and_seeded_runs_with_replies():
    output = seed()

    rates = [row.on_time_rate_28 for row in WorkerPunctuality.objects.exclude(on_time_rate_28=None)]
    assert len(rates) >= 4 and max(rates) - min(rates) >= 30  # some workers are punctual, some are not
    runs = list(CoachingRun.objects.filter(is_seeded=True))
    assert len(runs) == 2 and all(run.impact["is_seeded"] and run.impact["estimate"] is not None for run in runs)
    coached = CoachingRecipient.objects.filter(status="coached")
    assert coached.exclude(text="").count() == coached.count() > 0
    assert coached.exclude(reply_reason="").exists() and CoachingRecipient.objects.filter(status="holdout").exists()
    assert "SEEDED" in output

    seed()
    assert CoachingRun.objects.count() == 2 and CoachingRecipient.objects.count() == sum(
        run.recipients.count() for run in runs)
