"""WhatsApp Web: real Chromium against a local page that imitates the chat and the QR login."""

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections
from django.utils import timezone

from channels_app import registry
from channels_app.adapters import whatsapp_web
from channels_app.base import ChannelError, OutboundMessage
from channels_app.models import ProviderCallback, WhatsAppWebSession
from channels_app.selectors import channel_settings_for
from channels_app.tasks import whatsapp_web_send
from channels_app.tests.conftest import account_create
from crm.models import Channel


def in_own_thread(function, **kwargs):
    """Run Playwright's sync API the way a worker does: in a thread with no asyncio loop of its own
    (pytest-playwright's session-wide Playwright may be running in the main thread)."""
    def run():
        try:
            return function(**kwargs)
        finally:
            connections.close_all()  # this thread's database connection

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result(timeout=120)


@pytest.fixture
def web_account(company):
    return account_create(company=company, channel=Channel.WHATSAPP_WEB, name="Alpha phone")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_message_is_typed_and_sent_in_chromium(web_account, fake_whatsapp_web):
    # when
    in_own_thread(whatsapp_web.deliver, account_id=web_account.pk, to_phone="+8801711000001", body="Salam Rahim!\nKal 10 ta-y ashben?")

    # then: the page saw the message sent to that chat, with its line break
    assert fake_whatsapp_web.sent == [{"phone": "8801711000001", "text": "Salam Rahim!\nKal 10 ta-y ashben?"}]
    session = WhatsAppWebSession.objects.get(account=web_account)
    assert session.state == WhatsAppWebSession.State.LOGGED_IN
    assert session.last_sent_at is not None
    # the persistent session folder is the account's own
    assert (whatsapp_web.session_dir(web_account.pk) / "Default").is_dir()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_qr_code_saves_a_screenshot_for_ops_and_is_a_transient_error(web_account, fake_whatsapp_web):
    fake_whatsapp_web.show_qr = True

    with pytest.raises(ChannelError) as raised:
        in_own_thread(whatsapp_web.deliver, account_id=web_account.pk, to_phone="+8801711000001", body="hello")

    assert str(raised.value) == "login required"
    assert raised.value.permanent is False
    assert fake_whatsapp_web.sent == []
    session = WhatsAppWebSession.objects.get(account=web_account)
    assert session.state == WhatsAppWebSession.State.LOGIN_REQUIRED
    assert bytes(session.qr_screenshot_png).startswith(b"\x89PNG")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_task_reports_sent_once_and_a_redelivered_task_does_not_type_again(web_account, fake_whatsapp_web, signal_log):
    kwargs = {"account_id": web_account.pk, "provider_message_id": "waweb-1", "to_phone": "+8801711000001", "body": "Hi"}

    first = in_own_thread(lambda: whatsapp_web_send.apply(kwargs=kwargs).get())
    again = in_own_thread(lambda: whatsapp_web_send.apply(kwargs=kwargs).get())

    assert (first, again) == ("sent", "done-before")
    assert len(fake_whatsapp_web.sent) == 1
    assert [(item["provider_message_id"], item["status"]) for item in signal_log.statuses] == [("waweb-1", "sent")]
    assert signal_log.statuses[0]["channel"] == "whatsapp_web"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_task_reports_failed_when_login_stays_required_after_its_retries(web_account, fake_whatsapp_web, signal_log, settings):
    fake_whatsapp_web.show_qr = True
    settings.WHATSAPP_WEB_MAX_RETRIES = 0
    kwargs = {"account_id": web_account.pk, "provider_message_id": "waweb-2", "to_phone": "+8801711000001", "body": "Hi"}

    outcome = in_own_thread(lambda: whatsapp_web_send.apply(kwargs=kwargs).get())

    assert outcome == "failed"
    assert [(item["status"], item["error"]) for item in signal_log.statuses] == [("failed", "login required")]


@pytest.mark.django_db
def test_adapter_send_queues_the_browser_work_on_the_whatsapp_web_queue(company, web_account, django_capture_on_commit_callbacks, monkeypatch):
    queued = []
    monkeypatch.setattr(whatsapp_web_send, "apply_async", lambda **options: queued.append(options))
    message = OutboundMessage(company_id=company.pk, channel=Channel.WHATSAPP_WEB, body="Hi", to_phone="+8801711000001")

    with django_capture_on_commit_callbacks(execute=True):
        result = registry.send(message, settings=channel_settings_for(company_id=company.pk, channel=Channel.WHATSAPP_WEB))

    assert result.status == "queued"
    assert result.provider_message_id.startswith("waweb-")
    assert queued == [{"kwargs": {"account_id": web_account.pk, "provider_message_id": result.provider_message_id,
                                  "to_phone": "+8801711000001", "body": "Hi"}}]
    from shokti.celery import app

    assert app.amqp.router.route({}, whatsapp_web_send.name)["queue"].name == "whatsapp_web"


@pytest.mark.django_db
def test_adapter_without_an_account_is_a_permanent_error(company):
    message = OutboundMessage(company_id=company.pk, channel=Channel.WHATSAPP_WEB, body="Hi", to_phone="+8801711000001")

    with pytest.raises(ChannelError) as raised:
        registry.send(message, settings={})

    assert raised.value.permanent is True


# --- pacing (no browser: the clock is what is checked) ------------------------------------


class RecordingKeyboard:
    def __init__(self):
        self.keys = []

    def type(self, text):
        self.keys.append(text)

    def press(self, key):
        self.keys.append(key)


class RecordingPage:
    def __init__(self):
        self.keyboard = RecordingKeyboard()


def test_typing_pauses_like_a_person(monkeypatch, settings):
    settings.WHATSAPP_WEB_CHAR_DELAY_MS = [50, 150]
    settings.WHATSAPP_WEB_WORD_DELAY_MS = [100, 300]
    sleeps = []
    monkeypatch.setattr(whatsapp_web.time, "sleep", sleeps.append)
    page = RecordingPage()

    whatsapp_web.type_like_a_person(page, "ab cd\ne")

    assert page.keyboard.keys == ["a", "b", " ", "c", "d", "Shift+Enter", "e"]
    # one pause per character, one more after the word break
    assert len(sleeps) == 8
    word_pause = sleeps[3]
    character_pauses = sleeps[:3] + sleeps[4:]
    assert all(0.05 <= pause <= 0.15 for pause in character_pauses)
    assert 0.1 <= word_pause <= 0.3


def test_messages_are_spaced_sixty_seconds_give_or_take_fifteen(monkeypatch, settings):
    settings.WHATSAPP_WEB_MESSAGE_GAP_SECONDS = 60
    settings.WHATSAPP_WEB_MESSAGE_GAP_JITTER_SECONDS = 15
    sleeps = []
    monkeypatch.setattr(whatsapp_web.time, "sleep", sleeps.append)

    for _ in range(50):
        whatsapp_web.wait_for_message_gap(timezone.now())
    whatsapp_web.wait_for_message_gap(timezone.now() - dt.timedelta(minutes=5))
    whatsapp_web.wait_for_message_gap(None)

    assert len(sleeps) == 50
    assert all(44.9 <= pause <= 75 for pause in sleeps)
    assert max(sleeps) - min(sleeps) > 5  # jittered, not a fixed beat


def test_zero_delays_never_sleep(monkeypatch, settings):
    settings.WHATSAPP_WEB_CHAR_DELAY_MS = [0, 0]
    settings.WHATSAPP_WEB_WORD_DELAY_MS = [0, 0]
    settings.WHATSAPP_WEB_MESSAGE_GAP_SECONDS = 0
    sleeps = []
    monkeypatch.setattr(whatsapp_web.time, "sleep", sleeps.append)

    whatsapp_web.type_like_a_person(RecordingPage(), "hello world")
    whatsapp_web.wait_for_message_gap(timezone.now())

    assert sleeps == []


# --- the dedicated queue, with a real worker ---------------------------------------------


@pytest.fixture
def whatsapp_web_worker(django_db_blocker, fake_whatsapp_web, tmp_path, settings):
    """`celery -A shokti worker -Q whatsapp_web --concurrency 1`, as docs/channels.md says to run it."""
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    from shokti.celery import app
    from shokti.testing.celery_worker import WorkerProcess, test_database_url

    with django_db_blocker.unblock():
        database_url = test_database_url()
    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge("whatsapp_web")
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": settings.CELERY_BROKER_URL,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "WHATSAPP_WEB_BASE_URL": fake_whatsapp_web.url,
        "WHATSAPP_SESSION_DIR": settings.WHATSAPP_SESSION_DIR,
        "WHATSAPP_WEB_CHAR_DELAY_MS": "0,0",
        "WHATSAPP_WEB_WORD_DELAY_MS": "0,0",
        "WHATSAPP_WEB_SEND_DELAY_MS": "0,0",
        "WHATSAPP_WEB_MESSAGE_GAP_SECONDS": "0",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log_path = tmp_path / "whatsapp-web-worker.log"
    command = [
        str(Path(sys.executable).parent / "celery"), "-A", "shokti", "worker", "-Q", "whatsapp_web", "--concurrency", "1",
        "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"whatsapp_web-{os.getpid()}@%h",
        "--loglevel", "INFO",
    ]
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            command, stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            cwd=Path(__file__).resolve().parents[2],
        )
    worker = WorkerProcess(process, log_path)
    try:
        deadline = time.monotonic() + 30
        while " ready." not in worker.log():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"whatsapp_web worker did not start:\n{worker.log()}")
            time.sleep(0.1)
        yield worker
    finally:
        worker.stop()


@pytest.mark.browser
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_send_is_typed_by_the_whatsapp_web_worker(company, web_account, fake_whatsapp_web, whatsapp_web_worker):
    from shokti.testing.celery_worker import wait_for

    message = OutboundMessage(company_id=company.pk, channel=Channel.WHATSAPP_WEB, body="Apnar booking confirm", to_phone="+8801711000001")

    result = registry.send(message, settings=channel_settings_for(company_id=company.pk, channel=Channel.WHATSAPP_WEB))

    wait_for(
        lambda: ProviderCallback.objects.filter(provider_message_id=result.provider_message_id, status="sent").exists(),
        timeout=60, message=f"the worker to report sent; log:\n{whatsapp_web_worker.log()}",
    )
    assert fake_whatsapp_web.sent == [{"phone": "8801711000001", "text": "Apnar booking confirm"}]
    assert "channels_app.tasks.whatsapp_web_send" in whatsapp_web_worker.log()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_ops_see_the_qr_screenshot_in_the_admin(page, live_server, staff_user, web_account, fake_whatsapp_web):
    # given: alice may view accounts (granted directly: a transactional test's flush drops the
    # groups that data migrations created), and what the worker saw, a real screenshot of the QR page
    from django.contrib.auth.models import Permission

    staff_user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="channels_app", codename__startswith="view_")
    )
    fake_whatsapp_web.show_qr = True
    page.goto(f"{fake_whatsapp_web.url}/send?phone=8801711000001")
    WhatsAppWebSession.objects.create(
        account=web_account, state=WhatsAppWebSession.State.LOGIN_REQUIRED, qr_screenshot_png=page.screenshot()
    )

    # when: alice opens the account in the admin
    page.goto(f"{live_server.url}/admin/login/?next=/admin/channels_app/channelaccount/{web_account.pk}/change/")
    page.fill("input[name=username]", staff_user.email)
    page.fill("input[name=password]", "pass-word-123")
    page.click("#login-form [type=submit]")

    # then: the QR code is there, as an image the browser could decode
    image = page.locator('img[alt="WhatsApp Web QR code"]')
    image.wait_for(state="visible")
    assert page.evaluate("(image) => image.naturalWidth", image.element_handle()) > 100
    assert "QR login required" in page.content()
