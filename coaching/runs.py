"""CoachNova runs with the campaign runner's guarantees: one active run per company (a partial unique index), dry
runs, pause/resume/cancel, a skip reason for every worker left out, nobody coached twice for one pattern (a partial
unique index on worker and pattern), crash-safe (the selection is written in one transaction, each worker is
coached under its own idempotency key, and the run is a ledger job that resumes where it stopped).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections import defaultdict
from zoneinfo import ZoneInfo

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from coaching.burnout import workers_under_burnout_alert
from coaching.care import care_messages_send
from coaching.compose import coaching_text_generate
from coaching.models import BookingPunctuality, CoachingRecipient, CoachingRun, CoachingSettings, WorkerPunctuality
from coaching.punctuality import LATE_OUTCOMES, coaching_settings_for, company_zone, local_today
from coaching.voice import AUDIO_CONTENT_TYPE, VoiceError, audio_url, speech_store
from crm.models import Company, Worker
from crm.services import event_record
from engage import api as engage

logger = logging.getLogger(__name__)

Status = CoachingRecipient.Status
Reason = CoachingRecipient.Reason
RUN_TASK = "coachnova_run"
STATUS_CHECK_EVERY = 10
VOICE_LINK_LABEL = "শুনুন:"
DECISION_REASONS = {"no_consent": Reason.NO_CONSENT, "no_address": Reason.NO_ADDRESS}


class CoachNovaDisabled(Exception):
    """The company's engagement policy switches CoachNova off."""


class CoachingRunLocked(Exception):
    """A run of this company is already queued, running or paused."""


# PostgreSQL: the skip rows of every worker below the pattern in one statement (the rules of run_select's loop),
# from the workers' stored windows (ROLLUP) or, when those are not for this run's day and window, from the bookings.
SKIPS_INSERT = """
INSERT INTO coaching_coachingrecipient (run_id, company_id, worker_id, status, reason, detail, pattern_key,
    booking_ids, holdout_bucket, channel, text, ai_outcome, message_id, voice_status, audio, reply_text, reply_reason,
    replied_at, accepted_at, accepted_by_id, on_time_before, on_time_after, created_at, processed_at)
SELECT %(run)s, %(company)s, worker_id, 'skipped',
    CASE WHEN late = 0 AND excused = 0 THEN 'on_time' WHEN late + excused >= %(threshold)s THEN 'excused'
         ELSE 'pattern_not_met' END,
    CASE WHEN late + excused < %(threshold)s AND (late > 0 OR excused > 0) THEN late || ' of ' || %(threshold)s
         ELSE '' END,
    '', '[]'::jsonb, NULL, '', '', '', NULL, '', '', '', '', NULL, NULL, NULL, NULL, NULL, %(now)s, %(now)s
FROM ({per_worker}) AS per_worker
WHERE late < %(threshold)s
"""
FROM_BOOKINGS = """
    SELECT worker_id,
        count(*) FILTER (WHERE outcome = ANY(%(late)s) AND NOT is_excused) AS late,
        count(*) FILTER (WHERE outcome = ANY(%(late)s) AND is_excused) AS excused
    FROM coaching_bookingpunctuality
    WHERE company_id = %(company)s AND local_date >= %(start)s AND local_date <= %(end)s
    GROUP BY worker_id"""
FROM_ROLLUP = """
    SELECT worker_id, late_{window} AS late, excused_{window} AS excused
    FROM coaching_workerpunctuality
    WHERE company_id = %(company)s AND as_of = %(end)s AND late_{window} < %(threshold)s
      AND (bookings_{window} > 0 OR excused_{window} > 0)"""
ROLLUP_WINDOWS = (14, 28)


def coachnova_check(*, company: Company) -> None:
    if not engage.policy_for(company=company).is_coachnova_enabled:
        raise CoachNovaDisabled("CoachNova is switched off in this company's engagement policy.")


def _rules(row: CoachingSettings) -> dict:
    return {
        "grace_minutes": row.grace_minutes, "pattern_late_count": row.pattern_late_count,
        "pattern_window_days": row.pattern_window_days, "holdout_percent": row.holdout_percent,
        "recoach_after_days": row.recoach_after_days, "channel": row.channel, "is_voice_enabled": row.is_voice_enabled,
        "quiet_start_hour": row.quiet_start_hour, "quiet_end_hour": row.quiet_end_hour,
    }


def coaching_run_trigger(
    *, company: Company, is_dry_run: bool = False, trigger: str = "manual", actor=None, as_of: dt.date | None = None,
) -> CoachingRun:
    """Queue a run (its ledger job starts it after commit); CoachingRunLocked while another is active."""
    coachnova_check(company=company)
    row = coaching_settings_for(company=company)
    try:
        with transaction.atomic():
            run = CoachingRun.objects.create(
                company=company, is_dry_run=is_dry_run, trigger=trigger, triggered_by=actor, rules=_rules(row),
                as_of=as_of or local_today(company),
            )
            engage.job_enqueue(
                company=company, task_name=RUN_TASK, payload={"run_id": run.pk},
                idempotency_key=f"{RUN_TASK}:{run.pk}:start",
            )
    except IntegrityError:
        raise CoachingRunLocked("A CoachNova run of this company is already queued, running or paused.") from None
    return run


def coaching_runs_weekly() -> dict:
    """The weekly beat: a run for every company whose policy has CoachNova on (active ones are left alone)."""
    started, skipped = [], 0
    for company in Company.objects.filter(is_active=True).order_by("pk"):
        try:
            started.append(coaching_run_trigger(company=company, trigger="beat").pk)
        except (CoachNovaDisabled, CoachingRunLocked):
            skipped += 1
    return {"runs": started, "skipped": skipped}


def coaching_run_pause(*, run: CoachingRun) -> bool:
    return bool(CoachingRun.objects.filter(pk=run.pk, status__in=[CoachingRun.Status.QUEUED, CoachingRun.Status.RUNNING])
                .update(status=CoachingRun.Status.PAUSED))


def coaching_run_resume(*, run: CoachingRun) -> bool:
    with transaction.atomic():
        if not CoachingRun.objects.filter(pk=run.pk, status=CoachingRun.Status.PAUSED).update(
                status=CoachingRun.Status.QUEUED):
            return False
        engage.job_enqueue(
            company=run.company, task_name=RUN_TASK, payload={"run_id": run.pk},
            idempotency_key=f"{RUN_TASK}:{run.pk}:resume:{timezone.now().timestamp()}",
        )
    return True


def coaching_run_cancel(*, run: CoachingRun) -> bool:
    return bool(CoachingRun.objects.filter(pk=run.pk, status__in=CoachingRun.ACTIVE).update(
        status=CoachingRun.Status.CANCELLED, finished_at=timezone.now()))


def holdout_bucket(*, run_id: int, worker_id: int) -> int:
    """0-99, stable for a run and a worker (a hash, so a re-executed run assigns the same workers)."""
    digest = hashlib.sha256(f"coachnova:{run_id}:{worker_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


def pattern_key(booking_ids: list[int]) -> str:
    return hashlib.sha256(",".join(str(pk) for pk in sorted(booking_ids)).encode()).hexdigest()[:32]


def quiet_hours_end(*, company: Company, rules: dict, now: dt.datetime | None = None) -> dt.datetime | None:
    """When the company's quiet hours end, if it is quiet now; None otherwise."""
    zone: ZoneInfo = company_zone(company)
    local = (now or timezone.now()).astimezone(zone)
    start, end = rules.get("quiet_start_hour", 21), rules.get("quiet_end_hour", 9)
    hour = local.hour
    quiet = (start <= hour or hour < end) if start > end else (start <= hour < end)
    if not quiet or start == end:
        return None
    resume = local.replace(hour=end, minute=0, second=0, microsecond=0)
    if resume <= local:
        resume += dt.timedelta(days=1)
    return resume


def run_select(*, run: CoachingRun) -> dict[str, int]:
    """Write one row per worker with bookings in the pattern window: pending (or would-coach), holdout or skipped
    with its reason. One transaction: a crash leaves no half selection."""
    company, rules = run.company, run.rules
    window_days, threshold = rules["pattern_window_days"], rules["pattern_late_count"]
    start = run.as_of - dt.timedelta(days=window_days - 1)
    in_window = BookingPunctuality.objects.filter(company=company, local_date__gte=start, local_date__lte=run.as_of)
    late = Q(outcome__in=LATE_OUTCOMES)
    # The workers' stored windows when they are this run's (refreshed for its day; 14 or 28 days): one indexed
    # read; otherwise (a run for another day, another window, stats not refreshed yet) the bookings grouped.
    rollup = WorkerPunctuality.objects.filter(company=company)
    is_rollup = (window_days in ROLLUP_WINDOWS and rollup.filter(as_of=run.as_of).exists()
                 and not rollup.exclude(as_of=run.as_of).exists())
    if is_rollup:
        per_worker = rollup.filter(Q(**{f"bookings_{window_days}__gt": 0}) | Q(**{f"excused_{window_days}__gt": 0}),
                                   as_of=run.as_of).values(
            "worker_id", late=F(f"late_{window_days}"), excused=F(f"excused_{window_days}"))
    else:
        per_worker = in_window.values("worker_id").annotate(
            late=Count("pk", filter=late & Q(is_excused=False)), excused=Count("pk", filter=late & Q(is_excused=True)),
        )
    rows: list[CoachingRecipient] = []
    candidates: list[int] = []
    now = timezone.now()

    def skip(worker_id: int, reason: str, **extra) -> None:
        rows.append(CoachingRecipient(run=run, company=company, worker_id=worker_id, status=Status.SKIPPED,
                                      reason=reason, created_at=now, processed_at=now, **extra))

    set_based = connection.vendor == "postgresql"
    if set_based:
        # Everyone below the pattern is skipped by one INSERT ... SELECT (in the transaction below); only the
        # candidates come back to Python.
        candidates = list(per_worker.filter(late__gte=threshold).values_list("worker_id", flat=True))
    for stat in ([] if set_based else per_worker.iterator(chunk_size=10000)):
        if stat["late"] >= threshold:
            candidates.append(stat["worker_id"])
        elif stat["late"] == 0 and stat["excused"] == 0:
            skip(stat["worker_id"], Reason.ON_TIME)
        elif stat["late"] + stat["excused"] >= threshold:
            skip(stat["worker_id"], Reason.EXCUSED)
        else:
            skip(stat["worker_id"], Reason.PATTERN_NOT_MET, detail=f"{stat['late']} of {threshold}")
    late_ids: dict[int, list[int]] = defaultdict(list)
    for worker_id, booking_id in (in_window.filter(late, is_excused=False, worker_id__in=candidates)
                                  .order_by("scheduled_at").values_list("worker_id", "booking_id")):
        late_ids[worker_id].append(booking_id)
    workers = Worker.objects.filter(company=company, pk__in=candidates).select_related("contact", "punctuality")
    burnout = workers_under_burnout_alert(company=company, worker_ids=candidates)
    recent = set(CoachingRecipient.objects.filter(
        worker_id__in=candidates, status=Status.COACHED,
        created_at__gte=now - dt.timedelta(days=rules["recoach_after_days"]),
    ).values_list("worker_id", flat=True))
    coached_patterns = set(CoachingRecipient.objects.filter(worker_id__in=candidates, status=Status.COACHED)
                           .values_list("worker_id", "pattern_key"))
    # The company's experiment holdout (engage.experiments) comes before CoachNova's own; a preview, nothing stored.
    exposures = engage.experiment_exposures_for(company=company, applies_to="coaching", unit_ids=candidates, record=False)
    for worker in workers.order_by("pk"):
        ids = late_ids[worker.pk]
        key = pattern_key(ids)
        channel = getattr(getattr(worker, "punctuality", None), "channel", "") or rules["channel"]
        bucket = holdout_bucket(run_id=run.pk, worker_id=worker.pk)
        common = {"pattern_key": key, "booking_ids": ids, "channel": channel, "holdout_bucket": bucket}
        if not worker.is_active:
            skip(worker.pk, Reason.INACTIVE, **common)
        elif worker.pk in burnout:
            skip(worker.pk, Reason.BURNOUT, **common)
        elif (worker.pk, key) in coached_patterns:
            skip(worker.pk, Reason.ALREADY_COACHED, **common)
        elif worker.pk in recent:
            skip(worker.pk, Reason.RECENTLY_COACHED, **common)
        elif not worker.contact.is_consented(channel):
            skip(worker.pk, Reason.NO_CONSENT, **common)
        elif not _has_address(worker.contact, channel):
            skip(worker.pk, Reason.NO_ADDRESS, **common)
        elif worker.pk in exposures and exposures[worker.pk].is_holdout:
            skip(worker.pk, Reason.HOLDOUT, detail="experiment holdout", **common)
        else:
            # Randomised among the eligible (pattern and consent); the caps are decided at the send, under the
            # contact's lock (engage's message_queue), and a capped worker is recorded as such then.
            if bucket < rules["holdout_percent"]:
                rows.append(CoachingRecipient(run=run, company=company, worker_id=worker.pk, status=Status.HOLDOUT,
                                              reason=Reason.HOLDOUT, created_at=now, processed_at=now, **common))
            else:
                rows.append(CoachingRecipient(run=run, company=company, worker_id=worker.pk, status=Status.PENDING,
                                              created_at=now, **common))
    below_pattern = 0
    with transaction.atomic():
        if not CoachingRecipient.objects.filter(run=run).exists():
            if set_based:
                per_worker_sql = FROM_ROLLUP.format(window=window_days) if is_rollup else FROM_BOOKINGS
                with connection.cursor() as cursor:
                    cursor.execute(SKIPS_INSERT.format(per_worker=per_worker_sql), {
                        "run": run.pk, "company": company.pk, "start": start, "end": run.as_of,
                        "threshold": threshold, "now": now, "late": list(LATE_OUTCOMES)})
                    below_pattern = cursor.rowcount
            CoachingRecipient.objects.bulk_create(rows, batch_size=2000)
    return {"selected": len(rows), "candidates": len(candidates),
            "skipped_below_pattern": below_pattern or len(rows) - len(candidates)}


def _has_address(contact, channel: str) -> bool:
    return bool(contact.email) if channel == "email" else bool(contact.phone)


def _late_lines(recipient: CoachingRecipient, zone: ZoneInfo) -> list[str]:
    rows = BookingPunctuality.objects.filter(pk__in=recipient.booking_ids).order_by("scheduled_at")
    lines = []
    for row in rows:
        when = engage.date_bn(row.scheduled_at.astimezone(zone))
        if row.outcome == BookingPunctuality.Outcome.LATE:
            lines.append(f"- {when}: {engage.number_bn(row.minutes_late)} মিনিট দেরি")
        elif row.outcome == BookingPunctuality.Outcome.NO_SHOW:
            lines.append(f"- {when}: পৌঁছানো হয়নি")
        else:
            lines.append(f"- {when}: কর্মী বাতিল করেছেন")
    return lines


def recipient_coach(*, recipient: CoachingRecipient) -> CoachingRecipient:
    """Write and (not in a dry run) queue this worker's message; idempotent per run and worker."""
    run = recipient.run
    company = run.company
    worker = Worker.objects.select_related("contact").get(pk=recipient.worker_id)
    if run.is_dry_run:
        decision = engage.can_send(contact=worker.contact, channel=recipient.channel, role=engage.ROLE_WORKER)
        if not decision.allowed:
            recipient.status, recipient.reason = Status.SKIPPED, DECISION_REASONS.get(decision.reason, Reason.CAPPED)
            recipient.detail, recipient.processed_at = decision.reason, timezone.now()
            recipient.save()
            return recipient
    stats = getattr(worker, "punctuality", None)
    # The worker's arm in a running CoachNova experiment (stored at this exposure; a dry run previews it).
    exposure = engage.experiment_exposures_for(
        company=company, applies_to="coaching", unit_ids=[worker.pk], record=not run.is_dry_run
    ).get(worker.pk)
    generated = coaching_text_generate(
        company=company, worker=worker, channel=recipient.channel, period_days=run.rules["pattern_window_days"],
        late_lines=_late_lines(recipient, company_zone(company)), stats=stats,
        template_version=exposure.template_version if exposure else None,
    )
    recipient.text, recipient.ai_outcome = generated.text, generated.outcome
    recipient.processed_at = timezone.now()
    if not generated.is_sendable:
        recipient.status, recipient.reason, recipient.detail = Status.FAILED, Reason.NOT_SENDABLE, generated.reason[:200]
        recipient.save()
        return recipient
    if run.is_dry_run:
        recipient.status = Status.WOULD_COACH
        recipient.save()
        return recipient
    body, media = generated.text, {}
    if run.rules.get("is_voice_enabled"):
        body, media = _with_voice(recipient, generated.text)
    with transaction.atomic():
        queued = engage.message_queue(
            company=company, contact=worker.contact, channel=recipient.channel, body=body,
            agent_type=engage.AgentType.COACHNOVA, message_type="coaching", role=engage.ROLE_WORKER,
            idempotency_key=f"coachnova:{run.pk}:{worker.pk}", **media,
            experiment_assignment_id=exposure.assignment_id if exposure else None,
        )
        if not queued.decision.allowed:
            reason = queued.decision.reason
            recipient.status, recipient.reason = Status.SKIPPED, DECISION_REASONS.get(reason, Reason.CAPPED)
            recipient.detail = reason
        else:
            recipient.status, recipient.message = Status.COACHED, queued.message
            event_record(
                company=company, type="coaching.sent", contact=worker.contact, target=worker, source="coachnova",
                payload={"run_id": run.pk, "message_id": queued.message.pk, "booking_ids": recipient.booking_ids,
                         "text": generated.text, "ai_outcome": generated.outcome},
            )
        recipient.save()
    return recipient


def _with_voice(recipient: CoachingRecipient, text: str) -> tuple[str, dict[str, str]]:
    """The body and the media of the message: on a channel that sends audio natively (WhatsApp Cloud) the text
    and an audio message of its speech; elsewhere (SMS) the text with a link to it; the text alone (and why, on
    the row) when speech fails. A failed audio send is recorded on the message (metadata `media_error`)."""
    if not recipient.audio:
        try:
            name = speech_store(text=text)
        except VoiceError as error:
            recipient.voice_status = f"failed, text sent alone: {error}"[:200]
            return text, {}
        recipient.audio.name = name
    url = audio_url(recipient.audio.name)
    if engage.channel_sends_media(recipient.channel, "audio"):
        recipient.voice_status = "sent (audio message)"
        return text, {"media_url": url, "media_content_type": AUDIO_CONTENT_TYPE}
    recipient.voice_status = "sent (link)"
    return f"{text}\n{VOICE_LINK_LABEL} {url}", {}


def _counts(run: CoachingRun) -> dict:
    result: dict = {"status": {}, "reason": {}}
    for row in run.recipients.values("status", "reason").annotate(n=Count("pk")):
        result["status"][row["status"]] = result["status"].get(row["status"], 0) + row["n"]
        if row["reason"]:
            result["reason"][row["reason"]] = result["reason"].get(row["reason"], 0) + row["n"]
    return result


def coaching_run_execute(*, run_id: int) -> dict:
    """The run's ledger job: select once, then coach the pending workers, checking for pause and cancel."""
    run = CoachingRun.objects.select_related("company").get(pk=run_id)
    if run.status not in (CoachingRun.Status.QUEUED, CoachingRun.Status.RUNNING):
        return {"skipped": run.status}
    if not run.is_dry_run:
        resume_at = quiet_hours_end(company=run.company, rules=run.rules)
        if resume_at is not None:
            engage.job_enqueue(company=run.company, task_name=RUN_TASK, payload={"run_id": run.pk},
                               idempotency_key=f"{RUN_TASK}:{run.pk}:after:{resume_at.isoformat()}", run_at=resume_at)
            return {"deferred_until": resume_at.isoformat()}
    CoachingRun.objects.filter(pk=run.pk).update(status=CoachingRun.Status.RUNNING,
                                                 started_at=run.started_at or timezone.now())
    if not run.recipients.exists():
        run_select(run=run)
    engage.templates_seed_defaults(company=run.company)
    care_messages_send(run=run)  # the workers under a burnout alert: care, not coaching (coaching/care.py)
    pending = list(run.recipients.filter(status=Status.PENDING).order_by("pk"))
    for index, recipient in enumerate(pending):
        if index % STATUS_CHECK_EVERY == 0:
            status = CoachingRun.objects.values_list("status", flat=True).get(pk=run.pk)
            if status != CoachingRun.Status.RUNNING:
                return {"stopped": status}
        recipient.run = run
        recipient_coach(recipient=recipient)
    counts = _counts(run)
    CoachingRun.objects.filter(pk=run.pk, status=CoachingRun.Status.RUNNING).update(
        status=CoachingRun.Status.COMPLETED, finished_at=timezone.now(), counts=counts)
    return {"run_id": run.pk, **counts}
