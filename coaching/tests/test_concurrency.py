"""Under concurrency: two triggers at once make one run (the partial unique index), and two coachings of one
worker at once send one message (the worker caps, decided under the contact's lock)."""

import datetime as dt
import threading

import pytest
from django.db import connection

from coaching.models import CoachingRecipient, CoachingRun, CoachingSettings
from coaching.punctuality import punctuality_backfill
from coaching.runs import CoachingRunLocked, coaching_run_trigger, recipient_coach
from coaching.tests.helpers import booking_of, dhaka, worker_of
from engage.models import Message

pytestmark = pytest.mark.django_db(transaction=True)
TEXT = ("করিম ভাই, আপনার কাজের জন্য ধন্যবাদ। গত দুই সপ্তাহে তিনটি বুকিংয়ে একটু দেরি হয়েছে। "
        "দেরি হলে আগে গ্রাহককে জানালে সুবিধা হয়। কী কারণে দেরি হয়েছিল, জানাবেন?")


def in_threads(function, count: int) -> list:
    results, barrier = [], threading.Barrier(count)

    def target():
        try:
            barrier.wait()
            results.append(function())
        except Exception as error:  # collected: the test judges them
            results.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=target) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_simultaneous_triggers_make_one_run(company):
    results = in_threads(lambda: coaching_run_trigger(company=company, is_dry_run=True), 4)
    assert sum(isinstance(result, CoachingRun) for result in results) == 1
    assert sum(isinstance(result, CoachingRunLocked) for result in results) == 3
    assert CoachingRun.objects.count() == 1


def test_two_coachings_of_one_worker_at_once_send_one_message(company, fake_openai):
    fake_openai.reply(TEXT)
    CoachingSettings.objects.update_or_create(company=company, defaults={"channel": "console"})
    worker = worker_of(company, phone="+8801911000971", name="Karim Mia")
    for day in (20, 21, 22):
        booking_of(worker, dhaka(2026, 11, day), late_minutes=30)
    punctuality_backfill(company=company, as_of=dt.date(2026, 11, 30))
    rows = []
    for _ in range(2):  # two runs (one cancelled meanwhile) that both picked this worker
        run = CoachingRun.objects.create(company=company, as_of=dt.date(2026, 11, 30), status="cancelled",
                                         rules={"pattern_window_days": 14})
        rows.append(CoachingRecipient.objects.create(run=run, company=company, worker=worker, channel="console",
                                                     pattern_key=f"p{run.pk}", booking_ids=[]))

    results = in_threads(lambda rows=iter(rows): recipient_coach(
        recipient=CoachingRecipient.objects.select_related("run__company").get(pk=next(rows).pk)), 2)

    assert not [result for result in results if isinstance(result, Exception)], results
    assert sorted((row.status, row.reason) for row in results) == [("coached", ""), ("skipped", "capped")]
    assert Message.objects.filter(contact=worker.contact, agent_type="coachnova").count() == 1
