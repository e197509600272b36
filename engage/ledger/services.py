"""The job ledger: enqueue in the caller's transaction, dispatch on commit, claim, run, retry, replay.

Celery delivers at least once (acks_late, reject_on_worker_lost); the ledger
row makes it effectively once: a task claims its row with a conditional
UPDATE, so a duplicate or redelivered message finds nothing to do, and a row
left `processing` by a dead worker is reclaimed once its lease has expired: the
worker renews it while the handler runs (engage/ledger/leases.py), so that
is seconds after the worker died. See docs/jobs.md.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import socket
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from celery import current_app
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from crm.models import Company
from engage.ledger.leases import job_lease_duration, job_lease_held, job_lock_timeout
from engage.ledger.models import Job
from engage.ledger.registry import DEFAULT_QUEUE, JobPermanentError, default_priority, handler_for, handler_queue
from shokti.broker import TaskPublisher, TaskRun
from shokti.metrics import count

logger = logging.getLogger(__name__)

RETRYABLE_STATUSES = (Job.Status.QUEUED, Job.Status.FAILED)
JOB_MAX_ATTEMPTS = 5


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


LEDGER_PRIORITY_MAX = 100
CELERY_PRIORITY_STEPS = 10
# The one Celery task that runs ledger jobs (engage.ledger.tasks), published by name: the task module
# imports this one, so this one does not import it back.
JOB_RUN_TASK = "engage.job_run"


def job_priority_step(priority: int) -> int:
    """The Redis priority step of a 0-100 job priority: 90-100 → 0 (Redis serves 0 first), 0-9 → 9.

    On Redis, Celery emulates priorities with one list per step, steps 0-9, 0 taken first; the ledger
    keeps 0-100 with 100 first (see shokti/celery.py).
    """
    clamped = max(0, min(LEDGER_PRIORITY_MAX, int(priority)))
    step = min(CELERY_PRIORITY_STEPS - 1, clamped * CELERY_PRIORITY_STEPS // LEDGER_PRIORITY_MAX)
    return CELERY_PRIORITY_STEPS - 1 - step


def sql_value(value: Any) -> Any:
    """A parameter for raw SQL on either database (SQLite has no native datetimes or UUIDs)."""
    if isinstance(value, datetime):
        return connection.ops.adapt_datetimefield_value(value)
    if isinstance(value, uuid.UUID) and not connection.features.has_native_uuid_field:
        return value.hex
    return value


def job_dispatched_at(*, next_run_at: datetime, now: datetime) -> datetime | None:
    """When the broker message of a run due at `next_run_at` is delivered, or None if the relay must send it
    (a bulk writer of `queued_job_row` rows with a later `next_run_at` gives this as their `dispatched_at`)."""
    if (next_run_at - now).total_seconds() > _setting("JOBS_MAX_COUNTDOWN_SECONDS", 60):
        return None
    return max(next_run_at, now)


class Sql(str):
    """A SQL expression standing for a column's value in `job_insert_sql` (the caller's own parameters)."""


def queued_job_row(
    *,
    company_id: Any,
    task_name: Any,
    priority: Any,
    payload: Any,
    idempotency_key: Any,
    max_attempts: Any,
    next_run_at: Any,
    dispatched_at: Any,
    now: Any,
) -> dict[str, Any]:
    """Every column of a new, queued ledger row: the one place a job's row is described.

    `job_enqueue` inserts it, the inbound hot path's single statement inserts it with SQL expressions
    (`Sql`) for values it computes in the statement, and bulk writers build `Job(**row)`. A new
    column of `Job` gets its value for a queued job here, and every writer follows.
    """
    return {
        "company_id": company_id,
        "task_name": task_name,
        "priority": priority,
        "payload": payload,
        "idempotency_key": idempotency_key,
        "status": Job.Status.QUEUED.value,
        "attempts": 0,
        "max_attempts": max_attempts,
        "next_run_at": next_run_at,
        "dispatched_at": dispatched_at,
        "locked_by": "",
        "last_error": "",
        "created_at": now,
        "updated_at": now,
    }


def job_insert_sql(row: dict[str, Any]) -> tuple[str, str, list[Any]]:
    """(column list, value list, parameters) of an INSERT of `row`: `Sql` values go in as they are, the
    others as `%s` parameters (or, when every value is `Sql` or a constant, as SQL literals: a statement
    with named parameters cannot mix in positional ones)."""
    quote = connection.ops.quote_name
    is_literal = any(isinstance(value, Sql) for value in row.values())
    values, params = [], []
    for value in row.values():
        if isinstance(value, Sql):
            values.append(value)
        elif is_literal:
            values.append(_literal(value))
        else:
            values.append("%s")
            params.append(sql_value(json.dumps(value, cls=_JSONEncoder) if isinstance(value, dict) else value))
    return ", ".join(quote(column) for column in row), ", ".join(values), params


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool | int):
        return str(int(value))
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"Pass {value!r} as an Sql expression with a parameter of yours.")


def _job_row(
    *, company: Company | None, task_name: str, payload: dict[str, Any], idempotency_key: str,
    priority: int | None, max_attempts: int, run_at: datetime | None, now: datetime,
) -> dict[str, Any]:
    """A new job's row, its arguments checked."""
    if priority is None:
        priority = default_priority(task_name)
    if not 0 <= priority <= 100:
        raise ValidationError({"priority": "A job priority is 0-100."})
    if max_attempts < 1:
        raise ValidationError({"max_attempts": "At least one attempt."})
    if not idempotency_key or len(idempotency_key) > 200:
        raise ValidationError({"idempotency_key": "Required, at most 200 characters."})
    next_run_at = run_at or now
    return queued_job_row(
        company_id=company.pk if company is not None else None, task_name=task_name, priority=priority,
        payload=payload, idempotency_key=idempotency_key, max_attempts=max_attempts, next_run_at=next_run_at,
        dispatched_at=job_dispatched_at(next_run_at=next_run_at, now=now), now=now,
    )


def _job_inserted(*, pk: int, row: dict[str, Any], company: Company | None) -> Job:
    job = Job(pk=pk, **row)
    job.company = company
    job._state.adding = False
    return job


def job_enqueue(
    *,
    company: Company | None,
    task_name: str,
    payload: dict[str, Any],
    idempotency_key: str,
    priority: int | None = None,
    max_attempts: int = JOB_MAX_ATTEMPTS,
    run_at: datetime | None = None,
) -> Job:
    """Insert a job in the caller's transaction (a duplicate key returns the existing job); Celery gets it on commit."""
    row = _job_row(
        company=company, task_name=task_name, payload=payload, idempotency_key=idempotency_key,
        priority=priority, max_attempts=max_attempts, run_at=run_at, now=timezone.now(),
    )
    columns, values, params = job_insert_sql(row)
    # INSERT ... ON CONFLICT DO NOTHING: concurrent callers with the same key never both insert,
    # and nobody reads before writing.
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {connection.ops.quote_name(Job._meta.db_table)} ({columns}) VALUES ({values})"
            " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
            params,
        )
        inserted = cursor.fetchone()
    if inserted is None:
        return Job.objects.get(idempotency_key=idempotency_key)
    job = _job_inserted(pk=inserted[0], row=row, company=company)
    job_dispatch_on_commit(job=job)
    return job


def jobs_enqueue(*, company: Company | None, jobs: list[dict[str, Any]]) -> list[Job]:
    """`job_enqueue` of several jobs of one company in one INSERT (the AI reply's follow-up and summary):
    each of `jobs` holds job_enqueue's arguments but `company`; the jobs come back in that order, an
    existing one for a duplicate key (read in one more statement, only when there is one)."""
    now = timezone.now()
    rows = [
        _job_row(
            company=company, task_name=spec["task_name"], payload=spec["payload"],
            idempotency_key=spec["idempotency_key"], priority=spec.get("priority"),
            max_attempts=spec.get("max_attempts", JOB_MAX_ATTEMPTS), run_at=spec.get("run_at"), now=now,
        )
        for spec in jobs
    ]
    if not rows:
        return []
    all_values, all_params = [], []
    for row in rows:
        columns, values, params = job_insert_sql(row)
        all_values.append(f"({values})")
        all_params.extend(params)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {connection.ops.quote_name(Job._meta.db_table)} ({columns}) VALUES {', '.join(all_values)}"
            " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, idempotency_key",
            all_params,
        )
        inserted = dict((key, pk) for pk, key in cursor.fetchall())
    missing = [row["idempotency_key"] for row in rows if row["idempotency_key"] not in inserted]
    existing = Job.objects.in_bulk(missing, field_name="idempotency_key") if missing else {}
    created = {
        row["idempotency_key"]: _job_inserted(pk=inserted[row["idempotency_key"]], row=row, company=company)
        for row in rows if row["idempotency_key"] in inserted
    }
    jobs_dispatch_on_commit(jobs=list(created.values()))
    return [created.get(row["idempotency_key"]) or existing[row["idempotency_key"]] for row in rows]


class _JSONEncoder(json.JSONEncoder):
    def default(self, value):
        from django.core.serializers.json import DjangoJSONEncoder

        return DjangoJSONEncoder().default(value)


_dispatch_held: ContextVar[bool] = ContextVar("job_dispatch_held", default=False)


@contextlib.contextmanager
def job_dispatch_held() -> Iterator[None]:
    """Queue jobs without handing them to Celery: for a process that runs them itself as they are queued
    (seed_demo executes its jobs with `job_execute`; a worker would only find them done). A job left
    queued is published by the relay once it is due."""
    token = _dispatch_held.set(True)
    try:
        yield
    finally:
        _dispatch_held.reset(token)


def job_dispatch_on_commit(*, job: Job) -> None:
    """Hand the job to Celery once the surrounding transaction commits (no-op if it rolls back)."""
    jobs_dispatch_on_commit(jobs=[job])


def jobs_dispatch_on_commit(*, jobs: list[Job]) -> None:
    """Hand the jobs to Celery together once the surrounding transaction commits (on Redis one round trip
    for all of them: a campaign batch's sends, the relay's rows)."""
    if _dispatch_held.get() or not jobs:
        return
    runs = [JobRun(job.pk, job.priority, job.next_run_at, job.task_name) for job in jobs]
    transaction.on_commit(lambda: jobs_dispatch(runs))


# Celery's message for a job run, built once per queue and priority and stamped per job (shokti/broker.py).
_JOB_PUBLISHER = TaskPublisher(current_app, JOB_RUN_TASK)


class JobRun(NamedTuple):
    """A run of a job to publish: its id, ledger priority, when it is due (None: now) and task name."""

    job_id: int
    priority: int
    run_at: datetime | None = None
    task_name: str | None = None


def jobs_dispatch(runs: list[JobRun]) -> bool:
    """Publish one run of each job to its handler's queue; False (logged) if the broker is unreachable: the
    rows are marked undispatched and the 10-second reclaim publishes them once the broker is back. A run
    due later than JOBS_MAX_COUNTDOWN_SECONDS is not published: the relay dispatches its row when due."""
    now, max_countdown = timezone.now(), _setting("JOBS_MAX_COUNTDOWN_SECONDS", 60)
    publish: list[TaskRun] = []
    job_ids: list[int] = []
    for run in runs:
        countdown = max(0.0, (run.run_at - now).total_seconds()) if run.run_at is not None else 0.0
        if countdown > max_countdown:
            continue
        job_ids.append(run.job_id)
        publish.append(TaskRun(
            args=[run.job_id], queue=handler_queue(run.task_name) if run.task_name else DEFAULT_QUEUE,
            priority=job_priority_step(run.priority), countdown=countdown or None,
        ))
    if not publish:
        return True
    try:
        _JOB_PUBLISHER.publish_many(publish)
    except Exception as error:
        logger.warning("jobs %s not dispatched (%s); the relay will retry", _ids_text(job_ids), error)
        try:
            # Undispatched: the 10-second reclaim picks them up as soon as the broker answers again (one
            # delivered before a batch failed is claimed once: the claim decides, not the message).
            Job.objects.filter(pk__in=job_ids, status__in=RETRYABLE_STATUSES).update(dispatched_at=None)
        except DatabaseError:
            logger.warning("jobs %s could not be marked undispatched; the relay re-sends them after its timeout",
                           _ids_text(job_ids))
        return False
    return True


def _ids_text(job_ids: list[int]) -> str:
    return ", ".join(map(str, job_ids[:10])) + (f" and {len(job_ids) - 10} more" if len(job_ids) > 10 else "")


def job_claim(*, job_id: int, worker: str) -> Job | None:
    """Take the job for this worker, or None when it is not runnable (done, taken, not due, unknown)."""
    now = timezone.now()
    if connection.vendor == "postgresql":
        return _job_claim_returning(job_id=job_id, worker=worker, now=now)
    runnable = Q(status__in=RETRYABLE_STATUSES, next_run_at__lte=now) | _abandoned(now)
    # A conditional UPDATE: of two concurrent claims PostgreSQL lets exactly one match.
    claimed = Job.objects.filter(runnable, pk=job_id).update(
        status=Job.Status.PROCESSING,
        locked_at=now,
        locked_by=worker[:200],
        lease_expires_at=now + job_lease_duration(),
        attempts=F("attempts") + 1,
        started_at=now,
        updated_at=now,
    )
    if not claimed:
        return None
    return Job.objects.select_related("company").get(pk=job_id)


def _job_claim_returning(*, job_id: int, worker: str, now: datetime) -> Job | None:
    """job_claim on PostgreSQL in one round trip: the same conditional UPDATE, RETURNING the row and its company."""
    quote = connection.ops.quote_name
    job_fields, company_fields = list(Job._meta.concrete_fields), list(Company._meta.concrete_fields)
    table, companies = quote(Job._meta.db_table), quote(Company._meta.db_table)
    sql = (
        f"WITH claimed AS (UPDATE {table} SET status = %(processing)s, locked_at = %(now)s, locked_by = %(worker)s,"
        " lease_expires_at = %(lease)s, attempts = attempts + 1, started_at = %(now)s, updated_at = %(now)s"
        " WHERE id = %(id)s AND ((status = ANY(%(retryable)s) AND next_run_at <= %(now)s)"
        " OR (status = %(processing)s AND (lease_expires_at < %(now)s"
        " OR (lease_expires_at IS NULL AND locked_at < %(abandoned)s))))"
        f" RETURNING {', '.join(quote(field.column) for field in job_fields)})"
        f" SELECT {', '.join('claimed.' + quote(field.column) for field in job_fields)},"
        f" {', '.join('c.' + quote(field.column) for field in company_fields)}"
        f" FROM claimed LEFT JOIN {companies} c ON c.id = claimed.company_id"
    )
    params = {
        "processing": Job.Status.PROCESSING, "now": now, "worker": worker[:200], "id": job_id,
        "retryable": list(RETRYABLE_STATUSES), "abandoned": now - job_lock_timeout(),
        "lease": now + job_lease_duration(),
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    job = _from_row(Job, job_fields, row[: len(job_fields)])
    if job.company_id is not None:
        job.company = _from_row(Company, company_fields, row[len(job_fields):])
    return job


def _from_row(model, fields, values):
    """A model instance from raw column values, through each field's from_db_value (JSON fields) as the ORM does."""
    values = [
        field.from_db_value(value, None, connection) if value is not None and hasattr(field, "from_db_value") else value
        for field, value in zip(fields, values, strict=True)
    ]
    return model.from_db(connection.alias, [field.attname for field in fields], values)


def job_backoff(*, attempts: int) -> timedelta:
    """Exponential backoff with full jitter after the `attempts`-th failure."""
    base = float(_setting("JOBS_RETRY_BASE_SECONDS", 10))
    cap = float(_setting("JOBS_RETRY_MAX_SECONDS", 3600))
    ceiling = min(cap, base * 2 ** max(0, attempts - 1))
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))


def _abandoned(now: datetime) -> Q:
    """Processing rows whose run is presumed dead: its lease expired (or, claimed before leases, its lock is old)."""
    return Q(status=Job.Status.PROCESSING) & (
        Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True, locked_at__lt=now - job_lock_timeout())
    )


def _still_ours(job: Job):
    """The row as long as this run holds it: a reclaim by another run replaces locked_by and locked_at (fencing)."""
    return Job.objects.filter(pk=job.pk, status=Job.Status.PROCESSING, locked_by=job.locked_by, locked_at=job.locked_at)


def job_complete(*, job: Job, result: dict[str, Any] | None = None) -> bool:
    now = timezone.now()
    if connection.vendor == "postgresql" and job.locked_at is not None:
        updated = _job_complete_update(job=job, result=result, now=now)
    else:
        updated = _still_ours(job).update(
            status=Job.Status.COMPLETED, result=result, finished_at=now, updated_at=now, locked_at=None,
            locked_by="", lease_expires_at=None,
        )
    if updated:
        job.status, job.result, job.finished_at = Job.Status.COMPLETED, result, now
    return bool(updated)


def _job_complete_update(*, job: Job, result: dict[str, Any] | None, now: datetime) -> int:
    """job_complete's fenced UPDATE (`_still_ours`) written out on PostgreSQL: it runs once a job, and the ORM's
    compiling of it cost ~0.7 ms of CPU each time; the result goes through the field's own JSON preparation."""
    quote = connection.ops.quote_name
    result_field = Job._meta.get_field("result")
    sql = (
        f"UPDATE {quote(Job._meta.db_table)} SET status = %(completed)s, result = %(result)s, finished_at = %(now)s,"
        " updated_at = %(now)s, locked_at = NULL, locked_by = '', lease_expires_at = NULL"
        " WHERE id = %(id)s AND status = %(processing)s AND locked_by = %(locked_by)s AND locked_at = %(locked_at)s"
    )
    params = {
        "completed": Job.Status.COMPLETED, "processing": Job.Status.PROCESSING, "now": now, "id": job.pk,
        "result": None if result is None else result_field.get_db_prep_value(result, connection),
        "locked_by": job.locked_by, "locked_at": job.locked_at,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def job_fail(*, job: Job, error: BaseException | str, permanent: bool = False) -> Job.Status | None:
    """Record a failed attempt: retry later with backoff, or dead after max_attempts (or at once if permanent)."""
    message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    now = timezone.now()
    is_dead = permanent or job.attempts >= job.max_attempts
    status = Job.Status.DEAD if is_dead else Job.Status.FAILED
    next_run_at = now if is_dead else now + job_backoff(attempts=job.attempts)
    with transaction.atomic():
        updated = _still_ours(job).update(
            status=status,
            last_error=message[:10000],
            next_run_at=next_run_at,
            dispatched_at=None if is_dead else job_dispatched_at(next_run_at=next_run_at, now=now),
            finished_at=now if is_dead else None,
            locked_at=None,
            locked_by="",
            lease_expires_at=None,
            updated_at=now,
        )
        if not updated:
            return None
        job.status, job.last_error, job.next_run_at = status, message, next_run_at
        if not is_dead:
            job_dispatch_on_commit(job=job)
    if is_dead:
        logger.error("job %s (%s) is dead after %s attempts: %s", job.pk, job.task_name, job.attempts, message)
    return status


def _count_processed(task_name: str, outcome: str) -> None:
    count("jobs_processed_total", task=task_name, outcome=outcome)


def _on_fresh_connection(call, *args, **kwargs):
    """Run a ledger statement; if the connection was lost (PostgreSQL restarted, the backend was
    terminated), close it and run it once more on a new one. Only for statements safe to repeat:
    fenced or conditional updates that match nothing the second time if the first one took."""
    try:
        return call(*args, **kwargs)
    except (OperationalError, InterfaceError) as error:
        if connection.in_atomic_block:
            raise
        logger.warning("job ledger: database connection lost (%s); retrying on a new one", error)
        connection.close()
        return call(*args, **kwargs)


def job_execute(*, job_id: int, worker: str | None = None) -> str:
    """Claim and run one job; returns what happened: skipped, completed, failed or dead."""
    job = _on_fresh_connection(job_claim, job_id=job_id, worker=worker or f"{socket.gethostname()}")
    if job is None:
        return "skipped"
    with job_lease_held(job):
        try:
            handler = handler_for(job.task_name)
            result = handler.function(job)
        except Exception as error:
            logger.warning("job %s (%s) attempt %s failed: %s", job.pk, job.task_name, job.attempts, error, exc_info=True)
            if isinstance(error, OperationalError | InterfaceError) and not connection.in_atomic_block:
                connection.close()  # the handler's connection is gone: record the failure on a new one
            status = _on_fresh_connection(
                job_fail, job=job, error=error, permanent=bool(getattr(error, "permanent", False))
            )
            if status is not None:
                _count_processed(job.task_name, "dead" if status == Job.Status.DEAD else "retried")
            return str(status or "skipped")
        if result is not None and not isinstance(result, dict):
            result = {"value": result}
        # A handler may complete its job itself in the statement that records its work (SmartEngage's
        # engage.campaigns.smartengage.sending.message_send_queued):
        # it says so by leaving the job `completed`.
        if job.status == Job.Status.COMPLETED or _on_fresh_connection(job_complete, job=job, result=result):
            _count_processed(job.task_name, "succeeded")
    return "completed"


@transaction.atomic
def job_replay(*, job: Job) -> Job:
    """Run a dead, failed or cancelled job again from a fresh attempt count (an operator's explicit choice).

    The handler's `on_replay` first puts the job's records back where running it does its work (or
    refuses with a ValidationError that says why): a replay never "completes" having done nothing.
    """
    job = Job.objects.select_for_update().get(pk=job.pk)
    if job.status not in (Job.Status.DEAD, Job.Status.FAILED, Job.Status.CANCELLED):
        raise ValidationError(
            {"status": f"Only dead, failed or cancelled jobs can be replayed; this one is {job.status}."}
        )
    try:
        handler = handler_for(job.task_name)
    except JobPermanentError as error:
        raise ValidationError({"task_name": str(error)}) from None
    if handler.on_replay is not None:
        handler.on_replay(job)
    now = timezone.now()
    job.status = Job.Status.QUEUED
    job.attempts = 0
    job.next_run_at = now
    job.dispatched_at = now
    job.finished_at = None
    job.save(update_fields=["status", "attempts", "next_run_at", "dispatched_at", "finished_at", "updated_at"])
    job_dispatch_on_commit(job=job)
    return job


@transaction.atomic
def job_cancel(*, job: Job, reason: str = "Cancelled by an operator.") -> Job:
    """Stop a queued or failed job from running: `cancelled`, out of the dead-letter queue (a DLQ replay
    never revives it), replayable one by one on purpose."""
    job = Job.objects.select_for_update().get(pk=job.pk)
    if job.status not in (Job.Status.QUEUED, Job.Status.FAILED):
        raise ValidationError({"status": f"Only queued or failed jobs can be cancelled; this one is {job.status}."})
    job.status = Job.Status.CANCELLED
    job.last_error = reason
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "last_error", "finished_at", "updated_at"])
    return job


@dataclass(frozen=True)
class DlqReplay:
    """What `dlq_replay` did: the jobs queued again, and those refused with the reason."""

    replayed: list[int]
    refused: list[tuple[int, str]]


def dlq_replay(*, company: Company | None = None, max_jobs: int = 10) -> DlqReplay:
    """Replay up to `max_jobs` dead jobs (oldest first) of a company, or of all companies when None.

    A job its handler refuses to replay (see `job_replay`) is reported with the reason and left dead.
    """
    if not 1 <= max_jobs <= 1000:
        raise ValidationError({"max_jobs": "Between 1 and 1000."})
    replayed, refused = [], []
    with transaction.atomic():
        jobs = Job.objects.filter(status=Job.Status.DEAD)
        if company is not None:
            jobs = jobs.filter(company=company)
        job_ids = list(
            jobs.order_by("updated_at", "id").select_for_update(skip_locked=True).values_list("id", flat=True)[
                :max_jobs
            ]
        )
        for job_id in job_ids:
            try:
                with transaction.atomic():
                    replayed.append(job_replay(job=Job(pk=job_id)).pk)
            except ValidationError as error:
                refused.append((job_id, "; ".join(error.messages)))
    return DlqReplay(replayed=replayed, refused=refused)


WORKER_LOST_ERROR = "The worker running it stopped (killed or lost) on its last attempt, and attempts are used up."


def _relay(*, runnable: Q, now: datetime, batch_size: int, name: str) -> dict[str, int]:
    """Dispatch the rows matching `runnable` (SKIP LOCKED, highest priority first). An abandoned row
    with its attempts used up is dead instead: a job that kills its worker every time is not run for ever."""
    counts = {"redispatched": 0, "reclaimed": 0, "dead": 0}
    with transaction.atomic():
        rows = list(
            Job.objects.filter(runnable)
            .order_by("-priority", "next_run_at")
            .select_for_update(skip_locked=True)
            .values_list("id", "priority", "status", "task_name", "attempts", "max_attempts")[:batch_size]
        )
        exhausted = [row[0] for row in rows if row[2] == Job.Status.PROCESSING and row[4] >= row[5]]
        if exhausted:
            Job.objects.filter(pk__in=exhausted).update(
                status=Job.Status.DEAD, last_error=WORKER_LOST_ERROR, finished_at=now, locked_at=None, locked_by="",
                lease_expires_at=None, updated_at=now,
            )
            counts["dead"] = len(exhausted)
        dead_ids = set(exhausted)
        dispatch = [row for row in rows if row[0] not in dead_ids]
        if dispatch:
            Job.objects.filter(pk__in=[row[0] for row in dispatch]).update(dispatched_at=now)
        runs = []
        for job_id, priority, status, task_name, _, _ in dispatch:
            counts["reclaimed" if status == Job.Status.PROCESSING else "redispatched"] += 1
            runs.append(JobRun(job_id, priority, None, task_name))
        if runs:
            transaction.on_commit(lambda: jobs_dispatch(runs))
    if rows:
        logger.info("jobs %s: %s", name, counts)
    return counts


def jobs_relay(*, batch_size: int = 500) -> dict[str, int]:
    """Re-dispatch jobs whose broker message was lost or is due, and reclaim rows of dead workers."""
    now = timezone.now()
    dispatch_timeout = timedelta(seconds=settings.JOBS_DISPATCH_TIMEOUT_SECONDS)
    lost_or_due = Q(status__in=RETRYABLE_STATUSES, next_run_at__lte=now) & (
        Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=now - dispatch_timeout)
    )
    return _relay(runnable=lost_or_due | _abandoned(now), now=now, batch_size=batch_size, name="relay")


def jobs_reclaim(*, batch_size: int = 500) -> dict[str, int]:
    """The fast half of the relay (beat, every 10 s): jobs whose lease expired (their worker died) and
    due jobs never handed to the broker (a publish that failed, a delay longer than a countdown)."""
    now = timezone.now()
    undispatched = Q(status__in=RETRYABLE_STATUSES, next_run_at__lte=now, dispatched_at__isnull=True)
    return _relay(runnable=undispatched | _abandoned(now), now=now, batch_size=batch_size, name="reclaim")
