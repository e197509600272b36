"""WhatsApp Web through Playwright and Chromium, with a persistent session and human-like typing.

`send()` only queues: the browser runs in the `whatsapp_web` Celery queue (one worker, concurrency
1, so one browser types at a time) and reports "sent"/"failed" through delivery_status_changed.

Nothing is lost on the way (transactional outbox): `send()` writes a `WhatsAppWebDelivery` row in
the caller's transaction and publishes the task after commit; a failed publish is only logged.
The task claims the row before typing and marks it sent/failed when it reports; the beat task
`channels_app.whatsapp_web_relay` publishes pending rows again and gives up on very old ones.

Why a second outbox beside engage's job ledger: channels_app may not import engage, and this
transport is one browser session typing on its own concurrency-1 queue. The ledger job that sent
the message completes at the hand-over (status queued); this outbox keeps the typing promise and
reports back through delivery_status_changed, like a mail relay's queue (docs/jobs.md, "Two outboxes").
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from channels_app.base import ChannelAdapter, ChannelError, OutboundMessage, SendResult
from channels_app.models import ChannelAccount, WhatsAppWebDelivery, WhatsAppWebSession
from channels_app.registry import register
from channels_app.services import delivery_status_report, whatsapp_web_sent_mark, whatsapp_web_session_update

logger = logging.getLogger(__name__)

# The typing task (channels_app.tasks), published by name: that module imports this one.
SEND_TASK = "channels_app.tasks.whatsapp_web_send"


@register
class WhatsAppWebAdapter(ChannelAdapter):
    name = "whatsapp_web"

    def send(self, message: OutboundMessage) -> SendResult:
        if not message.to_phone:
            raise ChannelError("The contact has no phone number.", permanent=True)
        account_id = self.settings.get("account_id")
        if not account_id:
            raise ChannelError("No active WhatsApp Web account for this company.", permanent=True)
        provider_message_id = f"waweb-{uuid.uuid4().hex}"
        # The outbox row shares the caller's transaction: rolled back, there is no row and no task.
        WhatsAppWebDelivery.objects.create(
            company_id=message.company_id,
            account_id=account_id,
            provider_message_id=provider_message_id,
            to_phone=message.to_phone,
            body=message.body,
            dispatched_at=timezone.now(),
        )
        kwargs = task_kwargs(
            account_id=account_id, provider_message_id=provider_message_id, to_phone=message.to_phone, body=message.body
        )
        transaction.on_commit(lambda: whatsapp_web_delivery_dispatch(kwargs=kwargs, is_first=True))
        return SendResult(provider_message_id=provider_message_id, status="queued", raw={"queue": "whatsapp_web"})


def task_kwargs(*, account_id: int, provider_message_id: str, to_phone: str, body: str) -> dict[str, Any]:
    return {"account_id": account_id, "provider_message_id": provider_message_id, "to_phone": to_phone, "body": body}


# --- the outbox: publish, claim, finish, relay ----------------------------------------------


def whatsapp_web_delivery_dispatch(*, kwargs: dict[str, Any], is_first: bool = False) -> bool:
    """Publish the typing task; False (logged, never raised) when the broker is unreachable: the relay retries."""

    try:
        current_app.tasks[SEND_TASK].apply_async(kwargs=kwargs)
    except Exception as error:
        logger.warning(
            "whatsapp web message %s not published (%s); the relay will retry", kwargs["provider_message_id"], error
        )
        if is_first:
            # Not published at all: the relay may take it at its next run, not after the timeout.
            try:
                WhatsAppWebDelivery.objects.filter(
                    provider_message_id=kwargs["provider_message_id"], status=WhatsAppWebDelivery.Status.PENDING
                ).update(dispatched_at=None)
            except Exception:  # the row is committed and pending: the relay finds it anyway
                logger.exception("whatsapp web message %s: could not flag it for the relay", kwargs["provider_message_id"])
        return False
    return True


def claim_timeout() -> timedelta:
    # A task cannot outlive the hard time limit: a claim older than that belonged to a dead worker.
    return timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60)


def _unclaimed(now) -> Q:
    return Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - claim_timeout())


def whatsapp_web_delivery_claim(
    *, account_id: int, company_id: int, provider_message_id: str, to_phone: str, body: str
) -> WhatsAppWebDelivery | None:
    """Take the pending row for this run (counting the attempt), or None when it is done or another run has it."""
    now = timezone.now()
    # A task published before the outbox existed gets its row on its first run.
    WhatsAppWebDelivery.objects.get_or_create(
        provider_message_id=provider_message_id,
        defaults={
            "company_id": company_id,
            "account_id": account_id,
            "to_phone": to_phone,
            "body": body,
            "dispatched_at": now,
        },
    )
    # A conditional UPDATE: of two concurrent runs PostgreSQL lets exactly one match.
    claimed = (
        WhatsAppWebDelivery.objects.filter(
            _unclaimed(now),
            provider_message_id=provider_message_id,
            account_id=account_id,
            status=WhatsAppWebDelivery.Status.PENDING,
        ).update(claimed_at=now, attempts=F("attempts") + 1, updated_at=now)
    )
    if not claimed:
        return None
    return WhatsAppWebDelivery.objects.get(provider_message_id=provider_message_id)


def whatsapp_web_delivery_retry_later(*, delivery: WhatsAppWebDelivery, error: str, countdown: float) -> None:
    """Release the claim after a transient failure; the retry is due in `countdown` s (the relay counts from then)."""
    now = timezone.now()
    WhatsAppWebDelivery.objects.filter(pk=delivery.pk, status=WhatsAppWebDelivery.Status.PENDING).update(
        claimed_at=None, last_error=error[:500], dispatched_at=now + timedelta(seconds=countdown), updated_at=now
    )


def whatsapp_web_delivery_finish(*, delivery: WhatsAppWebDelivery, account: ChannelAccount, status: str, error: str = "") -> None:
    """Mark the row sent/failed and report it, in one transaction (a failing receiver keeps it pending)."""

    with transaction.atomic():
        WhatsAppWebDelivery.objects.filter(pk=delivery.pk, status=WhatsAppWebDelivery.Status.PENDING).update(
            status=status, last_error=error[:500], claimed_at=None, updated_at=timezone.now()
        )
        delivery_status_report(
            account=account, provider_message_id=delivery.provider_message_id, status=status, error=error
        )


def whatsapp_web_deliveries_relay(*, batch_size: int = 500) -> dict[str, int]:
    """Publish again pending rows whose task was lost; report failed the ones pending past the give-up age."""
    now = timezone.now()
    relay_after = timedelta(seconds=settings.WHATSAPP_WEB_RELAY_AFTER_SECONDS)
    give_up_after = timedelta(seconds=settings.WHATSAPP_WEB_RELAY_GIVE_UP_AFTER_SECONDS)
    pending = WhatsAppWebDelivery.objects.filter(_unclaimed(now), status=WhatsAppWebDelivery.Status.PENDING)
    counts = {"redispatched": 0, "given_up": 0}
    with transaction.atomic():
        expired = list(
            pending.filter(created_at__lt=now - give_up_after)
            .select_related("account")
            .order_by("created_at")
            .select_for_update(skip_locked=True, of=("self",))[:batch_size]
        )
        for delivery in expired:
            error = f"not delivered within {settings.WHATSAPP_WEB_RELAY_GIVE_UP_AFTER_SECONDS} s; given up"
            if delivery.last_error:
                error = f"{error} (last error: {delivery.last_error})"
            try:
                whatsapp_web_delivery_finish(delivery=delivery, account=delivery.account, status="failed", error=error)
            except Exception:  # one failing receiver must not stop the relay; the row stays pending
                logger.exception("whatsapp web relay: could not give up %s", delivery.provider_message_id)
                continue
            counts["given_up"] += 1
        lost = list(
            pending.filter(Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=now - relay_after))
            .order_by(F("dispatched_at").asc(nulls_first=True), "id")
            .select_for_update(skip_locked=True)
            .values_list("id", "account_id", "provider_message_id", "to_phone", "body")[:batch_size]
        )
        if lost:
            WhatsAppWebDelivery.objects.filter(pk__in=[row[0] for row in lost]).update(dispatched_at=now, updated_at=now)
        for _, account_id, provider_message_id, to_phone, body in lost:
            kwargs = task_kwargs(
                account_id=account_id, provider_message_id=provider_message_id, to_phone=to_phone, body=body
            )
            transaction.on_commit(lambda kwargs=kwargs: whatsapp_web_delivery_dispatch(kwargs=kwargs))
        counts["redispatched"] = len(lost)
    if counts["redispatched"] or counts["given_up"]:
        logger.info("whatsapp web relay: %s", counts)
    return counts


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
