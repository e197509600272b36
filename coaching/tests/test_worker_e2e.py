"""End to end on a real Celery worker with the fake OpenAI server: a run queued through the API is selected,
written by the model, sent on the worker's channel and recorded, in another process."""

import datetime as dt

import pytest

from coaching.models import CoachingRecipient, CoachingRun, CoachingSettings
from coaching.punctuality import local_today, punctuality_backfill
from coaching.tests.helpers import DHAKA, booking_of, worker_of
from engage.models import Message
from shokti.testing.celery_worker import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
TEXT = ("করিম ভাই, আপনার কাজের জন্য ধন্যবাদ। গত দুই সপ্তাহে তিনটি বুকিংয়ে একটু দেরি হয়েছে। "
        "দেরি হলে আগে গ্রাহককে জানালে সুবিধা হয়। কী কারণে দেরি হয়েছিল, জানাবেন?")


def test_a_run_on_a_real_worker_coaches_the_late_worker_with_the_models_text(
        company, key_client, fake_openai, celery_worker_factory):
    from shokti.celery import app

    app.control.purge()
    fake_openai.reply(TEXT)
    CoachingSettings.objects.update_or_create(company=company, defaults={
        "channel": "console", "holdout_percent": 0, "quiet_start_hour": 0, "quiet_end_hour": 0})
    late, punctual = worker_of(company, name="Karim Mia"), worker_of(company, name="Rahim")
    today = local_today(company)
    for days_ago in (1, 2, 3, 4):
        day = today - dt.timedelta(days=days_ago)
        at = dt.datetime(day.year, day.month, day.day, 11, tzinfo=DHAKA)
        booking_of(late, at, late_minutes=35 if days_ago < 4 else 0)
        booking_of(punctual, at)
    punctuality_backfill(company=company)
    worker = celery_worker_factory(OPENAI_BASE_URL=fake_openai.base_url, OPENAI_API_KEY="test")

    response = key_client.post("/internal/ai/coachnova/run", {}, format="json")
    assert response.status_code == 202
    run_id = response.json()["run_id"]

    wait_for(lambda: CoachingRun.objects.filter(pk=run_id, status="completed").exists(), timeout=90,
             message="the run to complete", worker=worker)
    wait_for(lambda: Message.objects.filter(agent_type="coachnova", status="sent").exists(), timeout=60,
             message="the message to be sent", worker=worker)
    rows = {row.worker_id: row for row in CoachingRecipient.objects.filter(run_id=run_id)}
    assert (rows[late.pk].status, rows[late.pk].ai_outcome, rows[late.pk].text) == ("coached", "ok", TEXT)
    assert (rows[punctual.pk].status, rows[punctual.pk].reason) == ("skipped", "on_time")
    [message] = Message.objects.filter(agent_type="coachnova")
    assert message.contact_id == late.contact_id and message.body == TEXT and message.channel == "console"
    assert len(fake_openai.requests) == 1
