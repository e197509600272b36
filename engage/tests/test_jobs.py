"""The job ledger in one process: enqueue, claim, retry, dead letters, replay, cancel, relay, webhook_reminder."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from engage.ledger.registry import JobPermanentError, handler_for, job_handler
from engage.ledger.services import (
    dlq_replay,
    job_backoff,
    job_cancel,
    job_claim,
    job_dispatch_held,
    job_enqueue,
    job_execute,
    job_priority_step,
    job_replay,
    jobs_relay,
)
from engage.models import Job

CALLS: list[int] = []


@job_handler("test_ok", priority=70)
def _ok(job):
    CALLS.append(job.pk)
    return {"echo": job.payload.get("value")}


@job_handler("test_boom", priority=50)
def _boom(job):
    raise RuntimeError("provider exploded")


@job_handler("test_permanent", priority=50)
def _permanent(job):
    raise JobPermanentError("address does not exist")


def enqueue(company, task_name="test_ok", key="k1", **kwargs):
    return job_enqueue(company=company, task_name=task_name, payload=kwargs.pop("payload", {"value": 1}),
                       idempotency_key=key, **kwargs)


@pytest.mark.django_db
def test_enqueue_inserts_a_queued_job_with_the_handler_priority_and_dispatches_on_commit(
    company, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = enqueue(company)

    job.refresh_from_db()
    assert (job.company, job.task_name, job.priority, job.status, job.attempts, job.max_attempts) == (
        company, "test_ok", 70, "queued", 0, 5
    )
    assert job.payload == {"value": 1}
    assert len(callbacks) == 1


@pytest.mark.django_db
def test_jobs_queued_while_dispatch_is_held_go_to_the_relay_not_to_celery(
    company, settings, django_capture_on_commit_callbacks
):
    # given: a process that runs its jobs itself (seed_demo) holds the dispatch
    settings.JOBS_DISPATCH_TIMEOUT_SECONDS = 60
    with django_capture_on_commit_callbacks(execute=False) as callbacks, job_dispatch_held():
        ran = enqueue(company, key="ran")
        left = enqueue(company, key="left")
        assert job_execute(job_id=ran.pk, worker="here") == "completed"
    assert callbacks == []

    # when: the one it left queued is still due after the dispatch timeout
    Job.objects.filter(pk=left.pk).update(dispatched_at=timezone.now() - timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        counts = jobs_relay()

    # then: the relay publishes it (and only it); outside the hold, dispatch works as before
    assert counts == {"redispatched": 1, "reclaimed": 0, "dead": 0} and len(callbacks) == 1
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        enqueue(company, key="after")
    assert len(callbacks) == 1


@pytest.mark.django_db
def test_seed_task_names_have_handlers_with_seed_priorities():
    expected = {"ai_engage": 100, "followup_bumpup": 95, "ai_summary": 90, "sequence_step": 70,
                "email_sequence": 60, "webhook_reminder": 50}
    assert {name: handler_for(name).priority for name in expected} == expected


@pytest.mark.django_db
def test_enqueue_same_key_returns_the_first_job_and_dispatches_nothing_more(
    company, django_capture_on_commit_callbacks
):
    first = enqueue(company, payload={"value": 1})

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        again = enqueue(company, payload={"value": 2})

    assert again.pk == first.pk and again.payload == {"value": 1}
    assert Job.objects.count() == 1 and callbacks == []


@pytest.mark.django_db(transaction=True)
def test_enqueue_rolled_back_with_its_transaction_leaves_nothing(company):
    with pytest.raises(RuntimeError), transaction.atomic():
        enqueue(company)
        raise RuntimeError("the caller failed")

    assert Job.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("kwargs, field", [({"priority": 101}, "priority"), ({"priority": -1}, "priority"),
                                           ({"max_attempts": 0}, "max_attempts"), ({"key": ""}, "idempotency_key")])
def test_enqueue_rejects_bad_arguments(company, kwargs, field):
    with pytest.raises(ValidationError) as error:
        enqueue(company, **kwargs)
    assert field in error.value.message_dict
    assert Job.objects.count() == 0


def test_priority_steps_put_p1_first_on_redis():
    assert [job_priority_step(p) for p in (100, 95, 90, 70, 60, 50, 0)] == [0, 0, 0, 2, 3, 4, 9]


@pytest.mark.django_db
def test_execute_runs_the_handler_once_and_records_completion(company):
    job = enqueue(company)
    CALLS.clear()

    assert job_execute(job_id=job.pk, worker="w1") == "completed"
    assert job_execute(job_id=job.pk, worker="w2") == "skipped"  # a redelivered message

    job.refresh_from_db()
    assert CALLS == [job.pk]
    assert (job.status, job.attempts, job.result, job.locked_by) == ("completed", 1, {"echo": 1}, "")
    assert job.finished_at is not None


@pytest.mark.django_db
def test_claim_is_exclusive_and_respects_next_run_at(company):
    job = enqueue(company)
    later = enqueue(company, key="later", run_at=timezone.now() + timedelta(minutes=5))

    assert job_claim(job_id=job.pk, worker="a") is not None
    assert job_claim(job_id=job.pk, worker="b") is None
    assert job_claim(job_id=later.pk, worker="a") is None
    assert job_claim(job_id=123456789, worker="a") is None


@pytest.mark.django_db
def test_claim_returns_the_claimed_row_with_its_company_in_one_round_trip(company, django_assert_num_queries):
    job = enqueue(company, payload={"value": 7, "nested": {"a": [1, 2]}})

    with django_assert_num_queries(1):
        claimed = job_claim(job_id=job.pk, worker="w1")
        assert claimed.company.name == company.name  # loaded with the claim, no lazy read

    stored = Job.objects.get(pk=job.pk)
    assert (claimed.pk, claimed.status, claimed.attempts, claimed.locked_by) == (job.pk, "processing", 1, "w1")
    assert claimed.payload == {"value": 7, "nested": {"a": [1, 2]}} == stored.payload
    assert (claimed.locked_at, claimed.started_at, claimed.task_name) == (
        stored.locked_at, stored.started_at, stored.task_name
    )
    assert claimed.locked_at is not None
    no_company = job_enqueue(company=None, task_name="test_ok", payload={}, idempotency_key="k-none")
    claimed = job_claim(job_id=no_company.pk, worker="w1")
    assert (claimed.company_id, claimed.company) == (None, None)


@job_handler("test_self_completing", priority=70)
def _self_completing(job):
    # What message_send_queued does: completes its job in the statement that records its work.
    Job.objects.filter(pk=job.pk, locked_by=job.locked_by).update(status="completed", result={"own": True},
                                                                   locked_by="", locked_at=None)
    job.status = Job.Status.COMPLETED
    return {"own": True}


@pytest.mark.django_db
def test_a_handler_that_completed_its_job_itself_is_counted_once_and_not_completed_again(company):
    from shokti.metrics import jobs_processed_total

    job = enqueue(company, task_name="test_self_completing")
    before = jobs_processed_total.labels(task="test_self_completing", outcome="succeeded")._value.get()

    assert job_execute(job_id=job.pk, worker="w1") == "completed"

    job.refresh_from_db()
    assert (job.status, job.result, job.locked_by) == ("completed", {"own": True}, "")
    assert job.finished_at is None  # job_complete did not run a second time over the handler's write
    assert jobs_processed_total.labels(task="test_self_completing", outcome="succeeded")._value.get() == before + 1


@pytest.mark.django_db
def test_failure_retries_with_backoff_then_dead_after_max_attempts(company, settings):
    settings.JOBS_RETRY_BASE_SECONDS = 10
    job = enqueue(company, task_name="test_boom", max_attempts=3)

    before = timezone.now()
    assert job_execute(job_id=job.pk) == "failed"
    job.refresh_from_db()
    assert (job.status, job.attempts, job.last_error) == ("failed", 1, "RuntimeError: provider exploded")
    assert before + timedelta(seconds=5) <= job.next_run_at <= timezone.now() + timedelta(seconds=10)
    assert job_execute(job_id=job.pk) == "skipped"  # not due yet

    for expected in ("failed", "dead"):
        Job.objects.filter(pk=job.pk).update(next_run_at=timezone.now())
        assert job_execute(job_id=job.pk) == expected
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("dead", 3)
    assert job_execute(job_id=job.pk) == "skipped"


def test_backoff_grows_exponentially_with_jitter_and_is_capped(settings):
    settings.JOBS_RETRY_BASE_SECONDS = 10
    settings.JOBS_RETRY_MAX_SECONDS = 100
    for attempts, ceiling in [(1, 10), (2, 20), (3, 40), (4, 80), (5, 100), (12, 100)]:
        delays = {job_backoff(attempts=attempts).total_seconds() for _ in range(20)}
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
        assert len(delays) > 1


@pytest.mark.django_db
def test_permanent_error_goes_dead_at_once(company):
    job = enqueue(company, task_name="test_permanent")

    assert job_execute(job_id=job.pk) == "dead"

    job.refresh_from_db()
    assert (job.status, job.attempts, job.last_error) == ("dead", 1, "JobPermanentError: address does not exist")


@pytest.mark.django_db
def test_unknown_task_name_is_dead_with_a_clear_error(company):
    job = enqueue(company, task_name="no_such_task")

    assert job_execute(job_id=job.pk) == "dead"

    job.refresh_from_db()
    assert "No handler is registered for job task 'no_such_task'" in job.last_error


@pytest.mark.django_db
def test_replay_requeues_a_dead_job_and_it_runs_again(company, django_capture_on_commit_callbacks):
    job = enqueue(company, task_name="test_permanent")
    job_execute(job_id=job.pk)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job_replay(job=job)

    job.refresh_from_db()
    assert (job.status, job.attempts) == ("queued", 0)
    assert len(callbacks) == 1
    assert job_execute(job_id=job.pk) == "dead"
    job.refresh_from_db()
    assert job.attempts == 1


@pytest.mark.django_db
def test_replay_and_cancel_refuse_jobs_in_the_wrong_state(company):
    job = enqueue(company)
    job_execute(job_id=job.pk)

    with pytest.raises(ValidationError):
        job_replay(job=job)
    with pytest.raises(ValidationError):
        job_cancel(job=job)
    job.refresh_from_db()
    assert job.status == "completed"


@pytest.mark.django_db
def test_cancel_stops_a_queued_job(company):
    job = enqueue(company)
    CALLS.clear()

    job_cancel(job=job, reason="Customer called to cancel.")

    assert job_execute(job_id=job.pk) == "skipped"
    job.refresh_from_db()
    assert (job.status, job.last_error) == ("cancelled", "Customer called to cancel.") and CALLS == []


@pytest.mark.django_db
def test_a_cancelled_job_stays_out_of_the_dead_letter_replay_but_can_be_replayed_on_purpose(company):
    dead = enqueue(company, task_name="test_permanent", key="dead")
    job_execute(job_id=dead.pk)
    cancelled = enqueue(company, key="cancelled")
    job_cancel(job=cancelled)

    assert dlq_replay(company=company, max_jobs=10).replayed == [dead.pk]
    cancelled.refresh_from_db()
    assert cancelled.status == "cancelled"

    job_replay(job=cancelled)
    CALLS.clear()
    assert job_execute(job_id=cancelled.pk) == "completed"
    assert len(CALLS) == 1


@pytest.mark.django_db
def test_dlq_replay_takes_the_oldest_dead_jobs_of_one_company_only(company, other_company):
    mine = [enqueue(company, task_name="test_permanent", key=f"m{i}") for i in range(3)]
    theirs = enqueue(other_company, task_name="test_permanent", key="t1")
    for job in [*mine, theirs]:
        job_execute(job_id=job.pk)

    replayed = dlq_replay(company=company, max_jobs=2)

    assert replayed.replayed == [mine[0].pk, mine[1].pk] and replayed.refused == []
    statuses = dict(Job.objects.values_list("pk", "status"))
    assert [statuses[j.pk] for j in mine] == ["queued", "queued", "dead"]
    assert statuses[theirs.pk] == "dead"


@pytest.mark.django_db
def test_relay_redispatches_lost_and_due_jobs_and_reclaims_abandoned_ones(
    company, settings, django_capture_on_commit_callbacks, monkeypatch
):
    from engage.ledger import services as ledger_services

    settings.JOBS_DISPATCH_TIMEOUT_SECONDS = 60
    settings.JOBS_LOCK_TIMEOUT_SECONDS = 120
    now = timezone.now()
    fresh = enqueue(company, key="fresh")
    lost = enqueue(company, key="lost")
    due_retry = enqueue(company, key="due")
    future = enqueue(company, key="future", run_at=now + timedelta(hours=2))
    abandoned = enqueue(company, key="abandoned")
    busy = enqueue(company, key="busy")
    Job.objects.filter(pk=lost.pk).update(dispatched_at=now - timedelta(minutes=5))
    Job.objects.filter(pk=due_retry.pk).update(status="failed", next_run_at=now - timedelta(seconds=1), dispatched_at=None)
    Job.objects.filter(pk=abandoned.pk).update(status="processing", locked_at=now - timedelta(minutes=10), locked_by="dead")
    Job.objects.filter(pk=busy.pk).update(status="processing", locked_at=now, locked_by="alive")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        counts = jobs_relay()

    assert counts == {"redispatched": 2, "reclaimed": 1, "dead": 0}
    (publish,) = callbacks  # the three rows in one publish
    handed = []
    monkeypatch.setattr(ledger_services._JOB_PUBLISHER, "publish_many", handed.extend)
    publish()
    assert sorted(run.args[0] for run in handed) == sorted([lost.pk, due_retry.pk, abandoned.pk])
    assert future.dispatched_at is None and fresh.dispatched_at is not None
    # the reclaimed job's next run takes it over
    CALLS.clear()
    assert job_execute(job_id=abandoned.pk, worker="new") == "completed"
    assert job_execute(job_id=busy.pk, worker="new") == "skipped"
    assert CALLS == [abandoned.pk]
    # relayed rows are not sent again before the timeout
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert jobs_relay() == {"redispatched": 0, "reclaimed": 0, "dead": 0}


@pytest.mark.django_db
def test_a_late_finish_of_a_reclaimed_job_does_not_overwrite_the_new_run(company, settings):
    from engage.ledger.services import job_complete

    job = enqueue(company)
    first = job_claim(job_id=job.pk, worker="slow")
    # the slow run's worker stopped renewing its lease: another run claims the job
    Job.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    second = job_claim(job_id=job.pk, worker="fast")

    assert job_complete(job=second, result={"by": "fast"}) is True
    assert job_complete(job=first, result={"by": "slow"}) is False
    job.refresh_from_db()
    assert (job.result, job.attempts) == ({"by": "fast"}, 2)


# --- webhook_reminder against a local receiver that checks the signature ---------------------


@pytest.fixture
def receiver(webhook_receiver):
    return webhook_receiver


@pytest.mark.django_db
def test_webhook_reminder_posts_a_signed_event_that_the_receiver_verifies(company, receiver):
    server = receiver()
    company.webhook_url, company.webhook_secret = server.url, "whsec-test"
    company.save()
    job = enqueue(company, task_name="webhook_reminder", key="booking-9-reminder",
                  payload={"event": "booking.reminder", "data": {"booking_id": 9}})

    assert job_execute(job_id=job.pk) == "completed"

    [(event, is_valid, headers, _)] = server.received
    assert is_valid is True
    assert event["type"] == "booking.reminder" and event["data"] == {"booking_id": 9}
    assert event["company_id"] == company.pk and event["id"] == "booking-9-reminder"
    assert headers["Content-Type"] == "application/json"
    job.refresh_from_db()
    assert job.status == "completed" and job.result == {"status_code": 200}


@pytest.mark.django_db
@pytest.mark.parametrize("status", [500, 404])
def test_webhook_reminder_non_2xx_is_retried(company, receiver, status):
    server = receiver(status=status)
    company.webhook_url, company.webhook_secret = server.url, "whsec-test"
    company.save()
    job = enqueue(company, task_name="webhook_reminder")

    assert job_execute(job_id=job.pk) == "failed"

    job.refresh_from_db()
    assert f"HTTP {status}" in job.last_error


@pytest.mark.django_db
def test_webhook_reminder_with_a_wrong_secret_is_rejected_by_the_receiver(company, receiver):
    server = receiver(secret="the-real-one")
    company.webhook_url, company.webhook_secret = server.url, "an-old-one"
    company.save()
    job = enqueue(company, task_name="webhook_reminder")

    assert job_execute(job_id=job.pk) == "failed"
    assert server.received[0].is_valid is False


@pytest.mark.django_db
def test_webhook_reminder_without_url_is_dead_at_once(company):
    job = enqueue(company, task_name="webhook_reminder")

    assert job_execute(job_id=job.pk) == "dead"
    job.refresh_from_db()
    assert "no webhook URL" in job.last_error


@pytest.mark.django_db
def test_webhook_reminder_to_a_closed_port_is_retried(company):
    from shokti.testing.celery_worker import free_port

    company.webhook_url, company.webhook_secret = f"http://127.0.0.1:{free_port()}/", "s"
    company.save()
    job = enqueue(company, task_name="webhook_reminder")

    assert job_execute(job_id=job.pk) == "failed"
