"""Job leases: a claim holds its job for JOBS_LEASE_SECONDS, the worker's heartbeat renews it, an expired
lease is reclaimed (by the 10-second reclaim) and the old run can no longer record anything.

Both claim paths are exercised: PostgreSQL's one-round-trip UPDATE ... RETURNING and the portable twin.
"""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from engage.ledger.leases import LeaseKeeper
from engage.ledger.registry import IO_QUEUE, handler_queue, job_handler
from engage.ledger.services import (
    JobRun,
    job_claim,
    job_complete,
    job_enqueue,
    job_execute,
    job_fail,
    jobs_dispatch,
    jobs_reclaim,
    jobs_relay,
)
from engage.models import Job
from shokti.testing.celery_worker import broker_for_this_process, free_port

RUNS: list[tuple[int, str]] = []
HELD = threading.Event()


@job_handler("lease_test_ok", priority=70)
def _ok(job):
    RUNS.append((job.pk, job.locked_by))
    return {"ok": True}


@job_handler("lease_test_slow", priority=70)
def _slow(job):
    HELD.set()
    time.sleep(float(job.payload["seconds"]))
    return {"slept": job.payload["seconds"]}


def enqueue(company, key="lease-1", task_name="lease_test_ok", **kwargs):
    return job_enqueue(company=company, task_name=task_name, payload=kwargs.pop("payload", {}), idempotency_key=key,
                       **kwargs)


@pytest.fixture(params=["postgresql", "portable"])
def claim_path(request, monkeypatch):
    """Run the test on PostgreSQL's RETURNING claim, then on the portable conditional UPDATE."""
    if request.param == "portable":
        monkeypatch.setattr(connection, "vendor", "portable")
    return request.param


@pytest.mark.django_db
def test_a_claim_takes_a_lease_of_jobs_lease_seconds(company, settings, claim_path):
    settings.JOBS_LEASE_SECONDS = 30
    job = enqueue(company)
    before = timezone.now()

    claimed = job_claim(job_id=job.pk, worker="w1")

    row = Job.objects.get(pk=job.pk)
    assert claimed.locked_by == "w1" and row.status == "processing"
    assert before + timedelta(seconds=30) <= row.lease_expires_at <= timezone.now() + timedelta(seconds=30)
    assert claimed.lease_expires_at == row.lease_expires_at


@pytest.mark.django_db
def test_a_live_lease_keeps_the_job_and_an_expired_one_lets_another_run_take_it(company, claim_path):
    job = enqueue(company)
    first = job_claim(job_id=job.pk, worker="first")

    # while the lease runs, a redelivered message or the relay's copy finds nothing to do
    assert job_claim(job_id=job.pk, worker="second") is None
    assert jobs_reclaim() == {"redispatched": 0, "reclaimed": 0, "dead": 0}

    # the first worker died: its lease runs out, and the next claim takes the job over
    Job.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    second = job_claim(job_id=job.pk, worker="second")
    assert second is not None and second.attempts == 2

    # the first run, if it was only frozen, can record nothing: completion and failure are fenced
    assert job_complete(job=first, result={"by": "first"}) is False
    assert job_fail(job=first, error="late") is None
    assert job_complete(job=second, result={"by": "second"}) is True
    row = Job.objects.get(pk=job.pk)
    assert (row.status, row.result, row.lease_expires_at, row.locked_by) == ("completed", {"by": "second"}, None, "")


@pytest.mark.django_db
def test_a_row_claimed_before_leases_existed_is_reclaimed_after_the_lock_timeout(company, settings, claim_path):
    settings.JOBS_LOCK_TIMEOUT_SECONDS = 60
    job = enqueue(company)
    Job.objects.filter(pk=job.pk).update(status="processing", locked_by="old", locked_at=timezone.now(),
                                         lease_expires_at=None)
    assert job_claim(job_id=job.pk, worker="new") is None

    Job.objects.filter(pk=job.pk).update(locked_at=timezone.now() - timedelta(seconds=61))
    assert job_claim(job_id=job.pk, worker="new").locked_by == "new"


@pytest.mark.django_db
def test_the_reclaim_hands_out_expired_leases_and_failed_publishes_and_buries_jobs_that_kill_their_worker(
    company, django_capture_on_commit_callbacks, monkeypatch
):
    from engage.ledger import services as ledger_services

    now = timezone.now()
    alive = enqueue(company, key="alive")
    expired = enqueue(company, key="expired")
    unpublished = enqueue(company, key="unpublished")
    published = enqueue(company, key="published")
    later = enqueue(company, key="later", run_at=now + timedelta(minutes=5))
    poison = enqueue(company, key="poison", max_attempts=2)
    Job.objects.filter(pk=alive.pk).update(status="processing", locked_by="a", locked_at=now,
                                           lease_expires_at=now + timedelta(seconds=20))
    Job.objects.filter(pk=expired.pk).update(status="processing", locked_by="b", locked_at=now - timedelta(seconds=40),
                                             lease_expires_at=now - timedelta(seconds=10), attempts=1)
    Job.objects.filter(pk=unpublished.pk).update(dispatched_at=None)
    Job.objects.filter(pk=poison.pk).update(status="processing", locked_by="c", locked_at=now - timedelta(minutes=1),
                                            lease_expires_at=now - timedelta(seconds=5), attempts=2)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        counts = jobs_reclaim()

    assert counts == {"redispatched": 1, "reclaimed": 1, "dead": 1}
    (publish,) = callbacks  # both rows in one publish (one round trip to Redis)
    handed = []
    monkeypatch.setattr(ledger_services._JOB_PUBLISHER, "publish_many", handed.extend)
    publish()
    assert sorted(run.args[0] for run in handed) == sorted([expired.pk, unpublished.pk])
    poison.refresh_from_db()
    assert (poison.status, poison.locked_by, poison.lease_expires_at) == ("dead", "", None)
    assert "stopped (killed or lost)" in poison.last_error
    assert Job.objects.get(pk=unpublished.pk).dispatched_at is not None
    # a published job, a job not due and a live lease are the relay's (or nobody's) business
    assert Job.objects.get(pk=published.pk).status == "queued"
    assert Job.objects.get(pk=later.pk).dispatched_at is None
    assert Job.objects.get(pk=alive.pk).locked_by == "a"
    # the reclaimed job runs on its next delivery
    RUNS.clear()
    assert job_execute(job_id=expired.pk, worker="new") == "completed"
    assert RUNS == [(expired.pk, "new")]
    # the slower relay agrees: nothing left for it
    assert jobs_relay() == {"redispatched": 0, "reclaimed": 0, "dead": 0}


@pytest.mark.django_db
def test_the_heartbeat_renews_only_its_own_runs_and_not_past_the_lock_timeout(company, settings):
    settings.JOBS_LEASE_SECONDS = 30
    settings.JOBS_LOCK_TIMEOUT_SECONDS = 600
    now = timezone.now()
    mine, stolen, ancient = (enqueue(company, key=key) for key in ("mine", "stolen", "ancient"))
    for job in (mine, stolen, ancient):
        Job.objects.filter(pk=job.pk).update(status="processing", locked_by="me", locked_at=now,
                                             lease_expires_at=now + timedelta(seconds=1))
    Job.objects.filter(pk=ancient.pk).update(locked_at=now - timedelta(seconds=601))
    keeper = LeaseKeeper(autostart=False)  # renewed by hand below, no thread
    for job in (mine, stolen, ancient):
        keeper.hold(Job.objects.get(pk=job.pk))
    # another run reclaimed `stolen` meanwhile
    Job.objects.filter(pk=stolen.pk).update(locked_by="thief", locked_at=timezone.now())

    assert keeper.renew() == 1

    leases = dict(Job.objects.filter(pk__in=[mine.pk, stolen.pk, ancient.pk]).values_list("pk", "lease_expires_at"))
    assert leases[mine.pk] >= now + timedelta(seconds=29)
    assert leases[stolen.pk] < now + timedelta(seconds=2)
    assert leases[ancient.pk] < now + timedelta(seconds=2)
    assert set(keeper.held()) == {mine.pk, stolen.pk}  # a run past the lock timeout is let go


@pytest.mark.django_db(transaction=True)
def test_a_job_running_longer_than_its_lease_keeps_it_through_the_heartbeat(company, settings):
    # given a one-second lease renewed every 0.2 s, and a handler that runs for three seconds
    settings.JOBS_LEASE_SECONDS = 1
    settings.JOBS_HEARTBEAT_SECONDS = 0.2
    job = enqueue(company, task_name="lease_test_slow", payload={"seconds": 3})
    HELD.clear()
    outcome = []
    runner = threading.Thread(target=lambda: (outcome.append(job_execute(job_id=job.pk, worker="w")),
                                              connection.close()))
    runner.start()
    assert HELD.wait(10)

    # then no other run can take it while it runs, however long past its first lease
    taken = []
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:
        taken.append(job_claim(job_id=job.pk, worker="thief"))
        time.sleep(0.25)
    runner.join(10)

    assert taken and all(claim is None for claim in taken)
    assert outcome == ["completed"]
    row = Job.objects.get(pk=job.pk)
    assert (row.status, row.attempts, row.result) == ("completed", 1, {"slept": 3})


def test_io_bound_handlers_go_to_the_io_queue_and_campaign_runs_stay_on_prefork():
    assert {name: handler_queue(name) for name in (
        "ai_engage", "manual_reply", "followup_bumpup", "ai_summary", "opt_out_confirmation", "email_sequence",
        "sequence_step", "smartengage_send", "webhook_reminder",
    )} == dict.fromkeys((
        "ai_engage", "manual_reply", "followup_bumpup", "ai_summary", "opt_out_confirmation", "email_sequence",
        "sequence_step", "smartengage_send", "webhook_reminder",
    ), IO_QUEUE)
    assert handler_queue("smartengage_campaign_run") == "default"
    assert handler_queue("no_such_task") == "default"


@pytest.mark.django_db
def test_a_publish_that_fails_leaves_the_job_to_the_next_reclaim(company, django_capture_on_commit_callbacks):
    job = enqueue(company)
    assert Job.objects.get(pk=job.pk).dispatched_at is not None

    with broker_for_this_process(f"redis://127.0.0.1:{free_port()}/0"):
        assert jobs_dispatch([JobRun(job.pk, job.priority, None, job.task_name)]) is False

    assert Job.objects.get(pk=job.pk).dispatched_at is None
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert jobs_reclaim()["redispatched"] == 1
    assert len(callbacks) == 1
