"""Job leases: a running job's claim lasts `JOBS_LEASE_SECONDS` and its worker keeps renewing it.

A claim sets `lease_expires_at = now + JOBS_LEASE_SECONDS` (30 s). While the handler runs, one
daemon thread per worker process (`LeaseKeeper`) renews the leases of every job the process is
running, every `JOBS_HEARTBEAT_SECONDS` (a third of the lease), in one UPDATE fenced like a
completion (same row, still `processing`, same `locked_by` and `locked_at`). A worker that dies
(SIGKILL, OOM, a lost machine) stops renewing: within the lease its jobs are claimable again, and
the 10-second reclaim (`jobs_reclaim`, beat) hands them out, so a job resumes well within a
minute instead of after the task time limit.

A run is never renewed past `JOBS_LOCK_TIMEOUT_SECONDS` from its claim (the task time limit + 60 s):
a handler stuck that long loses its lease like a dead one (the thread pool has no time limit of its
own). A run that lost its lease cannot record an outcome: completion and failure are fenced on
`locked_by`/`locked_at`, which a new claim replaces.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from functools import reduce
from operator import or_

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from engage.ledger.models import Job

logger = logging.getLogger(__name__)


def job_lease_duration() -> timedelta:
    return timedelta(seconds=float(getattr(settings, "JOBS_LEASE_SECONDS", 30)))


def job_heartbeat_interval() -> float:
    seconds = getattr(settings, "JOBS_HEARTBEAT_SECONDS", None)
    return float(seconds) if seconds else job_lease_duration().total_seconds() / 3


def job_lock_timeout() -> timedelta:
    """How long a run may hold a job at most: its lease is not renewed past this (and a row claimed
    without a lease, before leases existed, is presumed abandoned after it)."""
    return timedelta(seconds=settings.JOBS_LOCK_TIMEOUT_SECONDS)


def _max_run() -> timedelta:
    return job_lock_timeout()


class LeaseKeeper:
    """The heartbeat of one worker process: renews the leases of the jobs it is running."""

    def __init__(self, *, autostart: bool = True) -> None:
        self._autostart = autostart
        self._lock = threading.Lock()
        self._wakeup = threading.Event()
        self._held: dict[int, tuple[str, datetime]] = {}
        self._thread: threading.Thread | None = None
        self._waiting_for = 0.0
        self._pid = os.getpid()

    def hold(self, job: Job) -> None:
        with self._lock:
            if self._pid != os.getpid():  # a forked child (prefork): start afresh
                self._held, self._thread, self._pid = {}, None, os.getpid()
            self._held[job.pk] = (job.locked_by, job.locked_at)
            if self._autostart and (self._thread is None or not self._thread.is_alive()):
                self._thread = threading.Thread(target=self._run, name="job-lease-heartbeat", daemon=True)
                self._thread.start()
            elif self._waiting_for > job_heartbeat_interval():
                self._wakeup.set()  # the interval was shortened (settings changed): wait the new one

    def release(self, job: Job) -> None:
        with self._lock:
            self._held.pop(job.pk, None)

    def held(self) -> dict[int, tuple[str, datetime]]:
        with self._lock:
            return dict(self._held)

    def renew(self) -> int:
        """Push the leases of the held jobs forward now (one fenced UPDATE); how many rows were renewed."""
        now = timezone.now()
        held = self.held()
        oldest = now - _max_run()
        renewable = {pk: claim for pk, claim in held.items() if claim[1] is not None and claim[1] > oldest}
        for pk in set(held) - set(renewable):
            logger.warning("job %s has run past JOBS_LOCK_TIMEOUT_SECONDS: its lease is left to lapse", pk)
            self.release(Job(pk=pk))
        if not renewable:
            return 0
        fence = reduce(or_, (Q(pk=pk, locked_by=by, locked_at=at) for pk, (by, at) in renewable.items()))
        renewed = Job.objects.filter(fence, status=Job.Status.PROCESSING).update(
            lease_expires_at=now + job_lease_duration()
        )
        if renewed < len(renewable):
            logger.warning("%s of %s running jobs were no longer this worker's to renew", len(renewable) - renewed,
                           len(renewable))
        return renewed

    def _run(self) -> None:
        while True:
            self._waiting_for = job_heartbeat_interval()
            self._wakeup.wait(self._waiting_for)
            self._wakeup.clear()
            if not self.held():
                connection.close()  # idle: hold no database connection (none to renew for)
                continue
            try:
                connection.close_if_unusable_or_obsolete()
                self.renew()
            except Exception:  # the database is away: try again next beat (the lease outlasts two misses)
                logger.warning("job lease heartbeat failed", exc_info=True)
                connection.close()
            finally:
                connection.close_if_unusable_or_obsolete()


lease_keeper = LeaseKeeper()


@contextmanager
def job_lease_held(job: Job) -> Iterator[None]:
    """Keep renewing `job`'s lease while the block runs (the job was just claimed by this process)."""
    lease_keeper.hold(job)
    try:
        yield
    finally:
        lease_keeper.release(job)
