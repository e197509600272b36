"""message_send (at most once per job) and message_status_update (forward-only), and the signal receivers."""

import uuid

import pytest
from django.utils import timezone

from channels_app import registry
from channels_app.adapters.console import outbox
from channels_app.base import ChannelAdapter, ChannelError, SendResult
from channels_app.signals import delivery_status_changed
from crm.models import Event
from crm.tests.factories import ContactFactory, LeadFactory
from engage.ledger.services import job_enqueue
from engage.messaging.services import message_send, message_status_update
from engage.models import Job, Message


class ScriptedAdapter(ChannelAdapter):
    """Answers from a script: an exception to raise, or a provider id to return."""

    name = "sms"
    script: list = []
    sent: list = []

    def send(self, message):
        ScriptedAdapter.sent.append(message)
        outcome = ScriptedAdapter.script.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return SendResult(provider_message_id=outcome, raw={"sid": outcome})


@pytest.fixture
def scripted(monkeypatch):
    monkeypatch.setitem(registry._ADAPTERS, "sms", ScriptedAdapter)
    ScriptedAdapter.script, ScriptedAdapter.sent = [], []
    return ScriptedAdapter


@pytest.fixture
def lead(company):
    return LeadFactory(company=company, contact=ContactFactory(company=company, phone="+8801712000001"))


@pytest.fixture
def job(company):
    return job_enqueue(company=company, task_name="ai_engage", payload={}, idempotency_key="send-test")


def send(job, lead, channel="console", **kwargs):
    return message_send(
        job=job, company=lead.company, contact=lead.contact, lead=lead, channel=channel,
        body=kwargs.pop("body", "Hello from Alpha"), agent_type="sales", message_type="reply", **kwargs
    )


def counter_value(counter, **labels):
    return counter.labels(**labels)._value.get()


@pytest.mark.django_db
def test_send_records_the_message_sent_with_provider_id_event_and_metric(job, lead):
    from shokti import metrics

    labels = {"agent_type": "sales", "channel": "console", "message_type": "reply", "status": "sent"}
    before = counter_value(metrics.ai_messages_sent_total, **labels)
    outbox.clear()

    message = send(job, lead)

    message.refresh_from_db()
    assert (message.direction, message.status, message.job, message.lead, message.contact) == (
        "outbound", "sent", job, lead, lead.contact
    )
    assert message.provider_message_id.startswith("console-") and message.sent_at is not None
    assert [m.message_id for m in outbox] == [message.pk]
    assert outbox[0].to_phone == "+8801712000001"
    event = Event.objects.get(type="message.sent")
    assert (event.target, event.correlation_id, event.payload["job_id"]) == (message, message.correlation_id, job.pk)
    assert counter_value(metrics.ai_messages_sent_total, **labels) == before + 1


@pytest.mark.django_db
def test_send_twice_for_one_job_sends_once(job, lead):
    outbox.clear()
    first = send(job, lead)

    second = send(job, lead, body="a different text on the retry")

    assert second.pk == first.pk and second.body == "Hello from Alpha"
    assert len(outbox) == 1
    assert Message.objects.count() == 1 and Event.objects.filter(type="message.sent").count() == 1


@pytest.mark.django_db
def test_transient_error_leaves_it_queued_and_raises_then_the_retry_sends(job, lead, scripted):
    scripted.script = [ChannelError("provider timeout"), "SM1"]

    with pytest.raises(ChannelError):
        send(job, lead, channel="sms")
    message = Message.objects.get()
    assert (message.status, message.error) == ("queued", "provider timeout")

    again = send(job, lead, channel="sms")

    assert again.pk == message.pk
    assert (again.status, again.provider_message_id, again.error) == ("sent", "SM1", "")
    assert len(scripted.sent) == 2 and {m.message_id for m in scripted.sent} == {message.pk}


@pytest.mark.django_db
def test_permanent_error_marks_failed_and_raises_permanent(job, lead, scripted):
    from shokti import metrics

    before = counter_value(metrics.ai_messages_failed_total, agent_type="sales", channel="sms", reason="send_rejected")
    scripted.script = [ChannelError("not a mobile number", permanent=True)]

    with pytest.raises(ChannelError) as error:
        send(job, lead, channel="sms")

    assert error.value.permanent is True
    message = Message.objects.get()
    assert (message.status, message.error) == ("failed", "not a mobile number") and message.failed_at
    assert not Event.objects.filter(type="message.sent").exists()
    assert counter_value(
        metrics.ai_messages_failed_total, agent_type="sales", channel="sms", reason="send_rejected"
    ) == before + 1


@pytest.mark.django_db
def test_a_permanent_failure_of_a_job_is_tried_again_on_replay(job, lead, scripted):
    scripted.script = [ChannelError("rejected", permanent=True), "SM2"]
    with pytest.raises(ChannelError):
        send(job, lead, channel="sms")

    message = send(job, lead, channel="sms")

    assert (message.status, message.provider_message_id) == ("sent", "SM2")
    assert Message.objects.count() == 1


@pytest.mark.django_db
def test_sends_without_a_job_are_not_deduplicated(lead):
    send(None, lead)
    send(None, lead)
    assert Message.objects.filter(direction="outbound").count() == 2


@pytest.fixture
def sent(job, lead, scripted):
    scripted.script = ["SM9"]
    return send(job, lead, channel="sms")


@pytest.mark.django_db
def test_status_moves_forward_and_records_timestamps_and_events(sent):
    from shokti import metrics

    before = counter_value(metrics.ai_messages_delivered_total, agent_type="sales", channel="sms")
    delivered_at = timezone.now()

    message = message_status_update(company_id=sent.company_id, channel="sms", provider_message_id="SM9", status="delivered", occurred_at=delivered_at)
    message = message_status_update(company_id=sent.company_id, channel="sms", provider_message_id="SM9", status="read")

    message.refresh_from_db()
    assert message.status == "read" and message.delivered_at == delivered_at and message.read_at is not None
    assert list(Event.objects.filter(type__startswith="message.").order_by("id").values_list("type", flat=True)) == [
        "message.sent", "message.delivered", "message.read"
    ]
    assert counter_value(metrics.ai_messages_delivered_total, agent_type="sales", channel="sms") == before + 1


@pytest.mark.django_db
def test_duplicate_and_out_of_order_statuses_change_nothing(sent):
    message_status_update(company_id=sent.company_id, channel="sms", provider_message_id="SM9", status="read")
    events_before = Event.objects.count()

    for status in ("read", "delivered", "sent", "failed"):
        message_status_update(company_id=sent.company_id, channel="sms", provider_message_id="SM9", status=status, error="late")

    sent.refresh_from_db()
    assert sent.status == "read" and sent.delivered_at is None and sent.error == ""
    assert Event.objects.count() == events_before


@pytest.mark.django_db
def test_failed_before_delivery_is_recorded(sent):
    message_status_update(company_id=sent.company_id, channel="sms", provider_message_id="SM9", status="failed", error="30003 unreachable")

    sent.refresh_from_db()
    assert (sent.status, sent.error) == ("failed", "30003 unreachable") and sent.failed_at is not None


@pytest.mark.django_db
def test_unknown_message_or_status_is_acknowledged(sent):
    assert message_status_update(company_id=sent.company_id, channel="sms", provider_message_id="SM-unknown", status="delivered") is None
    assert message_status_update(company_id=sent.company_id, channel="whatsapp_cloud", provider_message_id="SM9", status="delivered") is None
    assert message_status_update(company_id=sent.company_id, channel="sms", provider_message_id="SM9", status="exploded") is None
    sent.refresh_from_db()
    assert sent.status == "sent"


@pytest.mark.django_db
def test_another_company_cannot_move_a_message(sent, other_company):
    # A tenant signing a callback with its own secret but another tenant's provider id changes nothing.
    assert message_status_update(
        company_id=other_company.pk, channel="sms", provider_message_id="SM9", status="delivered"
    ) is None
    sent.refresh_from_db()
    assert sent.status == "sent" and sent.delivered_at is None


@pytest.mark.django_db
def test_delivery_status_signal_reaches_the_message(sent, company):
    delivery_status_changed.send(
        sender=None, company_id=company.pk, channel="sms", provider_message_id="SM9", status="delivered",
        error="", raw={"MessageStatus": "delivered"}, occurred_at=None,
    )

    sent.refresh_from_db()
    assert sent.status == "delivered"
    assert sent.provider_response["delivered"] == {"MessageStatus": "delivered"}


# --- message_send_queued: a job's queued message (campaign sends) -----------------------------------------


def queued_reminder(company, key):
    """A claimed smartengage_send job with its queued message and campaign recipient, as a campaign batch writes them."""
    from crm.tests.factories import CustomerFactory
    from engage.ledger.services import job_claim
    from engage.models import Campaign, CampaignRecipient, CampaignRun

    number = Job.objects.count()
    customer = CustomerFactory(
        company=company, contact__phone=f"+88017120001{number:02d}", contact__email=f"q{number}@example.test"
    )
    campaign = Campaign.objects.create(company=company, name=f"Queued {key}", channel="console")
    run = CampaignRun.objects.create(company=company, campaign=campaign, status=CampaignRun.Status.RUNNING)
    job = job_enqueue(company=company, task_name="smartengage_send", payload={"run_id": run.pk}, idempotency_key=key)
    message = Message.objects.create(
        company=company, contact=customer.contact, direction="outbound", channel="console", agent_type="smartengage",
        message_type="reminder", body="Time for your service", status="queued", job=job, correlation_id=uuid.uuid4(),
    )
    recipient = CampaignRecipient.objects.create(
        company=company, campaign=campaign, run=run, customer=customer, cycle_started_at=timezone.now(),
        status="pending", message=message, job=job, correlation_id=message.correlation_id,
    )
    return job_claim(job_id=job.pk, worker=f"w-{key}"), message, recipient


def written_rows(job, message, recipient):
    """What a send wrote, with its own ids replaced so two sends can be compared."""
    from django.forms.models import model_to_dict

    ids = {message.pk: "MESSAGE", job.pk: "JOB", str(message.pk): "MESSAGE"}
    message.refresh_from_db()
    job.refresh_from_db()
    recipient.refresh_from_db()
    (event,) = Event.objects.filter(target_id=str(message.pk), type="message.sent")
    event_row = model_to_dict(event, exclude=["id", "company", "contact", "correlation_id", "occurred_at"])
    event_row["payload"] = {key: ids.get(value, value) for key, value in event_row["payload"].items()}
    event_row["target_id"] = ids[event_row["target_id"]]
    return {
        "message": (message.status, message.error, message.provider_response, message.sent_at is not None,
                    message.provider_message_id.startswith("console-")),
        "event": (event_row, event.contact_id == message.contact_id, event.correlation_id == message.correlation_id,
                  event.occurred_at == message.sent_at),
        "job": (job.status, {k: ids.get(v, v) for k, v in job.result.items()}, job.locked_by, job.locked_at,
                job.finished_at == message.sent_at),
        "recipient": (recipient.status, recipient.error, recipient.updated_at == message.sent_at),
    }


@pytest.mark.django_db
def test_a_queued_send_writes_the_same_rows_in_one_statement_and_on_the_portable_path(
    company, monkeypatch, django_assert_num_queries
):
    from engage.campaigns.smartengage import sending as messages
    from engage.campaigns.smartengage.sending import message_queued_for_job, message_send_queued

    job, message, recipient = queued_reminder(company, "cte")
    queued = message_queued_for_job(job=job)
    assert (queued.id, queued.to_phone, queued.to_email, queued.status) == (
        message.pk, message.contact.phone, message.contact.email, "queued"
    )
    messages.channel_settings_for(company=company, channel="console")  # cached: the send reads no account
    with django_assert_num_queries(1):  # message, event, job completion and recipient: one statement
        sent = message_send_queued(job=job, queued=queued, agent_type="smartengage", message_type="reminder",
                                   recipient_run_id=recipient.run_id)
    assert (sent.message_id, sent.status, sent.run_statuses, job.status) == (message.pk, "sent", ("running",),
                                                                              "completed")
    one_statement = written_rows(job, message, recipient)

    monkeypatch.setattr(messages, "_sent_record_cte", messages._sent_record_portable)
    job, message, recipient = queued_reminder(company, "portable")
    message_send_queued(job=job, queued=message_queued_for_job(job=job), agent_type="smartengage",
                        message_type="reminder", recipient_run_id=recipient.run_id)
    assert job.status == "completed"
    portable = written_rows(job, message, recipient)

    assert one_statement == portable
    assert one_statement["message"] == ("sent", "", {}, True, True)
    assert one_statement["job"] == ("completed", {"message_id": "MESSAGE", "status": "sent"}, "", None, True)
    assert one_statement["recipient"] == ("sent", "", True)


@pytest.mark.django_db
def test_a_queued_send_whose_job_is_no_longer_ours_records_the_send_but_not_the_completion(company):
    from engage.campaigns.smartengage.sending import message_queued_for_job, message_send_queued

    job, message, recipient = queued_reminder(company, "stolen")
    Job.objects.filter(pk=job.pk).update(locked_by="someone-else")
    message_send_queued(job=job, queued=message_queued_for_job(job=job), agent_type="smartengage",
                        message_type="reminder", recipient_run_id=recipient.run_id)
    message.refresh_from_db()
    assert message.status == "sent" and job.status == "processing"
    assert Job.objects.get(pk=job.pk).status == "processing"


@pytest.mark.django_db
def test_a_queued_send_already_sent_is_not_sent_again(company):
    from engage.campaigns.smartengage.sending import message_queued_for_job, message_send_queued

    job, message, recipient = queued_reminder(company, "done")
    Message.objects.filter(pk=message.pk).update(status="delivered")
    sent_before = len(outbox)
    sent = message_send_queued(job=job, queued=message_queued_for_job(job=job), agent_type="smartengage",
                               message_type="reminder", recipient_run_id=recipient.run_id)
    assert (sent.status, len(outbox)) == ("delivered", sent_before)
    recipient.refresh_from_db()
    assert recipient.status == "sent"


@pytest.mark.django_db
def test_channel_settings_are_cached_per_process_and_cleared_when_an_account_is_saved(
    company, django_assert_num_queries
):
    from channels_app.models import ChannelAccount
    from engage.messaging.services import channel_settings_cache_clear, channel_settings_for

    channel_settings_cache_clear()
    assert channel_settings_for(company=company, channel="sms") == {}
    with django_assert_num_queries(0):
        assert channel_settings_for(company=company, channel="sms") == {}
    account = ChannelAccount.objects.create(company=company, channel="sms", name="SMS", settings={"from": "+1555"})
    assert channel_settings_for(company=company, channel="sms")["from"] == "+1555"
    account.is_active = False
    account.save()
    assert channel_settings_for(company=company, channel="sms") == {}
