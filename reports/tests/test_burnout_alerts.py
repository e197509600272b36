"""Burnout alerts end to end on PostgreSQL: the evaluation through the ledger (idempotent), the lifecycle with its
permissions, the managers' email over a real SMTP server, the `worker.burnout_alert` webhook to a local receiver,
the dashboard's count per company, the timeline, and coaching's skip with the care message instead."""

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from coaching.care import CARE_FALLBACK
from coaching.models import CoachingSettings
from coaching.punctuality import punctuality_backfill
from coaching.runs import coaching_run_trigger
from coaching.tests.helpers import booking_of, dhaka
from crm.models import Event, Membership
from crm.timeline import event_sentence
from engage.models import Job, Message
from engage.tests.helpers import jobs, run_job
from engage.tests.test_webhook_docs import DOCUMENTED_DATA
from reports.burnout.models import BurnoutAlert, BurnoutSettings
from reports.burnout.selectors import open_alert_count
from reports.burnout.services import (
    burnout_alert_acknowledge,
    burnout_alert_act,
    burnout_alert_resolve,
    burnout_evaluate,
    burnout_evaluate_all,
)
from reports.tests.helpers import job_of, local_day_at, manager_of, overworked, worker_of

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]  # a headline flow: also on SQLite without Redis


def test_an_overworked_worker_gets_one_alert_explained_in_numbers_however_often_it_runs(company):
    worker = worker_of(company)
    overworked(worker)  # 10 h on each of the 6 days before today: 60 h
    calm = worker_of(company, name="Rahim", phone="+8801911000102")
    job_of(calm, local_day_at(1), 480)

    first = burnout_evaluate(company=company)
    second = burnout_evaluate(company=company)

    [alert] = BurnoutAlert.objects.all()
    assert (alert.worker, alert.level, alert.status) == (worker, "alert", "open")
    assert alert.summary == "60 h in the last 7 days (threshold 55 h)"
    assert (alert.zone, alert.service_category) == ("Mirpur", "Cleaning")
    assert alert.metrics["hours_7d"] == 60 and alert.metrics["time_zone"] == "Asia/Dhaka"
    assert first == {"evaluated": 2, "opened": 1, "updated": 0, "cleared": 0, "escalated": 0}
    assert second == {"evaluated": 2, "opened": 0, "updated": 1, "cleared": 0, "escalated": 0}
    assert Event.objects.filter(type="worker.burnout_alert").count() == 1
    assert len(jobs("burnout_alert_notify")) == 1


def test_a_watch_escalates_to_an_alert_and_numbers_under_the_thresholds_clear_but_do_not_resolve(company):
    worker = worker_of(company)
    overworked(worker, hours_a_day=8.5)  # 51 h: a watch
    burnout_evaluate(company=company)
    alert = BurnoutAlert.objects.get()
    assert alert.level == "watch" and alert.summary == "51 h in the last 7 days (threshold 48 h)"

    job_of(worker, local_day_at(1, 19), 300)  # 56 h
    assert burnout_evaluate(company=company)["escalated"] == 1
    assert burnout_evaluate(company=company)["escalated"] == 0
    alert.refresh_from_db()
    assert alert.level == "alert" and alert.summary.startswith("56 h")
    # the managers hear of the escalation as they heard of the watch: a second event (and webhook), a second email job
    events = Event.objects.filter(type="worker.burnout_alert").order_by("pk")
    assert [(event.payload["level"], event.payload["is_escalation"]) for event in events] == [
        ("watch", False), ("alert", True)]
    assert event_sentence(events[1]) == "Burnout watch became an alert: " + alert.summary
    assert [job.idempotency_key for job in jobs("burnout_alert_notify")] == [
        f"burnout_alert_notify:{alert.pk}", f"burnout_alert_notify:{alert.pk}:alert"]

    BurnoutSettings.objects.filter(company=company).update(watch_hours_7d=60, alert_hours_7d=70)
    burnout_evaluate(company=company)
    alert.refresh_from_db()
    assert alert.level == "alert" and alert.status == "open" and alert.cleared_at is not None
    assert open_alert_count(company) == 1


def test_lateness_reads_arrived_at_against_scheduled_at_of_the_bookings(company):
    worker = worker_of(company)
    for days_ago in (1, 2, 3):
        due = local_day_at(days_ago, 9)
        job_of(worker, due, 60, arrived_at=due + dt.timedelta(minutes=25), started_at=due + dt.timedelta(minutes=30),
               finished_at=due + dt.timedelta(minutes=90))
    burnout_evaluate(company=company)
    alert = BurnoutAlert.objects.get()
    assert alert.level == "watch"
    assert alert.summary == "3 late arrivals in the last 14 days, up from 0 in the 14 before"


def test_a_company_can_switch_alerts_off(company):
    overworked(worker_of(company))
    BurnoutSettings.objects.create(company=company, is_enabled=False)
    assert burnout_evaluate(company=company) == {"skipped": "disabled"}
    assert not BurnoutAlert.objects.exists()


def test_the_hourly_beat_evaluates_through_the_ledger_once_per_company_and_hour(company, other_company):
    overworked(worker_of(company))
    assert burnout_evaluate_all(hour_key="2026-12-07T10") == {"queued": 2}
    assert burnout_evaluate_all(hour_key="2026-12-07T10") == {"queued": 2}  # the same keys: no new jobs
    evaluations = jobs("burnout_evaluate")
    assert sorted(job.company_id for job in evaluations) == sorted([company.pk, other_company.pk])

    assert all(run_job(job) == "completed" for job in evaluations)
    assert BurnoutAlert.objects.filter(company=company).count() == 1
    assert not BurnoutAlert.objects.filter(company=other_company).exists()


def test_the_companys_owners_and_operations_are_emailed_once_over_smtp(company, other_company, smtp_server, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp_server.port
    manager_of(company, email="owner@alpha.test", role=Membership.Role.OWNER, groups=())
    manager_of(company, email="ops@alpha.test")
    manager_of(company, email="marketing@alpha.test", role=Membership.Role.MARKETING, groups=("Marketing",))
    manager_of(other_company, email="ops@beta.test")
    overworked(worker_of(company, name="Karim Mia"))
    burnout_evaluate(company=company)
    [notify] = jobs("burnout_alert_notify")

    assert run_job(notify) == "completed"
    Job.objects.filter(pk=notify.pk).update(status="queued")  # a redelivered job
    run_job(notify)

    [message] = smtp_server.messages
    assert sorted(smtp_server.envelopes[0].rcpt_tos) == ["ops@alpha.test", "owner@alpha.test"]
    assert message["Subject"] == "[Alpha Home Services] Burnout alert: Karim Mia"
    body = message.get_body(preferencelist=("plain",)).get_content()
    assert "60 h in the last 7 days (threshold 55 h)" in body and "Zone: Mirpur" in body
    assert f"/admin/reports/burnoutalert/{BurnoutAlert.objects.get().pk}/change/" in body
    alert = BurnoutAlert.objects.get()
    assert (alert.notified_at is not None, alert.notified_level) == (True, "alert")


def test_a_watch_then_its_escalation_are_two_emails_and_a_late_first_job_sends_nothing_twice(company, smtp_server,
                                                                                             settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp_server.port
    manager_of(company, email="ops@alpha.test")
    worker = worker_of(company, name="Karim Mia")
    overworked(worker, hours_a_day=8.5)  # 51 h: a watch
    burnout_evaluate(company=company)
    [watch_job] = jobs("burnout_alert_notify")
    assert run_job(watch_job) == "completed"
    job_of(worker, local_day_at(1, 19), 300)  # 56 h: an alert
    burnout_evaluate(company=company)
    [_, alert_job] = jobs("burnout_alert_notify")
    assert run_job(alert_job) == "completed"
    Job.objects.filter(pk__in=[watch_job.pk, alert_job.pk]).update(status="queued")  # both redelivered
    run_job(watch_job)
    run_job(alert_job)

    subjects = [message["Subject"] for message in smtp_server.messages]
    assert subjects == ["[Alpha Home Services] Burnout watch: Karim Mia", "[Alpha Home Services] Burnout alert: Karim Mia"]
    assert "now an alert" in smtp_server.messages[1].get_body(preferencelist=("plain",)).get_content()


def test_a_failed_email_is_retried_by_the_ledger(company, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2  # nobody listens
    manager_of(company, email="ops@alpha.test")
    overworked(worker_of(company))
    burnout_evaluate(company=company)
    [notify] = jobs("burnout_alert_notify")
    assert run_job(notify) != "completed"
    assert BurnoutAlert.objects.get().notified_at is None  # the claim rolled back with the failed send
    assert (Job.objects.get(pk=notify.pk).status, Job.objects.get(pk=notify.pk).attempts) == ("failed", 1)  # will retry


def test_the_outbound_webhook_receives_worker_burnout_alert(company, webhook_receiver):
    receiver = webhook_receiver(secret="whsec_burnout_0123456789")
    company.webhook_url, company.webhook_secret = receiver.url, "whsec_burnout_0123456789"
    company.save()
    worker = worker_of(company)
    overworked(worker)
    burnout_evaluate(company=company)
    burnout_evaluate(company=company)

    [delivery_job] = jobs("webhook_reminder")
    assert run_job(delivery_job) == "completed"

    [delivery] = receiver.received
    assert delivery.is_valid
    event = delivery.payload
    assert event["type"] == "worker.burnout_alert"
    assert set(event["data"]) == DOCUMENTED_DATA["worker.burnout_alert"] | {"event_id", "contact_id", "occurred_at"}
    alert = BurnoutAlert.objects.get()
    assert (event["data"]["alert_id"], event["data"]["worker_id"], event["data"]["level"]) == (alert.pk, worker.pk,
                                                                                               "alert")
    assert event["data"]["summary"] == "60 h in the last 7 days (threshold 55 h)"
    assert event["data"]["contact_id"] == worker.contact_id


def test_the_lifecycle_open_acknowledged_acted_on_resolved_keeps_the_outcome_and_tells_the_timeline(company):
    manager = manager_of(company, email="ops@alpha.test")
    worker = worker_of(company)
    overworked(worker)
    burnout_evaluate(company=company)
    alert = BurnoutAlert.objects.get()

    assert burnout_alert_acknowledge(alert=alert, actor=manager) is True
    assert burnout_alert_acknowledge(alert=alert, actor=manager) is False  # already acknowledged
    with pytest.raises(ValidationError):
        burnout_alert_act(alert=alert, actor=manager, action="day_off", note="  ")
    alert.refresh_from_db()
    assert alert.status == "acknowledged" and alert.acted_at is None
    assert burnout_alert_act(alert=alert, actor=manager, action="day_off", note="Two days off, Friday and Saturday")
    assert burnout_alert_resolve(alert=alert, actor=manager, outcome="recovered", note="Back to 40 h a week")

    alert.refresh_from_db()
    assert (alert.status, alert.action, alert.action_note, alert.outcome, alert.outcome_note) == (
        "resolved", "day_off", "Two days off, Friday and Saturday", "recovered", "Back to 40 h a week")
    assert alert.acknowledged_by == alert.acted_by == alert.resolved_by == manager
    assert alert.acknowledged_at <= alert.acted_at <= alert.resolved_at
    assert open_alert_count(company) == 0
    timeline = [event_sentence(event) for event in
                Event.objects.filter(contact=worker.contact, type__contains="burnout").order_by("pk")]
    actor = f" by {manager.full_name}"
    assert timeline == [
        "Burnout alert opened: 60 h in the last 7 days (threshold 55 h)",
        "Burnout alert acknowledged" + actor,
        "Burnout alert acted on: Two days off, Friday and Saturday" + actor,
        "Burnout alert resolved (recovered)" + actor,
    ]
    # resolved is final; the next evaluation opens a new alert if the numbers still say so
    assert burnout_alert_act(alert=alert, actor=manager, action="other", note="late note") is False
    burnout_evaluate(company=company)
    assert BurnoutAlert.objects.filter(worker=worker).count() == 2 and open_alert_count(company) == 1


def test_only_the_companys_owners_and_operations_handle_its_alerts(company, other_company):
    marketing = manager_of(company, email="marketing@alpha.test", role=Membership.Role.MARKETING, groups=())
    stranger = manager_of(other_company, email="ops@beta.test")
    owner = manager_of(company, email="owner@alpha.test", role=Membership.Role.OWNER, groups=())
    overworked(worker_of(company))
    burnout_evaluate(company=company)
    alert = BurnoutAlert.objects.get()

    for user in (marketing, stranger):
        with pytest.raises(PermissionDenied):
            burnout_alert_acknowledge(alert=alert, actor=user)
        with pytest.raises(PermissionDenied):
            burnout_alert_resolve(alert=alert, actor=user, outcome="false_alarm")
    alert.refresh_from_db()
    assert alert.status == "open" and alert.acknowledged_at is None
    assert not Event.objects.filter(type__startswith="burnout.").exists()
    assert burnout_alert_resolve(alert=alert, actor=owner, outcome="false_alarm")


def test_the_dashboard_count_is_per_company(company, other_company):
    overworked(worker_of(company))
    overworked(worker_of(company, name="Rahim", phone="+8801911000102"))
    overworked(worker_of(other_company, phone="+8801911000103"))
    burnout_evaluate(company=company)
    burnout_evaluate(company=other_company)
    assert (open_alert_count(company), open_alert_count(other_company)) == (2, 1)
    manager = manager_of(company, email="ops@alpha.test")
    burnout_alert_resolve(alert=BurnoutAlert.objects.filter(company=company).first(), actor=manager,
                          outcome="recovered")
    assert (open_alert_count(company), open_alert_count(other_company)) == (1, 1)


# --- coaching: no punctuality coaching under an open alert, a care message instead ------------------------------

AS_OF = dt.date(2026, 11, 30)
CARE_TEXT = ("করিম ভাই, গত কয়েক দিন আপনি অনেক পরিশ্রম করেছেন, ধন্যবাদ। একটু বিশ্রাম নিন; আপনার সময়সূচি হালকা "
             "করতে আপনার ম্যানেজার সাহায্য করবেন।")


@pytest.fixture
def _daytime(monkeypatch):
    monkeypatch.setattr("coaching.runs.quiet_hours_end", lambda **kwargs: None)


def late_pattern_worker(company, phone):
    worker = worker_of(company, phone=phone)
    for day in range(3):
        booking_of(worker, dhaka(2026, 11, 20 + day), late_minutes=25)
    return worker


def coach(company):
    punctuality_backfill(company=company, as_of=AS_OF)
    CoachingSettings.objects.filter(company=company).update(holdout_percent=0)
    run = coaching_run_trigger(company=company, as_of=AS_OF)
    assert run_job(Job.objects.get(task_name="coachnova_run", payload={"run_id": run.pk})) == "completed"
    return {row.worker_id: row for row in run.recipients.select_related("message")}


@pytest.mark.usefixtures("_daytime")
def test_a_worker_under_an_open_alert_gets_a_care_message_instead_of_coaching(company, twilio_account, fake_openai):
    fake_openai.reply(CARE_TEXT)
    tired = late_pattern_worker(company, "+8801911000201")
    BurnoutAlert.objects.create(company=company, worker=tired, level="alert", summary="60 h in the last 7 days")

    rows = coach(company)

    row = rows[tired.pk]
    assert (row.status, row.reason, row.ai_outcome, row.text) == ("skipped", "burnout", "care_ok", CARE_TEXT)
    assert row.message.body == CARE_TEXT and row.message.message_type == "coaching"
    assert row.message.agent_type == "coachnova" and row.detail == "care message sent instead of coaching"
    # the model was asked for care, not coaching: no late bookings in its prompt
    prompt = " ".join(message["content"] for message in fake_openai.requests[-1]["messages"])
    assert "Do not mention lateness" in prompt and "মিনিট দেরি" not in prompt
    assert Event.objects.filter(type="coaching.care_sent", contact=tired.contact).count() == 1
    assert not Event.objects.filter(type="coaching.sent").exists()
    assert Message.objects.filter(direction="outbound", contact=tired.contact).count() == 1


@pytest.mark.usefixtures("_daytime")
def test_the_care_text_replaces_a_failed_or_unsafe_model_and_a_resolved_alert_is_coached_again(
        company, twilio_account, fake_openai):
    fake_openai.reply("আবার দেরি করলে আপনার অ্যাকাউন্ট বন্ধ করে দেওয়া হবে এবং জরিমানা হবে।")  # a threat
    tired = late_pattern_worker(company, "+8801911000202")
    resolved = late_pattern_worker(company, "+8801911000203")
    BurnoutAlert.objects.create(company=company, worker=tired, level="watch", summary="9 days without a day off")
    BurnoutAlert.objects.create(company=company, worker=resolved, level="alert", summary="58 h", status="resolved",
                                outcome="recovered")

    rows = coach(company)

    assert (rows[tired.pk].reason, rows[tired.pk].ai_outcome) == ("burnout", "care_fallback")
    assert rows[tired.pk].message.body == CARE_FALLBACK.format(name="Karim")
    assert (rows[resolved.pk].status, rows[resolved.pk].reason) == ("coached", "")
