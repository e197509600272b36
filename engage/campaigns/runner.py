"""A campaign run's execution: one time slice of the run per ledger job (see engage.campaigns.runs).

The slice walks the segment after the run's keyset cursor a batch at a time, records who the rules
leave out (with the reason), hands the eligible to the SmartEngage pipeline, moves the cursor with
each batch, and queues the next slice when its time is up. A dry run writes its batches on a writer
thread of its own while the next batch is read and rendered."""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from concurrent.futures.thread import BrokenThreadPool
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connection, connections, transaction
from django.db.models import Exists, OuterRef
from django.db.models.functions import Coalesce
from django.utils import timezone

from engage.campaigns.models import CampaignRecipient, CampaignRun
from engage.campaigns.runs import (
    INTENT_STATUSES,
    RUN_MAX_ATTEMPTS,
    RUN_TASK,
    SMARTENGAGE_DISABLED,
    CampaignLock,
    SmartEngageDisabled,
    campaign_lock,
    campaign_run_counts_refresh,
    campaign_smartengage_check,
)
from engage.campaigns.segmentation import (
    SegmentCriteria,
    contact_zones,
    custom_plans,
    customer_segment_batches,
    customer_segment_skips,
)
from engage.campaigns.smartengage.intents import recipient_rows_insert
from engage.campaigns.smartengage.pipeline import smartengage_batches_send
from engage.ledger.models import Job
from engage.ledger.services import job_enqueue, sql_value
from shokti import metrics

if TYPE_CHECKING:
    from engage.campaigns.smartengage.outcomes import RecipientRow


logger = logging.getLogger(__name__)


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
    an intent in this cycle (in the segment's statement); no new batch once the slice's time is up (after
    its first batch)."""

    run = walk.run
    company = run.campaign.company
    # Who has an intent in this cycle is left out by the segment's own statement (not a second query
    # a batch with a thousand ids to bind: 0.1 ms a customer of the dry run's process CPU).
    batches = customer_segment_batches(
        company=company, criteria=walk.criteria, batch_size=_batch_size(run=run), now=walk.now,
        after_id=walk.cursor, zones=walk.zones, exclude=_has_intent(run=run),
    )
    has_yielded = False
    while not (has_yielded and time.monotonic() >= walk.deadline):
        batch = next(batches, None)
        if batch is None:
            walk.is_exhausted = True
            return
        # The segment's customers come with their contacts; both get the run's company object.
        customers = _SegmentBatch(batch)
        customers.last_id = batch[-1].pk
        for customer in customers:
            customer.company = company
            customer.contact.company = company
        has_yielded = True
        yield customers


def _has_intent(*, run: CampaignRun) -> Exists:
    """The customer (the outer query's row) has an intent of the run's campaign in their current cycle."""
    return Exists(
        CampaignRecipient.objects.filter(
            campaign_id=run.campaign_id, customer_id=OuterRef("pk"), cycle_started_at=OuterRef("last_booking_at"),
            status__in=INTENT_STATUSES,
        )
    )


def _skips_record(*, walk: _Walk, after_id: int, upto_id: int | None) -> dict[str, int]:
    """Record the customers of `(after_id, upto_id]` the segment's rules left out, as skipped recipients
    with their reason (no consent, no address, too soon, daily cap, weekly cap); counts them in metrics.

    One INSERT ... SELECT over `customer_segment_skips` (the segment's own rules): nobody who has an
    intent in this campaign cycle or was already reminded in it (they are not this run's recipients).
    """

    run = walk.run
    skips = customer_segment_skips(
        company=run.campaign.company, criteria=walk.criteria, now=walk.now, after_id=after_id, upto_id=upto_id,
        zones=walk.zones,
    ).exclude(_has_intent(run=run))
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
        metrics.count("campaign_recipients_skipped_total", count, reason=reason)
    return dict(counts)


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
