"""message_send (at most once per job) and message_status_update (forward-only), and the signal receivers."""

import pytest
from django.utils import timezone

from channels_app import registry
from channels_app.adapters.console import outbox
from channels_app.base import ChannelAdapter, ChannelError, SendResult
from channels_app.signals import delivery_status_changed
from crm.models import Event
from crm.tests.factories import ContactFactory, LeadFactory
from engage.models import Message
from engage.services import job_enqueue, message_send, message_status_update


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
