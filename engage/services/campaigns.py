"""Campaign runs: trigger (queued through the ledger), execute (one at a time per campaign), cancel, retry.

One run at a time per campaign, across any number of beat and worker processes, twice over:
- a partial unique constraint allows one queued-or-running run per campaign, so a second trigger
  is recorded as a `locked` run at once (and reported so);
- the execution holds a PostgreSQL session advisory lock on the campaign while it works, so even a
  redelivered or reclaimed job of the same run cannot execute it in two processes at the same time
  (a process that dies drops its connection, and PostgreSQL frees the lock with it).
A run works in time slices (`run_slice_seconds()`, under the task's time limit): each slice is one
ledger job that walks the segment after the run's keyset cursor, moves the cursor with each batch,
and queues the next slice's job when its time is up; the run stays running until its last slice.
A slice that crashes midway is resumed by its ledger job's retry after the cursor: people who
already have an intent in this campaign cycle are left out by the segmentation and by the
recipients' unique constraint, so nobody gets a second reminder.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime as dt
import functools
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from concurrent.futures.thread import BrokenThreadPool
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, connections, transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from crm.models import Company, Customer, User
from engage.models import Campaign, CampaignRecipient, CampaignRun, Job
from engage.services.jobs import job_cancel, job_enqueue, job_replay, sql_value

if TYPE_CHECKING:
    from engage.services.smartengage import RecipientRow

logger = logging.getLogger(__name__)

RUN_TASK = "smartengage_campaign_run"
# pg_try_advisory_lock(namespace, campaign id): the namespace keeps our keys apart from other locks.
ADVISORY_LOCK_NAMESPACE = 0x53_45  # "SE"
INTENT_STATUSES = (CampaignRecipient.Status.PENDING, CampaignRecipient.Status.SENT, CampaignRecipient.Status.FAILED)
RUN_MAX_ATTEMPTS = 3
# A run job's working time before it queues the next slice: well under the soft time limit (540 s).
DEFAULT_CAMPAIGN_NAME = "SmartEngage daily"


@dataclasses.dataclass
class CampaignLock:
    """A held (or not) campaign advisory lock; truthy while held."""

    campaign_id: int
    is_held: bool

    def __bool__(self) -> bool:
        return self.is_held

    def release(self) -> None:
        if self.is_held and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [ADVISORY_LOCK_NAMESPACE, self.campaign_id])
        self.is_held = False


@contextlib.contextmanager
def campaign_lock(*, campaign_id: int) -> Iterator[CampaignLock]:
    """Try the campaign's lock (PostgreSQL session advisory lock); the lock is truthy when this process holds it."""
    if connection.vendor != "postgresql":
        # The embedded SQLite mode runs one worker: the one-active-run constraint is enough there.
        yield CampaignLock(campaign_id=campaign_id, is_held=True)
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [ADVISORY_LOCK_NAMESPACE, campaign_id])
        lock = CampaignLock(campaign_id=campaign_id, is_held=bool(cursor.fetchone()[0]))
    try:
        yield lock
    finally:
        lock.release()


SMARTENGAGE_DISABLED = "SmartEngage is switched off in this company's engagement policy."


class SmartEngageDisabled(ValidationError):
    """The company's engagement policy switches SmartEngage off: no run is queued or executed."""

    def __init__(self) -> None:
        super().__init__({"smartengage": SMARTENGAGE_DISABLED})


def campaign_smartengage_check(*, company: Company) -> None:
    """SmartEngageDisabled when the company's policy switches SmartEngage off."""
    from engage.policy import policy_for

    if not policy_for(company=company).is_smartengage_enabled:
        raise SmartEngageDisabled()


def _preset_snapshot(*, campaign: Campaign, preset_name: str | None) -> dict[str, Any]:
    from engage.policy import policy_for

    name = preset_name or campaign.preset
    try:
        preset = policy_for(company=campaign.company).preset(name)
    except KeyError:
        raise ValidationError({"preset": f"Unknown campaign preset {name!r}."}) from None
    return dataclasses.asdict(preset)


def campaign_run_trigger(
    *,
    campaign: Campaign,
    is_dry_run: bool = False,
    trigger: str = CampaignRun.Trigger.ADMIN,
    actor: User | None = None,
    preset_name: str | None = None,
    promo_code: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> CampaignRun:
    """Queue a run (its ledger job runs it); while another run is queued or running, the new one is `locked`.

    SmartEngageDisabled (a ValidationError) when the company's policy switches SmartEngage off.
    """
    campaign_smartengage_check(company=campaign.company)
    preset = {**_preset_snapshot(campaign=campaign, preset_name=preset_name), **(overrides or {})}
    fields = {
        "company_id": campaign.company_id,
        "campaign": campaign,
        "preset": preset,
        "promo_code": campaign.promo_code if promo_code is None else promo_code,
        "is_dry_run": is_dry_run,
        "trigger": trigger,
        "triggered_by": actor,
    }
    try:
        with transaction.atomic():
            run = CampaignRun.objects.create(status=CampaignRun.Status.QUEUED, **fields)
            run.job = job_enqueue(
                company=campaign.company,
                task_name=RUN_TASK,
                payload={"run_id": run.pk},
                idempotency_key=f"{RUN_TASK}:{run.pk}",
                max_attempts=RUN_MAX_ATTEMPTS,
            )
            run.save(update_fields=["job"])
            return run
    except IntegrityError:
        now = timezone.now()
        return CampaignRun.objects.create(
            status=CampaignRun.Status.LOCKED,
            error="Another run of this campaign is queued or running.",
            started_at=now,
            finished_at=now,
            **fields,
        )


def campaign_run_counts_refresh(*, run_id: int) -> dict[str, int]:
    """Recount a run's sent/failed/skipped/rendered from its recipients (one aggregate query)."""
    statuses = CampaignRecipient.Status
    counts = CampaignRecipient.objects.filter(run_id=run_id).aggregate(
        sent=Count("pk", filter=Q(status=statuses.SENT)),
        failed=Count("pk", filter=Q(status=statuses.FAILED)),
        skipped=Count("pk", filter=Q(status=statuses.SKIPPED)),
        rendered=Count("pk", filter=Q(status=statuses.DRY_RUN)),
    )
    CampaignRun.objects.filter(pk=run_id).update(**counts)
    return counts


class _SegmentBatch(list):
    """A batch of the run's customers, with `last_id`: the last customer id its segment read covered."""

    last_id: int


@dataclasses.dataclass
class _Walk:
    """One walk of a run's segment: its criteria, clock and zone list, fixed for the walk."""

    run: CampaignRun
    criteria: Any
    now: Any
    zones: tuple[str, ...]
    cursor: int  # the last customer id done (the run's cursor)
    deadline: float  # time.monotonic() after which no new batch is started
    is_exhausted: bool = False  # the segment was walked to its end


def _walk_start(*, run: CampaignRun) -> _Walk:
    """The segment is read over the whole day; the send window is applied per customer, in their own
    time zone, by the sender, so those outside it are recorded as skipped (and tried again by a later run)."""
    from engage.segmentation import SegmentCriteria, contact_zones

    preset = run.preset
    criteria = SegmentCriteria(
        cadence_days=preset["cadence_days"],
        window_days=preset.get("window_days", 7),
        send_window_start_hour=0,
        send_window_end_hour=24,
        channel=run.campaign.channel,
    )
    return _Walk(
        run=run, criteria=criteria, now=timezone.now(), zones=contact_zones(company=run.campaign.company, refresh=True),
        cursor=run.cursor, deadline=time.monotonic() + run_slice_seconds(),
    )


def _batch_size(*, run: CampaignRun) -> int:
    """The preset's batch (the sends a batch's model calls are for); a dry run reads at least
    SMARTENGAGE_DRY_RUN_BATCH_SIZE at a time: nothing waits for a model there, and each batch costs a
    segment query, a skip INSERT, a history query and a COPY (1M customers: 560/s in batches of 100,
    743/s in batches of 1,000)."""
    size = int(run.preset["batch_size"])
    return max(size, int(settings.SMARTENGAGE_DRY_RUN_BATCH_SIZE)) if run.is_dry_run else size


def _eligible_batches(*, walk: _Walk) -> Iterator[_SegmentBatch]:
    """The campaign's eligible customers after the walk's cursor a batch at a time, without anyone who has
    an intent in this cycle; no new batch once the slice's time is up (after its first batch)."""
    from engage.segmentation import customer_segment_batches

    run = walk.run
    company = run.campaign.company
    batches = customer_segment_batches(
        company=company, criteria=walk.criteria, batch_size=_batch_size(run=run), now=walk.now,
        after_id=walk.cursor, zones=walk.zones,
    )
    has_yielded = False
    while not (has_yielded and time.monotonic() >= walk.deadline):
        batch = next(batches, None)
        if batch is None:
            walk.is_exhausted = True
            return
        # The segment's customers come with their contacts: one more query finds who has an intent in
        # this cycle (the segment read is not repeated), and both get the run's company object.
        already = set(
            CampaignRecipient.objects.filter(
                campaign_id=run.campaign_id, customer_id__in=[customer.pk for customer in batch],
                status__in=INTENT_STATUSES,
            ).values_list("customer_id", "cycle_started_at")
        )
        customers = _SegmentBatch(customer for customer in batch if (customer.pk, customer.last_booking_at) not in already)
        customers.last_id = batch[-1].pk
        for customer in customers:
            customer.company = company
            customer.contact.company = company
        if customers:
            has_yielded = True
            yield customers


def _skips_record(*, walk: _Walk, after_id: int, upto_id: int | None) -> dict[str, int]:
    """Record the customers of `(after_id, upto_id]` the segment's rules left out, as skipped recipients
    with their reason (no consent, no address, too soon, daily cap, weekly cap); counts them in metrics.

    One INSERT ... SELECT over `customer_segment_skips` (the segment's own rules): nobody who has an
    intent in this campaign cycle or was already reminded in it (they are not this run's recipients).
    """
    from engage.segmentation import custom_plans, customer_segment_skips
    from shokti.metrics import campaign_recipients_skipped_total

    run = walk.run
    skips = customer_segment_skips(
        company=run.campaign.company, criteria=walk.criteria, now=walk.now, after_id=after_id, upto_id=upto_id,
        zones=walk.zones,
    ).exclude(
        Exists(
            CampaignRecipient.objects.filter(
                campaign_id=run.campaign_id, customer_id=OuterRef("pk"), cycle_started_at=OuterRef("last_booking_at"),
                status__in=INTENT_STATUSES,
            )
        )
    )
    select, params = skips.values_list("id", "last_booking_at", "skip_reason").query.sql_with_params()
    table = connection.ops.quote_name(CampaignRecipient._meta.db_table)
    # Django keeps a UUIDField as uuid on PostgreSQL and as 32 hex characters elsewhere.
    new_uuid = "lower(hex(randomblob(16)))" if connection.vendor == "sqlite" else "gen_random_uuid()"
    now = sql_value(timezone.now())
    with custom_plans(nested_loops=True), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (company_id, campaign_id, run_id, customer_id, cycle_started_at, status, reason,"
            " body, error, correlation_id, created_at, updated_at)"
            f" SELECT %s, %s, %s, skip.id, skip.last_booking_at, %s, skip.skip_reason, '', '', {new_uuid}, %s, %s"
            f" FROM ({select}) skip WHERE skip.skip_reason IS NOT NULL RETURNING reason",
            [run.company_id, run.campaign_id, run.pk, CampaignRecipient.Status.SKIPPED, now, now, *params],
        )
        counts = collections.Counter(reason for (reason,) in cursor.fetchall())
    for reason, count in counts.items():
        campaign_recipients_skipped_total.labels(reason=reason).inc(count)
    return dict(counts)


def segment_customers(*, company: Company, cadence_days: int, channel: str, limit: int) -> list[Customer]:
    """Customers due a reminder now by `cadence_days` (the default preset's window), for an explicit bulk send.

    No send window: a staff member sending now means now.
    """
    from engage.policy import policy_for
    from engage.segmentation import SegmentCriteria, customer_segment

    preset = policy_for(company=company).preset()
    criteria = SegmentCriteria(
        cadence_days=cadence_days,
        window_days=preset.window_days,
        send_window_start_hour=0,
        send_window_end_hour=24,
        channel=channel,
    )
    return list(customer_segment(company=company, criteria=criteria, limit=limit).select_related("contact__company"))


def _is_cancelled(run_id: int) -> bool:
    return CampaignRun.objects.filter(pk=run_id, status=CampaignRun.Status.CANCELLED).exists()


def run_slice_seconds() -> float:
    """How long one run job works before it hands the rest to a continuation job (setting
    SMARTENGAGE_RUN_SLICE_SECONDS: well under the task's soft time limit)."""
    return float(settings.SMARTENGAGE_RUN_SLICE_SECONDS)


def _run_continue(*, run: CampaignRun, lock: CampaignLock) -> Job:
    """Queue the run's next slice (its own ledger job and key) and make it the run's job; the lock is
    released inside the transaction, so the new job never finds it still held by this one."""
    with transaction.atomic():
        slices = run.slices + 1
        job = job_enqueue(
            company=run.campaign.company,
            task_name=RUN_TASK,
            payload={"run_id": run.pk},
            idempotency_key=f"{RUN_TASK}:{run.pk}:{slices}",
            max_attempts=RUN_MAX_ATTEMPTS,
        )
        CampaignRun.objects.filter(pk=run.pk).update(slices=slices, job=job)
        lock.release()
    run.slices, run.job = slices, job
    return job


def _run_complete(*, run_id: int) -> None:
    CampaignRun.objects.filter(pk=run_id, status=CampaignRun.Status.RUNNING).update(
        status=CampaignRun.Status.COMPLETED, finished_at=timezone.now(), error=""
    )


def _run_finished_at(*, run_id: int) -> dict[str, int]:
    """A run at its end: its end time (a cancelled one keeps its status) and its counts."""
    _run_complete(run_id=run_id)
    CampaignRun.objects.filter(pk=run_id, finished_at__isnull=True).update(finished_at=timezone.now())
    return campaign_run_counts_refresh(run_id=run_id)


def _batch_commit(*, walk: _Walk, rows: list[RecipientRow], after_id: int, upto_id: int, total: int) -> None:
    """A batch's records in one transaction: its recipient rows (a dry run's), the skipped customers of
    its keyset range, and the run's cursor and total; a retried slice resumes after the last one committed."""
    from engage.services.smartengage import recipient_rows_insert

    with transaction.atomic():
        if rows:
            recipient_rows_insert(run=walk.run, rows=rows, now=timezone.now())
        _skips_record(walk=walk, after_id=after_id, upto_id=upto_id)
        CampaignRun.objects.filter(pk=walk.run.pk).update(total_eligible=total, cursor=upto_id)


@contextlib.contextmanager
def _batch_writer(*, run: CampaignRun) -> Iterator[Callable[[Callable[[], None]], None]]:
    """Where a slice's batch records are written: `write(work)`.

    A dry run on PostgreSQL writes on a thread of its own (its own connection, commits that do not
    wait for the disk), one batch in flight: the next batch is read and rendered while the database
    writes this one (at 1M customers the writes were 40% of a dry run's time and rendering the rest).
    A writer's error is raised by the next `write` or at the end, after which nothing more is
    written. Elsewhere, or inside a caller's transaction (whose rows another connection could not
    see), `write` runs the work at once.
    """
    if not run.is_dry_run or connection.vendor != "postgresql" or connection.in_atomic_block:
        yield lambda work: work()
        return
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"run-{run.pk}-writer", initializer=_writer_start)
    pending: Future | None = None

    def write(work: Callable[[], None]) -> None:
        nonlocal pending
        if pending is not None:
            pending.result()
        pending = pool.submit(work)

    try:
        yield write
        if pending is not None:
            pending.result()
    finally:
        if pending is not None:
            futures_wait([pending])
        with contextlib.suppress(BrokenThreadPool):  # a writer that could not even connect has nothing to close
            pool.submit(connections.close_all).result()  # the writer thread's own connection
        pool.shutdown()


def _writer_start() -> None:
    """The writer thread's connection: commits that do not wait for the disk (see `_dry_run_commits`)."""
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")


@contextlib.contextmanager
def _dry_run_commits(*, is_dry_run: bool) -> Iterator[None]:
    """A dry run's commits do not wait for the disk (PostgreSQL `synchronous_commit = off`, this session only).

    A dry run commits a few times a batch (its model sample's AI sessions here; its recipient rows, skip
    records and cursor on the writer's connection, which `_writer_start` sets the same way), and
    each commit waited for a WAL flush: on a slow disk most of a 1M-customer dry run's time. Without
    the wait a crash can lose the last fraction of a second of commits, in order, so the cursor never
    runs ahead of the rows: the retried slice redoes them. A real run keeps every commit durable: its
    intents must be on disk before a provider is called.
    """
    if not is_dry_run or connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('synchronous_commit'), set_config('synchronous_commit', 'off', false)")
        previous = cursor.fetchone()[0]
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('synchronous_commit', %s, false)", [previous])


def campaign_run_execute(*, run_id: int, job: Job | None = None) -> dict[str, Any]:
    """Execute one slice of a queued (or resumed) run under the campaign's lock; the answer says what happened.

    A slice works for at most `run_slice_seconds()` (then its batch in hand), moving the run's keyset
    cursor and total with each batch (with that batch range's skipped customers, in one transaction),
    and queues the next slice's job when time is up; the run stays running until its last slice.
    A slice that dies is retried by its job and resumes after the cursor.
    """
    from engage.services.smartengage import smartengage_batches_send

    run = CampaignRun.objects.select_related("campaign__company", "campaign__service").get(pk=run_id)
    if run.status in CampaignRun.FINISHED_STATUSES:
        if run.status == CampaignRun.Status.CANCELLED and run.finished_at is None:
            _run_finished_at(run_id=run.pk)  # cancelled between two slices
        return {"status": run.status, "run_id": run.pk}
    try:
        campaign_smartengage_check(company=run.campaign.company)
    except SmartEngageDisabled:
        # Switched off after the run was queued: it ends now, sending nothing (a retry would not help).
        now = timezone.now()
        CampaignRun.objects.filter(pk=run.pk, status__in=CampaignRun.ACTIVE_STATUSES).update(
            status=CampaignRun.Status.DISABLED, error=SMARTENGAGE_DISABLED, started_at=Coalesce("started_at", now),
            finished_at=now,
        )
        campaign_run_counts_refresh(run_id=run.pk)
        return {"status": CampaignRun.Status.DISABLED, "run_id": run.pk, "error": SMARTENGAGE_DISABLED}
    with campaign_lock(campaign_id=run.campaign_id) as lock:
        if not lock:
            # Someone is executing this campaign right now (this very run, redelivered, or another).
            logger.info("campaign %s is locked; run %s not executed now", run.campaign_id, run.pk)
            return {"status": CampaignRun.Status.LOCKED, "run_id": run.pk}
        now = timezone.now()
        claimed = CampaignRun.objects.filter(pk=run.pk, status__in=CampaignRun.ACTIVE_STATUSES).update(
            status=CampaignRun.Status.RUNNING, started_at=Coalesce("started_at", now)
        )
        if not claimed:
            return {"status": CampaignRun.objects.get(pk=run.pk).status, "run_id": run.pk}
        run.refresh_from_db()
        campaign, preset = run.campaign, run.preset
        total = run.total_eligible
        walk = _walk_start(run=run)
        # A dry run's rendered and skipped recipients are written with the batch's skip records and
        # cursor (one transaction); a real run writes them itself, before it sends.
        rows: list[RecipientRow] = []
        try:
            with _dry_run_commits(is_dry_run=run.is_dry_run):
                with _batch_writer(run=run) as write:
                    # One batch's model calls are in flight while the previous batch is written and sent.
                    for customers, _ in smartengage_batches_send(
                        company=campaign.company,
                        batches=_eligible_batches(walk=walk),
                        send_window=(preset["send_window_start_hour"], preset["send_window_end_hour"]),
                        channel=campaign.channel,
                        service=campaign.service,
                        promo_code=run.promo_code,
                        ttl_hours=campaign.link_ttl_hours,
                        dry_run=run.is_dry_run,
                        run=run,
                        is_cancelled=lambda: _is_cancelled(run.pk),
                        rows_sink=rows.extend if run.is_dry_run else None,
                    ):
                        total += len(customers)
                        write(functools.partial(
                            _batch_commit, walk=walk, rows=rows[:], after_id=walk.cursor, upto_id=customers.last_id,
                            total=total,
                        ))
                        rows.clear()
                        walk.cursor = customers.last_id
                # Every batch is committed now.
                is_cancelled = _is_cancelled(run.pk)
                if walk.is_exhausted and not is_cancelled:
                    with transaction.atomic():  # the tail's skipped customers and the end, or neither
                        _skips_record(walk=walk, after_id=walk.cursor, upto_id=None)
                        _run_complete(run_id=run.pk)
        except Exception as error:
            is_last = job is None or job.attempts >= job.max_attempts
            CampaignRun.objects.filter(pk=run.pk, status=CampaignRun.Status.RUNNING).update(
                error=f"{type(error).__name__}: {error}"[:5000],
                **({"status": CampaignRun.Status.FAILED, "finished_at": timezone.now()} if is_last else {}),
            )
            campaign_run_counts_refresh(run_id=run.pk)
            raise  # the ledger retries the job: the run resumes after its cursor
        if not (walk.is_exhausted or is_cancelled):
            following = _run_continue(run=run, lock=lock)
            counts = campaign_run_counts_refresh(run_id=run.pk)
            return {
                "status": CampaignRun.Status.RUNNING, "run_id": run.pk, "cursor": walk.cursor,
                "slice": run.slices, "next_job_id": following.pk, **counts,
            }
        counts = _run_finished_at(run_id=run.pk)
    run.refresh_from_db()
    return {
        "status": run.status,
        "run_id": run.pk,
        "correlation_id": str(run.correlation_id),
        "total_eligible": run.total_eligible,
        **counts,
        "duration_seconds": run.duration_seconds,
    }


@transaction.atomic
def campaign_run_cancel(*, run: CampaignRun) -> CampaignRun:
    """Stop a queued or running run (a running one stops after its current batch)."""
    run = CampaignRun.objects.select_for_update().get(pk=run.pk)
    if run.status not in CampaignRun.ACTIVE_STATUSES:
        raise ValidationError({"status": f"Only queued or running runs can be cancelled; this one is {run.status}."})
    # Queued, or running between two slices (or waiting for a retry): its job is not working on it.
    is_idle = run.status == CampaignRun.Status.QUEUED or (
        run.job_id is not None and Job.objects.filter(pk=run.job_id, status__in=[Job.Status.QUEUED, Job.Status.FAILED]).exists()
    )
    run.status = CampaignRun.Status.CANCELLED
    run.error = "Cancelled by an operator."
    update_fields = ["status", "error"]
    if is_idle:
        run.finished_at = timezone.now()
        update_fields.append("finished_at")
    run.save(update_fields=update_fields)
    if is_idle and run.job_id and Job.objects.filter(pk=run.job_id, status__in=[Job.Status.QUEUED, Job.Status.FAILED]).exists():
        job_cancel(job=run.job, reason="Campaign run cancelled.")
    return run


@transaction.atomic
def campaign_run_retry_failed(*, run: CampaignRun) -> int:
    """Queue the failed recipients of a run again (their own jobs, replayed); sent ones are never touched."""
    failed = list(
        CampaignRecipient.objects.select_for_update()
        .filter(run_id=run.pk, status=CampaignRecipient.Status.FAILED, job__isnull=False)
        .select_related("job")
    )
    replayed = []
    for recipient in failed:
        if recipient.job.status in (Job.Status.DEAD, Job.Status.FAILED):
            job_replay(job=recipient.job)
        replayed.append(recipient.pk)
    CampaignRecipient.objects.filter(pk__in=replayed).update(
        status=CampaignRecipient.Status.PENDING, error="", updated_at=timezone.now()
    )
    campaign_run_counts_refresh(run_id=run.pk)
    return len(replayed)


def campaign_pause(*, campaign: Campaign) -> Campaign:
    """Stop the daily schedule from running the campaign (runs already queued still run)."""
    Campaign.objects.filter(pk=campaign.pk).update(is_paused=True, updated_at=timezone.now())
    campaign.is_paused = True
    return campaign


def campaign_resume(*, campaign: Campaign) -> Campaign:
    Campaign.objects.filter(pk=campaign.pk).update(is_paused=False, updated_at=timezone.now())
    campaign.is_paused = False
    return campaign


def campaigns_daily_run() -> dict[str, int]:
    """Beat (daily 09:00 UTC): trigger a run of every active SmartEngage campaign of every enabled company."""
    counts = {"queued": 0, "locked": 0, "disabled": 0}
    campaigns = Campaign.objects.filter(
        is_paused=False, type=Campaign.Type.SMARTENGAGE, company__is_active=True
    ).select_related("company")
    for campaign in campaigns:
        try:
            run = campaign_run_trigger(campaign=campaign, trigger=CampaignRun.Trigger.BEAT)
        except SmartEngageDisabled:
            counts["disabled"] += 1
            continue
        except ValidationError:
            logger.exception("campaign %s not triggered", campaign.pk)
            continue
        counts["locked" if run.status == CampaignRun.Status.LOCKED else "queued"] += 1
    return counts


def campaign_for_segment(*, company: Company, preset_name: str | None = None) -> Campaign:
    """The company's default SmartEngage campaign (for the internal run-segment trigger), made on first use."""
    from engage.policy import policy_for

    policy = policy_for(company=company)
    if preset_name is not None and preset_name not in policy.presets:
        raise ValidationError({"preset": f"Unknown campaign preset {preset_name!r}."})
    campaign, _ = Campaign.objects.get_or_create(
        company=company, name=DEFAULT_CAMPAIGN_NAME, defaults={"preset": preset_name or policy.default_preset}
    )
    return campaign


def campaign_funnel(*, campaign: Campaign) -> dict[str, int]:
    """sent → delivered → opened → clicked → booked over the campaign's messages (one aggregate query)."""
    from engage.events import funnel_counts
    from engage.models import Message

    messages = Message.objects.filter(
        Exists(CampaignRecipient.objects.filter(campaign_id=campaign.pk, message_id=OuterRef("pk")))
    )
    return funnel_counts(company=campaign.company, messages=messages)


def campaign_skips_purge(*, older_than_days: int, batch_size: int = 10_000) -> int:
    """Delete the `skipped` recipient rows of runs older than `older_than_days` (the daily housekeeping).

    A run records every customer its rules leave out (thousands a day per 100k customers, most for
    lack of consent); their counts stay on the run, the rows go after the retention. Rows are
    deleted a batch at a time on the (run, status) index; sent, failed and dry-run rows are kept.
    """
    cutoff = timezone.now() - dt.timedelta(days=older_than_days)
    skipped = CampaignRecipient.objects.filter(status=CampaignRecipient.Status.SKIPPED)
    runs = CampaignRun.objects.filter(created_at__lt=cutoff).filter(Exists(skipped.filter(run_id=OuterRef("pk"))))
    deleted = 0
    for run_id in runs.values_list("pk", flat=True):
        while ids := list(skipped.filter(run_id=run_id).values_list("pk", flat=True)[:batch_size]):
            deleted += CampaignRecipient.objects.filter(pk__in=ids).delete()[0]
    return deleted
