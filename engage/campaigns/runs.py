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

import contextlib
import dataclasses
import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext_noop

from crm.models import Company, Customer, User
from engage.campaigns.attribution import funnel_counts
from engage.campaigns.models import Campaign, CampaignRecipient, CampaignRun
from engage.campaigns.segmentation import SegmentCriteria, customer_segment
from engage.ledger.models import Job
from engage.ledger.services import job_cancel, job_enqueue, job_replay
from engage.messaging.models import Message
from engage.policy.services import policy_for

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

    if not policy_for(company=company).is_smartengage_enabled:
        raise SmartEngageDisabled()


def _preset_snapshot(*, campaign: Campaign, preset_name: str | None) -> dict[str, Any]:
    name = preset_name or campaign.preset
    try:
        preset = policy_for(company=campaign.company).preset(name)
    except KeyError:
        raise ValidationError({"preset": ValidationError(gettext_noop("Unknown campaign preset %(name)r."),
                                                     params={"name": name})}) from None
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
    ignores_send_window: bool = False,
) -> CampaignRun:
    """Queue a run (its ledger job runs it); while another run is queued or running, the new one is `locked`.

    `ignores_send_window` (dry runs only) previews every eligible customer whatever their local hour: the
    run's preset then says so (`ignores_send_window`) and keeps the window it set aside (`send_window_set_aside`).
    SmartEngageDisabled (a ValidationError) when the company's policy switches SmartEngage off.
    """
    campaign_smartengage_check(company=campaign.company)
    preset = {**_preset_snapshot(campaign=campaign, preset_name=preset_name), **(overrides or {})}
    if ignores_send_window:
        if not is_dry_run:
            raise ValidationError({"ignores_send_window": gettext_noop("Only a dry run may ignore the send window.")})
        preset["send_window_set_aside"] = [preset["send_window_start_hour"], preset["send_window_end_hour"]]
        preset.update(send_window_start_hour=0, send_window_end_hour=24, ignores_send_window=True)
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


def segment_customers(*, company: Company, cadence_days: int, channel: str, limit: int) -> list[Customer]:
    """Customers due a reminder now by `cadence_days` (the default preset's window), for an explicit bulk send.

    No send window: a staff member sending now means now.
    """

    preset = policy_for(company=company).preset()
    criteria = SegmentCriteria(
        cadence_days=cadence_days,
        window_days=preset.window_days,
        send_window_start_hour=0,
        send_window_end_hour=24,
        channel=channel,
    )
    return list(customer_segment(company=company, criteria=criteria, limit=limit).select_related("contact__company"))


@transaction.atomic
def campaign_run_cancel(*, run: CampaignRun) -> CampaignRun:
    """Stop a queued or running run (a running one stops after its current batch)."""
    run = CampaignRun.objects.select_for_update().get(pk=run.pk)
    if run.status not in CampaignRun.ACTIVE_STATUSES:
        raise ValidationError({"status": ValidationError(
            gettext_noop("Only queued or running runs can be cancelled; this one is %(status)s."),
            params={"status": run.status})})
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


def campaign_run_replay_prepare(job: Job) -> None:
    """A replayed run job resumes its run: a failed run is queued again and goes on after its cursor
    (nobody reminded twice: intents are unique per cycle). A finished run refuses, saying why."""
    run = CampaignRun.objects.select_for_update().filter(
        pk=job.payload.get("run_id"), company_id=job.company_id
    ).first()
    if run is None:
        raise ValidationError({"run": "This job's campaign run no longer exists."})
    if run.status in CampaignRun.ACTIVE_STATUSES:
        return
    if run.status != CampaignRun.Status.FAILED:
        raise ValidationError({
            "run": f"Run #{run.pk} is {run.get_status_display().lower()}: there is nothing to resume. "
            "Start a new run from the campaign."
        })
    try:
        with transaction.atomic():
            CampaignRun.objects.filter(pk=run.pk).update(
                status=CampaignRun.Status.QUEUED, error="", finished_at=None
            )
    except IntegrityError:
        raise ValidationError({
            "run": f"Another run of this campaign is queued or running: run #{run.pk} can resume once it ends."
        }) from None


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

    policy = policy_for(company=company)
    if preset_name is not None and preset_name not in policy.presets:
        raise ValidationError({"preset": ValidationError(gettext_noop("Unknown campaign preset %(name)r."),
                                                     params={"name": preset_name})})
    campaign, _ = Campaign.objects.get_or_create(
        company=company, name=DEFAULT_CAMPAIGN_NAME, defaults={"preset": preset_name or policy.default_preset}
    )
    return campaign


def campaign_funnel(*, campaign: Campaign) -> dict[str, int]:
    """sent → delivered → opened → clicked → booked over the campaign's messages (one aggregate query)."""

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
