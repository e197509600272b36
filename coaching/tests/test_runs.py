"""CoachNova runs: who is selected and why the others are not, the holdout, dry runs, one active run, pause and
cancel, the message (model, safety filter, fallback), never twice for one pattern, the reply path and opt-out."""

import datetime as dt

import pytest
from prometheus_client import REGISTRY

from coaching.burnout import burnout_provider_register, burnout_provider_unregister
from coaching.models import BookingPunctuality, CoachingRun, CoachingSettings, WorkerPunctuality
from coaching.punctuality import punctuality_backfill, worker_stats_refresh
from coaching.replies import coaching_reply_accept, reply_reason
from coaching.runs import (
    CoachingRunLocked,
    CoachNovaDisabled,
    coaching_run_cancel,
    coaching_run_pause,
    coaching_run_resume,
    coaching_run_trigger,
    holdout_bucket,
    quiet_hours_end,
)
from coaching.tests.helpers import booking_of, dhaka, worker_of
from crm.models import Event
from engage import api as engage
from engage.models import EngagementPolicy, Job, Message
from engage.tests.helpers import capture, run_job

AS_OF = dt.date(2026, 11, 30)
GOOD_TEXT = ("করিম ভাই, আপনার কাজের জন্য ধন্যবাদ। গত দুই সপ্তাহে তিনটি বুকিংয়ে পৌঁছাতে একটু দেরি হয়েছে। "
             "দেরি হলে আগে গ্রাহককে ফোন করে জানালে সুবিধা হয়। কী কারণে দেরি হয়েছিল, জানাবেন?")


pytestmark = pytest.mark.embedded  # a headline flow: also on SQLite without Redis (make test)



@pytest.fixture(autouse=True)
def _daytime(monkeypatch):
    # runs outside Dhaka's quiet hours unless a test says otherwise
    monkeypatch.setattr("coaching.runs.quiet_hours_end", lambda **kwargs: None)


def late_worker(company, n_late=3, *, phone, name="Karim Mia", **contact):
    worker = worker_of(company, phone=phone, name=name, **contact)
    for day in range(n_late):
        booking_of(worker, dhaka(2026, 11, 20 + day), late_minutes=25)
    booking_of(worker, dhaka(2026, 11, 27))
    return worker


def start(company, **kwargs):
    run = coaching_run_trigger(company=company, as_of=AS_OF, **kwargs)
    job = Job.objects.get(task_name="coachnova_run", payload={"run_id": run.pk})
    assert run_job(job) == "completed"
    run.refresh_from_db()
    return run


def rows(run):
    return {row.worker_id: row for row in run.recipients.all()}


@pytest.fixture(params=["rollup", "bookings"])
def selection_source(request, monkeypatch):
    """Both sources of a selection: the workers' stored windows, and the bookings grouped (a run for another day
    or another window than the stored ones)."""
    if request.param == "bookings":
        monkeypatch.setattr("coaching.runs.ROLLUP_WINDOWS", ())
    return request.param


@pytest.mark.django_db
def test_selection_records_a_reason_for_every_worker_left_out(company, twilio_account, selection_source):
    on_time = late_worker(company, 0, phone="+8801911000101")
    two_late = late_worker(company, 2, phone="+8801911000102")
    pattern = late_worker(company, 3, phone="+8801911000103")
    excused = late_worker(company, 3, phone="+8801911000104")
    no_consent = late_worker(company, 3, phone="+8801911000105", is_sms_consented=False)
    under_alert = late_worker(company, 4, phone="+8801911000106")
    punctuality_backfill(company=company, as_of=AS_OF)
    first_late = BookingPunctuality.objects.filter(worker=excused, outcome="late").first()
    BookingPunctuality.objects.filter(pk=first_late.pk).update(is_excused=True)
    worker_stats_refresh(company=company, worker_ids=[excused.pk], as_of=AS_OF)
    CoachingSettings.objects.filter(company=company).update(holdout_percent=0)

    def provider(*, company, worker_ids):
        return {under_alert.pk}

    burnout_provider_register(provider)
    try:
        run = start(company, is_dry_run=True)
    finally:
        burnout_provider_unregister(provider)

    found = {worker_id: (row.status, row.reason) for worker_id, row in rows(run).items()}
    assert found == {
        on_time.pk: ("skipped", "on_time"),
        two_late.pk: ("skipped", "pattern_not_met"),
        pattern.pk: ("would_coach", ""),
        excused.pk: ("skipped", "excused"),
        no_consent.pk: ("skipped", "no_consent"),
        under_alert.pk: ("skipped", "burnout"),
    }
    # a dry run writes what it would send, and sends nothing
    assert rows(run)[pattern.pk].text and not Message.objects.filter(direction="outbound").exists()
    assert run.status == "completed" and run.counts["reason"]["on_time"] == 1


@pytest.mark.django_db
def test_the_holdout_is_a_stable_hash_recorded_on_each_row(company, twilio_account):
    workers = [late_worker(company, 3, phone=f"+88019110002{n:02d}") for n in range(20)]
    punctuality_backfill(company=company, as_of=AS_OF)
    CoachingSettings.objects.filter(company=company).update(holdout_percent=50)

    run = start(company, is_dry_run=True)

    for worker in workers:
        row = rows(run)[worker.pk]
        assert row.holdout_bucket == holdout_bucket(run_id=run.pk, worker_id=worker.pk)
        assert (row.status == "holdout") == (row.holdout_bucket < 50)
    statuses = [row.status for row in run.recipients.all()]
    assert 0 < statuses.count("holdout") < 20  # 20 fair coins: all one side has probability 2 in a million
    # the same run and worker always land in the same bucket
    assert holdout_bucket(run_id=run.pk, worker_id=workers[0].pk) == rows(run)[workers[0].pk].holdout_bucket


@pytest.mark.django_db
def test_a_real_run_sends_the_models_text_once_and_never_twice_for_one_pattern(company, twilio_account, fake_twilio,
                                                                                 fake_openai):
    fake_openai.reply(GOOD_TEXT)
    worker = late_worker(company, 3, phone="+8801911000301")
    punctuality_backfill(company=company, as_of=AS_OF)
    CoachingSettings.objects.filter(company=company).update(holdout_percent=0)

    run = start(company)

    row = rows(run)[worker.pk]
    assert (row.status, row.ai_outcome, row.text) == ("coached", "ok", GOOD_TEXT)
    assert row.message.agent_type == "coachnova" and row.message.message_type == "coaching"
    # the prompt named the late bookings with Bengali dates, and no other worker
    prompt = fake_openai.requests[-1]["messages"][1]["content"]
    assert "২০ নভেম্বর ২০২৬" in prompt and "২৫ মিনিট দেরি" in prompt
    assert Event.objects.filter(type="coaching.sent", contact=worker.contact).count() == 1
    labels = {"agent_type": "coachnova", "channel": "sms", "message_type": "coaching", "status": "sent"}
    before = REGISTRY.get_sample_value("ai_messages_sent_total", labels) or 0
    assert run_job(row.message.job) == "completed" and len(fake_twilio.requests) == 1
    assert REGISTRY.get_sample_value("ai_messages_sent_total", labels) == before + 1  # the seed's metric names

    # the job runs again (a redelivery): nothing new; a new run the same day: already coached for this pattern
    Job.objects.filter(task_name="coachnova_run").update(status="queued")
    CoachingRun.objects.filter(pk=run.pk).update(status="running")
    run_job(Job.objects.get(task_name="coachnova_run"))
    assert Message.objects.filter(direction="outbound", agent_type="coachnova").count() == 1
    again = start(company)
    assert rows(again)[worker.pk].reason == "already_coached"


@pytest.mark.django_db
def test_a_threatening_model_text_is_replaced_by_the_approved_fallback(company, twilio_account, fake_openai):
    fake_openai.reply("আবার দেরি করলে আপনার অ্যাকাউন্ট বন্ধ করে দেওয়া হবে এবং জরিমানা হবে।")
    worker = late_worker(company, 3, phone="+8801911000401")
    punctuality_backfill(company=company, as_of=AS_OF)
    CoachingSettings.objects.filter(company=company).update(holdout_percent=0)

    run = start(company)

    row = rows(run)[worker.pk]
    assert row.status == "coached" and row.ai_outcome != "ok"
    assert "জরিমানা" not in row.text and "বন্ধ" not in row.text and row.message.body == row.text


@pytest.mark.django_db
def test_one_active_run_per_company_and_pause_resume_cancel(company, twilio_account, fake_openai):
    fake_openai.reply(GOOD_TEXT)
    late_worker(company, 3, phone="+8801911000501")
    punctuality_backfill(company=company, as_of=AS_OF)
    run = coaching_run_trigger(company=company, as_of=AS_OF)
    with pytest.raises(CoachingRunLocked):
        coaching_run_trigger(company=company, as_of=AS_OF)

    assert coaching_run_pause(run=run)
    assert run_job(Job.objects.get(task_name="coachnova_run")) == "completed"
    assert not run.recipients.exists()  # paused: nothing selected, nothing sent

    assert coaching_run_resume(run=run)
    resumed = Job.objects.filter(task_name="coachnova_run", status="queued").get()
    assert run_job(resumed) == "completed"
    run.refresh_from_db()
    assert run.status == "completed" and run.recipients.count() == 1

    second = coaching_run_trigger(company=company, as_of=AS_OF)
    assert coaching_run_cancel(run=second)
    second.refresh_from_db()
    assert second.status == "cancelled"
    coaching_run_trigger(company=company, as_of=AS_OF)  # a cancelled run no longer blocks


@pytest.mark.django_db
def test_switched_off_by_policy(company):
    EngagementPolicy.objects.update_or_create(company=company, defaults={"is_coachnova_enabled": False})
    from django.core.cache import cache

    cache.clear()
    with pytest.raises(CoachNovaDisabled):
        coaching_run_trigger(company=company)


@pytest.mark.django_db
def test_caps_a_worker_messaged_this_week_is_skipped_as_capped(company, twilio_account, fake_openai):
    fake_openai.reply(GOOD_TEXT)
    worker = late_worker(company, 3, phone="+8801911000601")
    punctuality_backfill(company=company, as_of=AS_OF)
    CoachingSettings.objects.filter(company=company).update(holdout_percent=0)
    engage.message_queue(company=company, contact=worker.contact, channel="sms", body="ধন্যবাদ।",
                         agent_type="coachnova", message_type="coaching", idempotency_key="earlier",
                         role=engage.ROLE_WORKER)

    run = start(company)

    assert (rows(run)[worker.pk].status, rows(run)[worker.pk].reason) == ("skipped", "capped")


@pytest.mark.django_db
def test_quiet_hours_in_dhaka():
    from zoneinfo import ZoneInfo

    from crm.models import Company

    company = Company(timezone="Asia/Dhaka")
    rules = {"quiet_start_hour": 21, "quiet_end_hour": 9}
    dhaka_zone = ZoneInfo("Asia/Dhaka")
    assert quiet_hours_end(company=company, rules=rules, now=dt.datetime(2026, 12, 6, 10, tzinfo=dhaka_zone)) is None
    end = quiet_hours_end(company=company, rules=rules, now=dt.datetime(2026, 12, 6, 23, 30, tzinfo=dhaka_zone))
    assert end == dt.datetime(2026, 12, 7, 9, tzinfo=dhaka_zone)
    end = quiet_hours_end(company=company, rules=rules, now=dt.datetime(2026, 12, 7, 0, 5, tzinfo=dhaka_zone))
    assert end == dt.datetime(2026, 12, 7, 9, tzinfo=dhaka_zone)


def test_reply_reasons():
    assert reply_reason("রাস্তায় অনেক জ্যাম ছিল") == "traffic"
    assert reply_reason("গ্রাহক সময় বদলে দিয়েছিলেন") == "customer_moved"
    assert reply_reason("The customer changed the time") == "customer_moved"
    assert reply_reason("পরপর তিনটা কাজ ছিল, সময় কম") == "schedule_tight"
    assert reply_reason("ঠিক আছে") == "other"


@pytest.mark.django_db
def test_a_workers_reply_lands_on_the_coaching_and_a_manager_accepting_it_excuses_the_bookings(
        company, staff_user, twilio_account, fake_openai):
    fake_openai.reply(GOOD_TEXT)
    worker = late_worker(company, 3, phone="+8801911000701")
    punctuality_backfill(company=company, as_of=AS_OF)
    CoachingSettings.objects.filter(company=company).update(holdout_percent=0)
    run = start(company)
    sent_requests = len(fake_openai.requests)

    # the worker answers on SMS
    result = capture(company, "রাস্তায় অনেক জ্যাম ছিল ভাই", phone=worker.contact.phone, channel="sms")
    assert run_job(result.job_id) == "completed"

    row = rows(run)[worker.pk]
    assert row.reply_reason == "traffic" and "জ্যাম" in row.reply_text and row.replied_at
    assert len(fake_openai.requests) == sent_requests  # the sales AI did not answer the worker
    assert Event.objects.filter(type="coaching.replied", contact=worker.contact).exists()

    assert coaching_reply_accept(recipient=row, actor=staff_user) == 3
    assert BookingPunctuality.objects.filter(worker=worker, is_excused=True).count() == 3
    assert WorkerPunctuality.objects.get(worker=worker).late_14 == 0


@pytest.mark.django_db
def test_stop_from_a_worker_withdraws_consent_and_the_next_run_skips_them(company, twilio_account, fake_openai):
    fake_openai.reply(GOOD_TEXT)
    worker = late_worker(company, 3, phone="+8801911000801")
    punctuality_backfill(company=company, as_of=AS_OF)
    CoachingSettings.objects.filter(company=company).update(holdout_percent=0)

    capture(company, "STOP", phone=worker.contact.phone, channel="sms")
    run = start(company, is_dry_run=True)

    assert rows(run)[worker.pk].reason == "no_consent"
