"""WhatsApp Web through Playwright and Chromium, with a persistent session and human-like typing.

`send()` only queues: the browser runs in the `whatsapp_web` Celery queue (one worker, concurrency
1, so one browser types at a time) and reports "sent"/"failed" through delivery_status_changed.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from channels_app.base import ChannelAdapter, ChannelError, OutboundMessage, SendResult
from channels_app.registry import register

logger = logging.getLogger(__name__)


@register
class WhatsAppWebAdapter(ChannelAdapter):
    name = "whatsapp_web"

    def send(self, message: OutboundMessage) -> SendResult:
        from channels_app.tasks import whatsapp_web_send

        if not message.to_phone:
            raise ChannelError("The contact has no phone number.", permanent=True)
        account_id = self.settings.get("account_id")
        if not account_id:
            raise ChannelError("No active WhatsApp Web account for this company.", permanent=True)
        provider_message_id = f"waweb-{uuid.uuid4().hex}"
        kwargs = {
            "account_id": account_id,
            "provider_message_id": provider_message_id,
            "to_phone": message.to_phone,
            "body": message.body,
        }
        transaction.on_commit(lambda: whatsapp_web_send.apply_async(kwargs=kwargs))
        return SendResult(provider_message_id=provider_message_id, status="queued", raw={"queue": "whatsapp_web"})


def _pause(milliseconds: tuple[int, int] | list[int]) -> None:
    low, high = milliseconds
    if high > 0:
        time.sleep(random.uniform(low, high) / 1000)


def chat_url(phone: str) -> str:
    return f"{settings.WHATSAPP_WEB_BASE_URL.rstrip('/')}/send?{urlencode({'phone': phone.lstrip('+')})}"


def session_dir(account_id: int) -> Path:
    path = Path(settings.WHATSAPP_SESSION_DIR) / f"account-{account_id}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def wait_for_message_gap(last_sent_at) -> None:
    """Keep 60 s ± 15 s (configurable) between two messages of one account."""
    gap = settings.WHATSAPP_WEB_MESSAGE_GAP_SECONDS
    if last_sent_at is None or gap <= 0:
        return
    jitter = settings.WHATSAPP_WEB_MESSAGE_GAP_JITTER_SECONDS
    wanted = random.uniform(max(gap - jitter, 0), gap + jitter)
    remaining = wanted - (timezone.now() - last_sent_at).total_seconds()
    if remaining > 0:
        time.sleep(remaining)


def type_like_a_person(page, text: str) -> None:
    """Type with the seed's delays; a newline is Shift+Enter, since Enter sends."""
    for index, character in enumerate(text):
        if character == "\n":
            page.keyboard.press("Shift+Enter")
        else:
            page.keyboard.type(character)
        _pause(settings.WHATSAPP_WEB_CHAR_DELAY_MS)
        if character == " " and index + 1 < len(text):
            _pause(settings.WHATSAPP_WEB_WORD_DELAY_MS)


def deliver(*, account_id: int, to_phone: str, body: str) -> None:
    """Open the chat in the account's browser session, type, send and see it in the chat.

    Raises ChannelError: transient for "login required" (the QR screenshot is saved for ops) and
    timeouts, so the task retries; nothing is reported sent unless it appeared in the chat.
    """
    from channels_app.models import WhatsAppWebSession
    from channels_app.services import (
        whatsapp_web_sent_mark,
        whatsapp_web_session_update,
    )

    session = WhatsAppWebSession.objects.filter(account_id=account_id).first()
    wait_for_message_gap(session.last_sent_at if session else None)
    # The database is only touched out here: Playwright's sync API runs our code in a greenlet
    # with its own context, where Django would open (and leak) a second connection.
    try:
        _drive_browser(account_id=account_id, to_phone=to_phone, body=body)
    except LoginRequired as login:
        whatsapp_web_session_update(
            account_id=account_id,
            state=WhatsAppWebSession.State.LOGIN_REQUIRED,
            error="WhatsApp Web shows a QR code: scan it in the admin.",
            qr_png=login.screenshot,
        )
        raise ChannelError("login required", permanent=False) from None
    except ChannelError as error:
        whatsapp_web_session_update(account_id=account_id, state=WhatsAppWebSession.State.ERROR, error=str(error))
        raise
    whatsapp_web_sent_mark(account_id=account_id)
    logger.info("whatsapp web account %s: message delivered to the chat", account_id)


class LoginRequired(Exception):
    def __init__(self, screenshot: bytes):
        super().__init__("login required")
        self.screenshot = screenshot


def _drive_browser(*, account_id: int, to_phone: str, body: str) -> None:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
    from playwright.sync_api import sync_playwright

    user_data_dir = str(session_dir(account_id))
    timeout_ms = settings.WHATSAPP_WEB_LOAD_TIMEOUT_SECONDS * 1000
    with sync_playwright() as playwright:
        try:
            context = playwright.chromium.launch_persistent_context(
                user_data_dir,
                executable_path=settings.CHROMIUM_EXECUTABLE_PATH,
                args=list(settings.CHROMIUM_LAUNCH_ARGS),
                headless=settings.WHATSAPP_WEB_HEADLESS,
            )
        except PlaywrightError as error:
            raise ChannelError(f"Chromium did not start: {str(error)[:200]}", permanent=False) from None
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(timeout_ms)
            page.goto(chat_url(to_phone), wait_until="domcontentloaded")
            compose = page.locator(settings.WHATSAPP_WEB_COMPOSE_SELECTOR).first
            qr_code = page.locator(settings.WHATSAPP_WEB_QR_SELECTOR).first
            compose.or_(qr_code).first.wait_for(state="visible")
            if not compose.is_visible():
                raise LoginRequired(page.screenshot(full_page=True))
            compose.click()
            type_like_a_person(page, body)
            _pause(settings.WHATSAPP_WEB_SEND_DELAY_MS)
            send_button = page.locator(settings.WHATSAPP_WEB_SEND_SELECTOR).first
            if send_button.is_visible():
                send_button.click()
            else:
                page.keyboard.press("Enter")
            first_line = next((line.strip() for line in body.splitlines() if line.strip()), body)
            page.locator(settings.WHATSAPP_WEB_SENT_SELECTOR).filter(has_text=first_line[:60]).last.wait_for(
                state="visible", timeout=settings.WHATSAPP_WEB_CONFIRM_TIMEOUT_SECONDS * 1000
            )
        except PlaywrightTimeoutError:
            raise ChannelError("WhatsApp Web did not answer in time.", permanent=False) from None
        except PlaywrightError as error:
            raise ChannelError(f"WhatsApp Web browser error: {str(error)[:200]}", permanent=False) from None
        finally:
            context.close()
