"""WhatsApp Web outbox: a send is remembered in the caller's transaction, so a lost publish is relayed, never lost."""

import datetime as dt
import logging

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from kombu.exceptions import OperationalError

from channels_app import registry
from channels_app.adapters import whatsapp_web
from channels_app.base import ChannelError, OutboundMessage
from channels_app.models import ProviderCallback, WhatsAppWebDelivery
from channels_app.selectors import channel_settings_for
from channels_app.tasks import whatsapp_web_relay, whatsapp_web_send
from channels_app.tests.conftest import account_create
from channels_app.tests.test_whatsapp_web import in_own_thread
from crm.models import Channel
from shokti.schedules import DEFAULT_SCHEDULES

PHONE = "+8801711000001"


@pytest.fixture
def web_account(company):
    return account_create(company=company, channel=Channel.WHATSAPP_WEB, name="Alpha phone")


@pytest.fixture
def published(monkeypatch):
    """What reaches the broker: the kwargs of every published whatsapp_web_send."""
    messages = []
    monkeypatch.setattr(whatsapp_web_send, "apply_async", lambda **options: messages.append(options["kwargs"]))
    return messages


@pytest.fixture
def broker_down(monkeypatch):
    attempts = []

    def refuse(**options):
        attempts.append(options["kwargs"])
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(whatsapp_web_send, "apply_async", refuse)
    return attempts


@pytest.fixture
def typed(monkeypatch):
    """Stands in for the browser where the test is about the outbox, not about typing (that has its own tests)."""
    calls = []
    monkeypatch.setattr(whatsapp_web, "deliver", lambda **kwargs: calls.append(kwargs))
    return calls


def send(company, body="Apnar booking kal 10 ta-y"):
    message = OutboundMessage(company_id=company.pk, channel=Channel.WHATSAPP_WEB, body=body, to_phone=PHONE)
    return registry.send(message, settings=channel_settings_for(company_id=company.pk, channel=Channel.WHATSAPP_WEB))


def make_old(delivery, *, seconds, dispatched=True):
    then = timezone.now() - dt.timedelta(seconds=seconds)
    WhatsAppWebDelivery.objects.filter(pk=delivery.pk).update(created_at=then, dispatched_at=then if dispatched else None)


# --- send(): the row is part of the caller's transaction ----------------------------------


@pytest.mark.django_db
def test_send_writes_the_outbox_row_in_the_callers_transaction_and_publishes_after_commit(
    company, web_account, published, django_capture_on_commit_callbacks
):
    # when
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        result = send(company)
        assert published == []  # not before commit

    # then
    delivery = WhatsAppWebDelivery.objects.get()
    assert (delivery.company, delivery.account, delivery.provider_message_id) == (company, web_account, result.provider_message_id)
    assert (delivery.to_phone, delivery.body, delivery.status, delivery.attempts) == (PHONE, "Apnar booking kal 10 ta-y", "pending", 0)
    assert delivery.dispatched_at is not None
    assert published == [{"account_id": web_account.pk, "provider_message_id": result.provider_message_id,
                          "to_phone": PHONE, "body": "Apnar booking kal 10 ta-y"}]


@pytest.mark.django_db
def test_a_rolled_back_send_leaves_no_row_and_no_task(company, web_account, published, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(RuntimeError), transaction.atomic():
        send(company)
        raise RuntimeError("the caller failed after sending")

    assert WhatsAppWebDelivery.objects.count() == 0
    assert callbacks == []
    assert published == []


@pytest.mark.django_db
def test_broker_down_the_send_still_succeeds_and_the_row_stays_pending_for_the_relay(
    company, web_account, broker_down, django_capture_on_commit_callbacks, caplog
):
    # when: Redis refuses the publish after commit
    with (
        caplog.at_level(logging.WARNING, logger="channels_app.adapters.whatsapp_web"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        result = send(company)

    # then: the caller saw a normal queued send; the row waits for the relay's next run
    assert result.status == "queued"
    assert len(broker_down) == 1
    delivery = WhatsAppWebDelivery.objects.get(provider_message_id=result.provider_message_id)
    assert (delivery.status, delivery.attempts, delivery.dispatched_at) == ("pending", 0, None)
    assert f"whatsapp web message {result.provider_message_id} not published" in caplog.text


@pytest.mark.django_db
def test_the_relay_publishes_only_rows_whose_task_was_lost(
    company, web_account, published, settings, django_capture_on_commit_callbacks
):
    settings.WHATSAPP_WEB_RELAY_AFTER_SECONDS = 300
    with django_capture_on_commit_callbacks(execute=True):
        fresh = WhatsAppWebDelivery.objects.get(provider_message_id=send(company, body="fresh").provider_message_id)
        stale = WhatsAppWebDelivery.objects.get(provider_message_id=send(company, body="stale").provider_message_id)
        never = WhatsAppWebDelivery.objects.get(provider_message_id=send(company, body="never").provider_message_id)
        done = WhatsAppWebDelivery.objects.get(provider_message_id=send(company, body="done").provider_message_id)
    make_old(stale, seconds=301)
    make_old(never, seconds=5, dispatched=False)
    make_old(done, seconds=3600)
    WhatsAppWebDelivery.objects.filter(pk=done.pk).update(status="sent")
    published.clear()

    with django_capture_on_commit_callbacks(execute=True):
        counts = whatsapp_web_relay()

    assert counts == {"redispatched": 2, "given_up": 0}
    assert sorted(item["body"] for item in published) == ["never", "stale"]
    stale.refresh_from_db()
    assert stale.dispatched_at > timezone.now() - dt.timedelta(seconds=5)
    fresh_before = fresh.dispatched_at
    fresh.refresh_from_db()
    assert fresh.dispatched_at == fresh_before
    # the next run finds nothing to do
    published.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert whatsapp_web_relay() == {"redispatched": 0, "given_up": 0}
    assert published == []


@pytest.mark.django_db
def test_a_relay_publish_that_fails_again_is_logged_and_kept(company, web_account, broker_down, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        result = send(company)

    with django_capture_on_commit_callbacks(execute=True):
        counts = whatsapp_web_relay()

    assert counts == {"redispatched": 1, "given_up": 0}
    assert len(broker_down) == 2
    assert WhatsAppWebDelivery.objects.get(provider_message_id=result.provider_message_id).status == "pending"


# --- the whole way, in real Chromium: broker down, relay, typed once ------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_lost_publish_is_relayed_typed_once_and_reported_sent_once(
    company, web_account, fake_whatsapp_web, signal_log, monkeypatch
):
    # given: the broker is down while the caller sends
    def refuse(**options):
        raise OperationalError("Connection refused.")

    monkeypatch.setattr(whatsapp_web_send, "apply_async", refuse)
    with transaction.atomic():
        result = send(company, body="Salam! Kal 10 ta-y ashben?")
    assert result.status == "queued"
    assert fake_whatsapp_web.sent == []

    # when: the broker is back, the relay publishes it and the worker runs the task
    published = []
    monkeypatch.setattr(whatsapp_web_send, "apply_async", lambda **options: published.append(options["kwargs"]))
    assert whatsapp_web_relay() == {"redispatched": 1, "given_up": 0}
    assert len(published) == 1
    outcome = in_own_thread(lambda: whatsapp_web_send.apply(kwargs=published[0]).get())

    # then: typed once, reported sent once, the row is done
    assert outcome == "sent"
    assert fake_whatsapp_web.sent == [{"phone": "8801711000001", "text": "Salam! Kal 10 ta-y ashben?"}]
    assert [(item["provider_message_id"], item["status"]) for item in signal_log.statuses] == [
        (result.provider_message_id, "sent")
    ]
    delivery = WhatsAppWebDelivery.objects.get(provider_message_id=result.provider_message_id)
    assert (delivery.status, delivery.attempts, delivery.claimed_at, delivery.last_error) == ("sent", 1, None, "")

    # when: the relay runs again and the broker redelivers the same task
    assert whatsapp_web_relay() == {"redispatched": 0, "given_up": 0}
    again = in_own_thread(lambda: whatsapp_web_send.apply(kwargs=published[0]).get())

    # then: nothing more is typed or reported
    assert again == "done-before"
    assert len(published) == 1
    assert len(fake_whatsapp_web.sent) == 1
    assert len(signal_log.statuses) == 1
    assert ProviderCallback.objects.filter(provider_message_id=result.provider_message_id).count() == 1


# --- the task's claim ---------------------------------------------------------------------


@pytest.mark.django_db
def test_a_duplicate_task_while_another_run_types_does_nothing(company, web_account, published, typed, signal_log):
    result = send(company)
    kwargs = whatsapp_web.task_kwargs(
        account_id=web_account.pk, provider_message_id=result.provider_message_id, to_phone=PHONE, body="Apnar booking kal 10 ta-y"
    )
    # given: a run holds the row (typing right now)
    WhatsAppWebDelivery.objects.filter(provider_message_id=result.provider_message_id).update(claimed_at=timezone.now(), attempts=1)

    # when: the relay's duplicate arrives
    outcome = whatsapp_web_send.apply(kwargs=kwargs).get()

    # then
    assert outcome == "done-before"
    assert typed == []
    assert signal_log.statuses == []
    assert WhatsAppWebDelivery.objects.get(provider_message_id=result.provider_message_id).attempts == 1


@pytest.mark.django_db
def test_a_claim_of_a_dead_worker_is_taken_over(company, web_account, published, typed, signal_log, settings):
    result = send(company)
    stale = timezone.now() - dt.timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 61)
    WhatsAppWebDelivery.objects.filter(provider_message_id=result.provider_message_id).update(claimed_at=stale, attempts=1)
    kwargs = whatsapp_web.task_kwargs(
        account_id=web_account.pk, provider_message_id=result.provider_message_id, to_phone=PHONE, body="Apnar booking kal 10 ta-y"
    )

    outcome = whatsapp_web_send.apply(kwargs=kwargs).get()

    assert outcome == "sent"
    assert typed == [{"account_id": web_account.pk, "to_phone": PHONE, "body": "Apnar booking kal 10 ta-y"}]
    delivery = WhatsAppWebDelivery.objects.get(provider_message_id=result.provider_message_id)
    assert (delivery.status, delivery.attempts) == ("sent", 2)


@pytest.mark.django_db
def test_transient_failures_count_on_the_row_and_end_failed_once(company, web_account, published, signal_log, settings, monkeypatch):
    settings.WHATSAPP_WEB_MAX_RETRIES = 1
    calls = []

    def login_required(**kwargs):
        calls.append(kwargs)
        raise ChannelError("login required", permanent=False)

    monkeypatch.setattr(whatsapp_web, "deliver", login_required)
    result = send(company)
    kwargs = whatsapp_web.task_kwargs(
        account_id=web_account.pk, provider_message_id=result.provider_message_id, to_phone=PHONE, body="Apnar booking kal 10 ta-y"
    )

    # when: run eagerly, Celery's retry runs again at once
    whatsapp_web_send.apply(kwargs=kwargs)

    # then: one retry, then failed; reported once
    assert len(calls) == 2
    delivery = WhatsAppWebDelivery.objects.get(provider_message_id=result.provider_message_id)
    assert (delivery.status, delivery.attempts, delivery.last_error, delivery.claimed_at) == ("failed", 2, "login required", None)
    assert [(item["status"], item["error"]) for item in signal_log.statuses] == [("failed", "login required")]


@pytest.mark.django_db
def test_a_task_published_before_the_outbox_existed_gets_its_row(company, web_account, typed, signal_log):
    kwargs = whatsapp_web.task_kwargs(account_id=web_account.pk, provider_message_id="waweb-legacy", to_phone=PHONE, body="Hi")

    assert whatsapp_web_send.apply(kwargs=kwargs).get() == "sent"

    delivery = WhatsAppWebDelivery.objects.get(provider_message_id="waweb-legacy")
    assert (delivery.company, delivery.account, delivery.status, delivery.attempts) == (company, web_account, "sent", 1)
    assert [item["status"] for item in signal_log.statuses] == ["sent"]


# --- giving up -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_rows_past_the_maximum_age_are_reported_failed_once(
    company, web_account, published, typed, signal_log, settings, django_capture_on_commit_callbacks
):
    settings.WHATSAPP_WEB_RELAY_GIVE_UP_AFTER_SECONDS = 86400
    old = WhatsAppWebDelivery.objects.get(provider_message_id=send(company, body="old").provider_message_id)
    young = WhatsAppWebDelivery.objects.get(provider_message_id=send(company, body="young").provider_message_id)
    make_old(old, seconds=86401)
    make_old(young, seconds=86000)
    WhatsAppWebDelivery.objects.filter(pk=old.pk).update(last_error="login required", attempts=3)
    published.clear()

    with django_capture_on_commit_callbacks(execute=True):
        counts = whatsapp_web_relay()

    # then: the old one failed and reported, the young one published again
    assert counts == {"redispatched": 1, "given_up": 1}
    old.refresh_from_db()
    assert old.status == "failed"
    assert old.last_error == "not delivered within 86400 s; given up (last error: login required)"
    assert [(item["provider_message_id"], item["status"]) for item in signal_log.statuses] == [(old.provider_message_id, "failed")]
    assert [item["body"] for item in published] == ["young"]

    # when: a late task for it still arrives, and the relay runs again
    late = whatsapp_web_send.apply(kwargs=whatsapp_web.task_kwargs(
        account_id=web_account.pk, provider_message_id=old.provider_message_id, to_phone=PHONE, body="old"
    )).get()
    with django_capture_on_commit_callbacks(execute=True):
        again = whatsapp_web_relay()

    # then: nothing typed, nothing reported twice
    assert late == "done-before"
    assert typed == []
    assert again == {"redispatched": 0, "given_up": 0}
    assert len(signal_log.statuses) == 1


# --- schedule and admin ------------------------------------------------------------------------


def test_the_relay_is_a_default_beat_schedule_on_the_default_queue():
    from shokti.celery import app

    (entry,) = [item for item in DEFAULT_SCHEDULES if item["task"] == "channels_app.whatsapp_web_relay"]
    assert entry["interval"] == {"every": 60, "period": "seconds"}
    assert "channels_app.whatsapp_web_relay" in app.tasks  # registered, so beat can find it
    # not the browser's queue: relaying must not wait behind typing
    assert app.amqp.router.route({}, whatsapp_web_relay.name)["queue"].name == "default"


@pytest.mark.django_db
def test_ops_see_only_their_companys_deliveries_read_only(client, company, other_company, staff_user, other_staff_user, web_account):
    other_account = account_create(company=other_company, channel=Channel.WHATSAPP_WEB, name="Beta phone")
    mine = WhatsAppWebDelivery.objects.create(
        company=company, account=web_account, provider_message_id="waweb-a", to_phone=PHONE, body="for alpha"
    )
    theirs = WhatsAppWebDelivery.objects.create(
        company=other_company, account=other_account, provider_message_id="waweb-b", to_phone=PHONE, body="for beta",
        status="failed",
    )
    changelist = reverse("admin:channels_app_whatsappwebdelivery_changelist")

    # alice (Operations of alpha)
    client.force_login(staff_user)
    alice_page = client.get(changelist)
    alice_pending = client.get(changelist, {"status__exact": "pending"})
    alice_failed = client.get(changelist, {"status__exact": "failed"})
    alice_row = client.get(reverse("admin:channels_app_whatsappwebdelivery_change", args=[mine.pk]))
    alice_foreign = client.get(reverse("admin:channels_app_whatsappwebdelivery_change", args=[theirs.pk]))
    alice_post = client.post(reverse("admin:channels_app_whatsappwebdelivery_change", args=[mine.pk]), {"status": "sent"})
    alice_add = client.get(reverse("admin:channels_app_whatsappwebdelivery_add"))
    # bob (Operations of beta)
    client.force_login(other_staff_user)
    bob_page = client.get(changelist)
    # charlie (anonymous)
    client.logout()
    anonymous = client.get(changelist)

    assert alice_page.status_code == 200
    assert list(alice_page.context["cl"].result_list) == [mine]
    assert list(alice_pending.context["cl"].result_list) == [mine]
    assert list(alice_failed.context["cl"].result_list) == []
    assert alice_row.status_code == 200
    assert "for alpha" in alice_row.content.decode()
    assert alice_foreign.status_code in (302, 404)
    assert alice_post.status_code == 403
    assert alice_add.status_code == 403
    assert list(bob_page.context["cl"].result_list) == [theirs]
    assert anonymous.status_code == 302
    assert "/admin/login/" in anonymous["Location"]
    mine.refresh_from_db()
    assert mine.status == "pending"
