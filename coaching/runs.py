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
from django.utils.translation import gettext_noop

from coaching.burnout import workers_under_burnout_alert
from coaching.care import care_messages_send
from coaching.compose import coaching_text_generate
from coaching.models import BookingPunctuality, CoachingRecipient, CoachingRun, CoachingSettings, WorkerPunctuality
from coaching.punctuality import LATE_OUTCOMES, coaching_settings_for, company_zone, local_today
from coaching.runs_sql import selection_insert
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


ROLLUP_WINDOWS = (14, 28)
# Tests set it to run the Python loop on PostgreSQL too (the two paths are held equal).
PYTHON_ONLY = False


def coachnova_check(*, company: Company) -> None:
    if not engage.policy_for(company=company).is_coachnova_enabled:
        raise CoachNovaDisabled(gettext_noop("CoachNova is switched off in this company's engagement policy."))


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
        raise CoachingRunLocked(gettext_noop("A CoachNova run of this company is already queued, running or paused.")) from None
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
    with its reason. One transaction: a crash leaves no half selection. PostgreSQL writes the rows by two
    `INSERT ... SELECT` (coaching.runs_sql); the Python loop below is the portable twin (SQLite)."""
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
    now = timezone.now()
    if connection.vendor == "postgresql" and not PYTHON_ONLY:
        # Only the candidates' ids come to Python, for the burnout hook; the rows are written by the database.
        candidates = list(per_worker.filter(late__gte=threshold).values_list("worker_id", flat=True))
        burnout = workers_under_burnout_alert(company=company, worker_ids=candidates)
        # The company's experiment holdout (engage.experiments) comes before CoachNova's own, as below.
        exposures = engage.experiment_exposures_for(company=company, applies_to="coaching", unit_ids=candidates,
                                                    record=False)
        experiment_holdout = {worker_id for worker_id, exposure in exposures.items() if exposure.is_holdout}
        with transaction.atomic():
            if CoachingRecipient.objects.filter(run=run).exists():
                return {"selected": 0, "candidates": len(candidates), "skipped_below_pattern": 0}
            below, chosen = selection_insert(run=run, start=start, window=window_days if is_rollup else None,
                                             burnout=burnout, now=now, late_outcomes=LATE_OUTCOMES,
                                             experiment_holdout=experiment_holdout)
        return {"selected": below + chosen, "candidates": chosen, "skipped_below_pattern": below}

    rows: list[CoachingRecipient] = []
    candidates = []

    def skip(worker_id: int, reason: str, **extra) -> None:
        rows.append(CoachingRecipient(run=run, company=company, worker_id=worker_id, status=Status.SKIPPED,
                                      reason=reason, created_at=now, processed_at=now, **extra))

    for stat in per_worker.iterator(chunk_size=10000):
        if stat["late"] >= threshold:
            candidates.append(stat["worker_id"])
        elif stat["late"] == 0 and stat["excused"] == 0:
            skip(stat["worker_id"], Reason.ON_TIME)
        elif stat["late"] + stat["excused"] >= threshold:
            skip(stat["worker_id"], Reason.EXCUSED)
        else:
            skip(stat["worker_id"], Reason.PATTERN_NOT_MET, detail=f"{stat['late']} of {threshold}")
    below = len(rows)
    late_ids: dict[int, list[int]] = defaultdict(list)
    for worker_id, booking_id in (in_window.filter(late, is_excused=False, worker_id__in=candidates)
                                  .order_by("scheduled_at", "booking_id").values_list("worker_id", "booking_id")):
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
    with transaction.atomic():
        if CoachingRecipient.objects.filter(run=run).exists():
            return {"selected": 0, "candidates": len(rows) - below, "skipped_below_pattern": 0}
        CoachingRecipient.objects.bulk_create(rows, batch_size=2000)
    return {"selected": len(rows), "candidates": len(rows) - below, "skipped_below_pattern": below}


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


def _awake_window(rules: dict) -> tuple[int, int]:
    """CoachNova's send window: the hours between the end of quiet hours and their start (9-21 by default)."""
    start, end = rules.get("quiet_end_hour", 9), rules.get("quiet_start_hour", 21)
    return (start, end) if start < end else (0, 24)


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
    # A send-setting arm's window, or the send-time arm's best hour (inside the hours outside quiet hours):
    # the message is queued now and sent then.
    send_at = engage.experiment_send_at(
        company=company, contact=worker.contact, exposure=exposure, window=_awake_window(run.rules)
    )
    with transaction.atomic():
        queued = engage.message_queue(
            company=company, contact=worker.contact, channel=recipient.channel, body=body,
            agent_type=engage.AgentType.COACHNOVA, message_type="coaching", role=engage.ROLE_WORKER,
            idempotency_key=f"coachnova:{run.pk}:{worker.pk}", **media,
            experiment_assignment_id=exposure.assignment_id if exposure else None, run_at=send_at,
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
