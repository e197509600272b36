"""CoachNova's demo (run by `manage.py seed_demo` after engage's story): the home-services company's punctuality
computed from its demo bookings (half the demo workers are often late, crm.demo.worker_is_punctual), its
CoachNova settings, and two past runs with what each late worker received and answered, one reason accepted.

The two past runs are SEEDED, not measured: their before/after on-time rates are written here so that the run
page shows what an impact looks like, and the runs are marked `is_seeded` (the admin and the API say so). The
daily impact job never recomputes a seeded run."""

from __future__ import annotations

import datetime as dt
import random

from django.db import transaction
from django.utils import timezone

from coaching.impact import diff_in_diff
from coaching.models import CoachingRecipient, CoachingRun, CoachingSettings
from coaching.punctuality import local_today, punctuality_backfill
from coaching.runs import holdout_bucket, pattern_key
from crm.models import Company, Worker
from crm.services import event_record

DEMO_COMPANY_SLUG = "sheba-demo"  # crm.demo.HOME_SERVICES_SLUG
TEXT = ("{name}, আপনার কাজের জন্য ধন্যবাদ। গত দুই সপ্তাহে তিনটি বুকিংয়ে পৌঁছাতে একটু দেরি হয়েছে। দেরি হওয়ার "
        "সম্ভাবনা থাকলে আগে গ্রাহককে ফোন করে জানালে তাঁরা নিশ্চিন্ত থাকেন। কী কারণে দেরি হয়েছিল, জানাবেন?")
REPLIES = (
    ("রাস্তায় অনেক জ্যাম ছিল, মিরপুর থেকে আসতে দেড় ঘণ্টা লেগেছে।", "traffic"),
    ("গ্রাহক শেষ মুহূর্তে সময় বদলে দিয়েছিলেন।", "customer_moved"),
    ("পরপর তিনটা কাজ ছিল, মাঝে সময় কম।", "schedule_tight"),
)


def coaching_demo_seed(*, seed: int) -> list[str]:
    company = Company.objects.filter(slug=DEMO_COMPANY_SLUG).first()
    if company is None:
        return []
    CoachingSettings.objects.get_or_create(company=company)
    punctuality_backfill(company=company)
    if CoachingRun.objects.filter(company=company, is_seeded=True).exists():
        return _lines(company)
    rng = random.Random(f"{seed}:coaching")
    workers = list(Worker.objects.filter(company=company).select_related("contact").order_by("pk"))
    late = [worker for index, worker in enumerate(workers) if index % 2 == 1]
    today = local_today(company)
    with transaction.atomic():
        for weeks_ago in (9, 5):
            as_of = today - dt.timedelta(weeks=weeks_ago)
            run = CoachingRun.objects.create(
                company=company, status=CoachingRun.Status.COMPLETED, trigger="demo", as_of=as_of, is_seeded=True,
                rules={"pattern_late_count": 3, "pattern_window_days": 14, "holdout_percent": 10, "seeded": True},
                created_at=timezone.now() - dt.timedelta(weeks=weeks_ago), finished_at=timezone.now()
                - dt.timedelta(weeks=weeks_ago),
            )
            treated, control = [], []
            for index, worker in enumerate(late):
                is_holdout = index % 3 == 2  # a visible control group even with five late workers (seeded)
                before = rng.uniform(35, 60)
                after = before + (rng.uniform(10, 25) if not is_holdout else rng.uniform(-5, 8))
                row = CoachingRecipient(
                    run=run, company=company, worker=worker, channel="sms",
                    status=CoachingRecipient.Status.HOLDOUT if is_holdout else CoachingRecipient.Status.COACHED,
                    reason=CoachingRecipient.Reason.HOLDOUT if is_holdout else "",
                    holdout_bucket=holdout_bucket(run_id=run.pk, worker_id=worker.pk),
                    pattern_key=pattern_key([run.pk, worker.pk]), on_time_before=round(before, 1),
                    on_time_after=round(after, 1), created_at=run.created_at, processed_at=run.created_at,
                )
                (control if is_holdout else treated).append(after - before)
                if not is_holdout:
                    row.text = TEXT.format(name=worker.contact.name.split()[0])
                    row.ai_outcome = "ok"
                    if index % 2 == 0:
                        row.reply_text, row.reply_reason = REPLIES[(index + weeks_ago) % len(REPLIES)]
                        row.replied_at = run.created_at + dt.timedelta(hours=3)
                row.save()
                if row.status == CoachingRecipient.Status.COACHED:
                    event_record(company=company, type="coaching.sent", contact=worker.contact, target=worker,
                                 source="coachnova", occurred_at=run.created_at,
                                 payload={"run_id": run.pk, "text": row.text, "seeded": True})
            run.counts = {"status": {"coached": len(treated), "holdout": len(control)},
                          "reason": {"holdout": len(control)}}
            run.impact = {**diff_in_diff(treated=treated, control=control), "days_after": 28, "is_complete": True,
                          "is_seeded": True}
            run.save(update_fields=["counts", "impact"])
    return _lines(company)


def _lines(company: Company) -> list[str]:
    runs = CoachingRun.objects.filter(company=company, is_seeded=True).order_by("as_of")
    lines = [f"CoachNova: {runs.count()} past runs (SEEDED outcomes, labelled so) on {company.name}"]
    for run in runs:
        impact = run.impact or {}
        lines.append(f"  run {run.pk} ({run.as_of}): {impact.get('coached_n')} coached, {impact.get('holdout_n')} "
                     f"holdout, seeded difference {impact.get('estimate')} points")
    return lines
